"""The model card (README.md in model/ and weights/), --report_to tensorboard, and the text length facts of the
manifest, on tiny real runs."""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import write_csv
from test_cli import TINY, bad_run
from test_inference import make_runs
from test_search import argv as search_argv
from test_search import run as search
from test_search import space_file  # noqa: F401  (a fixture)
from test_tasks import REGRESSION, regression_rows

from hf_project import modelcard, runs, stats, training
from hf_project.config import parse_args
from hf_project.data import prepare_data
from hf_project.errors import UserError
from hf_project.modalities import MODALITIES, ModalityStage, get_stage
from hf_project.modalities import text as text_stage
from hf_project.models.lstm import train_lstm_tokenizer
from hf_project.search import parse_search_args, study_key

FAST = ["--no_isolate_runs"]  # in this process: the length warning is caught by the handler below


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def logged_runs(root: Path, argv: list[str]) -> tuple[dict[str, Path], list[logging.LogRecord]]:
    """make_runs, with what the text stage logged."""
    handler, logger = Records(), logging.getLogger(text_stage.__name__)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        return make_runs(root, argv), handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture(scope="module")
def single(fortunes_csv, tiny_bert, tmp_path_factory) -> tuple[dict[str, Path], list[logging.LogRecord], Path]:
    """A tiny BERT and a tiny LSTM on the fortune sample, with TensorBoard curves and texts cut at 32 tokens."""
    root = tmp_path_factory.mktemp("card-single")
    found, records = logged_runs(root, ["--dataset", str(fortunes_csv), "--model", f"{tiny_bert},lstm", *TINY,
                                        *FAST, "--report_to", "tensorboard"])
    return found, records, root


@pytest.fixture(scope="module")
def regression(tiny_bert, tmp_path_factory) -> tuple[dict[str, Path], Path]:
    root = tmp_path_factory.mktemp("card-regression")
    data = write_csv(root / "words.csv", regression_rows())
    found = make_runs(root, ["--dataset", str(data), "--model", "lstm", *REGRESSION, *TINY, *FAST,
                             "--lstm_learning_rate", "0.01"])
    return found, root


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def card_of(run_dir: Path) -> str:
    return (run_dir / runs.MODEL_DIR / runs.MODEL_CARD_FILE).read_text()


def same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def table_rows(card: str) -> dict[str, list[str]]:
    """The results table of a card: metric -> [validation, test, interval] as shown."""
    section = card.split("## Results", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("metric", "---"):
            rows[cells[0].removesuffix(" (lower is better)")] = cells[1:]
    return rows


def shown(value: str) -> float | None:
    return None if value == "–" else float(value)


def close(text: str, value: float) -> bool:
    """A 4-significant-digit number of the card against the value it rounds."""
    return math.isclose(float(text), value, rel_tol=1e-3, abs_tol=1e-12)


def decisions(task: str, rows: list[dict[str, str]], labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(truth, predicted) of predictions_test.csv as hf_project.stats takes them."""
    if task == "regression":
        return np.array([float(r["label"]) for r in rows]), np.array([float(r["predicted"]) for r in rows])
    return (np.array([labels.index(r["label"]) for r in rows]), np.array([labels.index(r["predicted"]) for r in rows]))


def check_card(run_dir: Path, weights_root: Path) -> dict:
    """The card of a run against its metrics.json, manifest.json and predictions; returns its front matter."""
    metrics, manifest = read_json(run_dir / runs.METRICS_FILE), read_json(run_dir / runs.MANIFEST_FILE)
    card = card_of(run_dir)
    weights_card = weights_root / metrics["dataset"] / metrics["model"] / runs.MODEL_CARD_FILE
    assert weights_card.read_text() == card  # both copies carry it
    front = modelcard.parse_front_matter(card)
    assert yaml.safe_load(yaml.safe_dump(front)) == front
    assert front["library_name"] == "transformers" and front["pipeline_tag"] == "text-classification"
    assert metrics["dataset"] in front["tags"] and "datasets" not in front  # local data: no hub data set named
    # the model-index holds metrics.json's own numbers, exactly
    results = {r["dataset"]["split"]: {m["type"]: m["value"] for m in r["metrics"]}
               for r in front["model-index"][0]["results"]}
    for split in ("validation", "test"):
        expected = {k: v for k, v in metrics[split].items() if k not in modelcard.NOT_SCORES}
        assert results[split].keys() == expected.keys()
        assert all(same(results[split][k], v) for k, v in expected.items()), split
    # the Markdown table shows them, and the test intervals of the task's table metrics around them
    rows = table_rows(card)
    assert set(rows) == set(results["validation"]) | set(results["test"])
    for metric, (validation, test, interval) in rows.items():
        for text, split in ((validation, "validation"), (test, "test")):
            value = metrics[split].get(metric)
            assert (text == "–") if value is None else close(text, value), (metric, split)
        assert (interval != "–") == (metric in stats.TABLE_METRICS[metrics["task"]])
    # the intervals are the bootstrap of the test predictions with the split seed
    with open(run_dir / runs.PREDICTIONS_FILE, newline="") as f:
        truth, predicted = decisions(metrics["task"], list(csv.DictReader(f)), manifest["label_names"])
    seed = read_json(run_dir / runs.SPLIT_FILE)["seed"]
    again = stats.bootstrap_intervals(metrics["task"], truth, predicted, seed=seed,
                                      num_labels=len(manifest["label_names"]))
    for metric, (low, high) in again.items():
        shown_low, shown_high = (float(x) for x in rows[metric][2].strip("[]").split(","))
        assert close(str(shown_low), low) and close(str(shown_high), high), metric
        assert low - 1e-9 <= metrics["test"][metric] <= high + 1e-9, metric
    # the facts of the run
    assert f"split hash `{manifest['split_hash']}`" in card and f"split seed {seed}" in card
    assert f"**Run seed**: {metrics['seed']}" in card
    assert all(f"`{name}`" in card for name in manifest["label_names"])
    assert "Never pushed to any hub" in card
    assert "test split was used once" in card and f"{metrics['test']['num_examples']} test examples" in card
    return front


def code_blocks(card: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", card, flags=re.DOTALL)


@pytest.mark.parametrize("kind", ["pretrained", "lstm"])
def test_single_label_card_equals_metrics(single, tiny_bert, kind):
    found, _, root = single
    run_dir = found[tiny_bert.name if kind == "pretrained" else "lstm"]
    front = check_card(run_dir, root / "weights")
    card = card_of(run_dir)
    assert "single-label-classification" in front["tags"]
    assert ("from-scratch" in front["tags"]) == (kind == "lstm")
    assert "base_model" not in front  # a local folder is not a hub id
    assert "classes are about balanced" in card or "classes are imbalanced" in card
    if kind == "lstm":
        assert "import hf_project.models" in card and "trained from scratch" in card
    else:
        assert f"`{tiny_bert}`" in card


@pytest.mark.parametrize("kind", ["pretrained", "lstm"])
def test_the_cards_loading_code_runs(single, tiny_bert, kind):
    found, _, root = single
    run_dir = found[tiny_bert.name if kind == "pretrained" else "lstm"]
    predictor_code, transformers_code = code_blocks(card_of(run_dir))
    namespace: dict = {"inputs": ["Beam me up, Scotty.", "The court is now in session."]}
    exec(predictor_code, namespace)  # noqa: S102  (the card's own code, on its own model)
    assert len(namespace["predictions"]) == 2
    exec(transformers_code, namespace)  # noqa: S102
    model, processor = namespace["model"], namespace["processor"]
    assert model.config.num_labels == len(read_json(run_dir / runs.MANIFEST_FILE)["label_names"])
    assert processor("a text")["input_ids"]


def test_regression_card_equals_metrics(regression):
    found, root = regression
    front = check_card(found["lstm"], root / "weights")
    card = card_of(found["lstm"])
    assert "regression" in front["tags"] and "**Target**: `score`" in card
    assert "outside that range is an extrapolation" in card
    assert not (found["lstm"] / runs.TENSORBOARD_DIR).exists()  # --report_to none, the default


def test_hub_names_reach_the_front_matter(single):
    found, _, _ = single
    run_dir = found["lstm"]
    metrics, manifest = read_json(run_dir / runs.METRICS_FILE), read_json(run_dir / runs.MANIFEST_FILE)
    manifest = {**manifest, "model": {**manifest["model"], "checkpoint": "org/base-model", "from_scratch": False}}
    config = yaml.safe_load((run_dir / runs.CONFIG_FILE).read_text())
    source, hub = modelcard.data_source({"dataset": "org/some-data"})
    assert hub == "org/some-data" and "hub data set `org/some-data`" in source
    place = modelcard.CardPlace(run_dir=str(run_dir), weights_dir="weights/x/y", pipeline_tag="text-classification",
                                auto_class="AutoModelForSequenceClassification", has_processor=True,
                                data_source=source, hub_dataset=hub)
    card = modelcard.model_card(metrics, manifest, config, [], {}, place, 2023)
    front = modelcard.parse_front_matter(card)
    assert front["base_model"] == "org/base-model" and front["datasets"] == ["org/some-data"]
    assert front["model-index"][0]["results"][1]["dataset"]["type"] == "org/some-data"


def test_builtin_sources_read_as_markdown():
    from hf_project.paper.content import BUILTIN_SOURCES

    for name in BUILTIN_SOURCES:
        source, hub = modelcard.data_source({"dataset": name})
        assert hub is None and "\\" not in source and "$" not in source and f"`{name}`" in source
    assert "8×8" in modelcard.data_source({"dataset": "digits"})[0]


# ---- TensorBoard ---------------------------------------------------------------------------------------------------


def test_report_to_tensorboard_writes_the_curves_in_the_run_directory(single):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found, _, root = single
    for run_dir in found.values():
        events = EventAccumulator(str(run_dir / runs.TENSORBOARD_DIR)).Reload()
        tags = events.Tags()["scalars"]
        assert {"train/loss", "eval/loss", "eval/macro_f1", "train/learning_rate"} <= set(tags), tags
        assert config_of(run_dir)["report_to"] == "tensorboard"
    event_files = list(root.rglob("events.out.tfevents.*"))
    assert event_files and all(p.parent.name == runs.TENSORBOARD_DIR for p in event_files)


def config_of(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / runs.CONFIG_FILE).read_text())


def test_bad_report_to_is_a_one_line_error(fortunes_csv, tmp_path, capsys):
    line = bad_run(["--dataset", str(fortunes_csv), "--model", "lstm", "--report_to", "wandb", *TINY,
                    "--runs_dir", str(tmp_path / "runs")], capsys)
    assert line == "error: --report_to must be none or tensorboard, got 'wandb'"


def test_missing_tensorboard_is_a_one_line_error(fortunes_csv, tmp_path, capsys, monkeypatch):
    import transformers.integrations

    assert training.reporting("tensorboard") == "tensorboard"
    monkeypatch.setattr(transformers.integrations, "is_tensorboard_available", lambda: False)
    assert training.reporting("none") == "none"
    with pytest.raises(UserError, match="pip install tensorboard"):
        training.reporting("tensorboard")
    line = bad_run(["--dataset", str(fortunes_csv), "--model", "lstm", "--report_to", "tensorboard", *TINY,
                    "--runs_dir", str(tmp_path / "runs")], capsys)
    assert "needs the tensorboard package: pip install tensorboard" in line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob(runs.STATUS_FILE))  # before any run


def test_search_trials_write_no_curves(fortunes_csv, space_file, tmp_path, monkeypatch):  # noqa: F811
    made = []  # (checkpoints folder, report_to) of every Trainer's arguments
    original = training.training_arguments

    def recorded(*args, **kwargs):
        made.append((Path(args[2]).parent, (result := original(*args, **kwargs)).report_to))
        return result

    monkeypatch.setattr(training, "training_arguments", recorded)
    args = search_argv(fortunes_csv, tmp_path, "lstm", space_file, "--report_to", "tensorboard",
                       "--num_train_epochs", "1", trials=1)
    result = search(args)["lstm"]
    # the trials report nowhere; only the retrained best trial, a normal run, follows --report_to
    assert made == [(Path(result["search_dir"]), []), (Path(result["run_dir"]), ["tensorboard"])]
    event_files = list(tmp_path.rglob("events.out.tfevents.*"))
    assert event_files and all(p.parent == Path(result["run_dir"]) / runs.TENSORBOARD_DIR for p in event_files)
    cfg, _ = parse_search_args(args)
    none, _ = parse_search_args([*args, "--report_to", "none"])
    data = prepare_data(cfg.data, cfg.data.split_seed)
    spec = training.resolve("lstm")
    assert study_key(cfg, spec, data, ()) == study_key(none, spec, data, ())  # the same study either way


# ---- text lengths --------------------------------------------------------------------------------------------------


def test_text_lengths_in_the_manifest_and_the_warning(single, tiny_bert):
    found, records, _ = single
    for name, run_dir in found.items():
        manifest = read_json(run_dir / runs.MANIFEST_FILE)
        lengths = manifest[runs.TEXT_LENGTHS]
        assert list(lengths) == ["train", "validation", "test"]
        for facts in lengths.values():
            assert set(facts) == {"p50", "p95", "truncated", "max_length"} and facts["max_length"] == 32
            assert isinstance(facts["p50"], int) and isinstance(facts["p95"], int) and facts["p50"] <= facts["p95"]
        # the same numbers from the texts, tokenised by the saved tokenizer without truncation
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(run_dir / runs.MODEL_DIR)
        split = read_json(run_dir / runs.SPLIT_FILE)
        with open(Path(config_of(run_dir)["dataset"]), newline="") as f:
            texts = [r["text"] for r in csv.DictReader(f)]
        for part, facts in lengths.items():
            counts = np.array([len(tokenizer(texts[i])["input_ids"]) for i in split[part]["indices"]])
            assert facts["truncated"] == round(float(np.mean(counts > 32)), 4), (name, part)
            assert facts["p50"] == int(np.percentile(counts, 50, method="inverted_cdf")), (name, part)
            assert facts["p95"] == int(np.percentile(counts, 95, method="inverted_cdf")), (name, part)
        assert 0 < lengths["train"]["truncated"] < 1  # 32 tokens cut some of the cookies, not all
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    truncating = [name for name, d in found.items()
                  if read_json(d / runs.MANIFEST_FILE)[runs.TEXT_LENGTHS]["train"]["truncated"] > 0.1]
    assert truncating and len(warnings) == len(truncating)
    assert all("--max_length 32" in w for w in warnings)


def test_no_warning_when_little_is_truncated(fortunes_csv, caplog):
    cfg = parse_args(["--dataset", str(fortunes_csv), "--max_length", "500"])
    data = prepare_data(cfg.data, cfg.data.split_seed)
    tokenizer = train_lstm_tokenizer(data.splits["train"]["text"], vocab_size=500)
    prepared = text_stage.tokenize(data.splits, tokenizer, 500, data.split["hash"], cfg.data.cache_dir)
    with caplog.at_level(logging.INFO, logger=text_stage.__name__):
        facts = text_stage.input_facts(prepared, cfg)[runs.TEXT_LENGTHS]
    assert all(f["truncated"] == 0.0 for f in facts.values())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "token lengths before truncation at 500" in caplog.text


@pytest.mark.parametrize("pairs", [False, True])
def test_tokenising_is_the_truncating_tokenizers_own(tiny_bert, pairs):
    """The untruncated pass plus the re-encoded long texts give exactly what truncation=True gives."""
    from datasets import Dataset, DatasetDict
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    texts = ["short", "a somewhat longer text " * 5, "", "the longest text of all of them " * 20, "mid length text"]
    columns = {"text": texts, "label": list(range(len(texts)))}
    if pairs:
        columns[text_stage.TEXT_PAIR] = list(reversed(texts))
    splits = DatasetDict({s: Dataset.from_dict(columns) for s in ("train", "validation", "test")})
    prepared = text_stage.tokenize(splits, tokenizer, 12, f"tokenising-{pairs}", None)["train"]
    expected = tokenizer(texts, list(reversed(texts)) if pairs else None, truncation=True, max_length=12)
    for key in expected:
        assert prepared[key] == expected[key], key
    full = tokenizer(texts, list(reversed(texts)) if pairs else None)["input_ids"]
    assert prepared[text_stage.FULL_LENGTH] == [len(ids) for ids in full]
    assert prepared["length"] == [min(len(ids), 12) for ids in full]


def test_every_stage_says_its_pipeline_tag_and_facts():
    tags = {get_stage(m).PIPELINE_TAG for m in MODALITIES}
    assert tags == {"text-classification", "image-classification", "audio-classification"}
    for modality in MODALITIES:
        assert isinstance(get_stage(modality), ModalityStage)
    assert get_stage("image").input_facts(None, None) == {} and get_stage("audio").input_facts(None, None) == {}
