"""Sentence pairs (--text_pair_column): both texts reach the model, the run contract holds, inference takes pairs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import fortune_rows, write_csv
from image_fixtures import make_image_folder
from test_cli import TINY
from test_inference import check_same_as_evaluation, make_runs

from hf_project.config import parse_args
from hf_project.data import prepare_data
from hf_project.errors import UserError
from hf_project.inference import Predictor, predict_files, run_test_examples
from hf_project.modalities import text
from hf_project.models.lstm import train_lstm_tokenizer
from hf_project.models.registry import resolve


def pair_rows(n: int = 180) -> list[dict[str, str]]:
    """Two cookies and whether they come from the same fortunes category: a real pair task."""
    rows = fortune_rows()
    by_label: dict[str, list[str]] = {}
    for r in rows:
        by_label.setdefault(r["label"], []).append(r["text"])
    rng = random.Random(1)
    out = []
    for r in rows[:n]:
        same = rng.random() < 0.5
        other = rng.choice([k for k in by_label if (k == r["label"]) == same])
        out.append({"premise": r["text"], "second": rng.choice(by_label[other]),
                    "label": "same" if same else "different"})
    return out


@pytest.fixture(scope="module")
def pairs_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("pairs") / "pairs.csv", pair_rows())


PAIR_ARGS = ["--text_column", "premise", "--text_pair_column", "second"]


@pytest.fixture(scope="module")
def pair_runs(pairs_csv, tiny_bert, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pair-runs")
    return make_runs(root, ["--dataset", str(pairs_csv), "--model", f"{tiny_bert},lstm", *PAIR_ARGS, *TINY])


def test_both_texts_reach_the_tokenizer_and_the_fingerprint(pairs_csv, tiny_bert, tmp_path):
    args = parse_args(["--dataset", str(pairs_csv), *PAIR_ARGS, "--cache_dir", str(tmp_path)])
    data = prepare_data(args.data, 2023)
    assert data.splits["train"].column_names == ["text", text.TEXT_PAIR, "label"]
    single = prepare_data(parse_args(["--dataset", str(pairs_csv), "--text_column", "premise"]).data, 2023)
    assert data.fingerprint != single.fingerprint  # the second texts are part of the data
    tokenizer = text.load_processor(resolve(str(tiny_bert)), data, args)
    prepared = text.prepare(data, tokenizer, args)
    row = data.splits["train"][0]
    ids = prepared["train"][0]["input_ids"]
    assert ids == tokenizer(row["text"], row[text.TEXT_PAIR], truncation=True, max_length=args.data.max_length)[
        "input_ids"]
    assert ids.count(tokenizer.sep_token_id) == 2  # [CLS] a [SEP] b [SEP]
    single_ids = text.prepare(single, tokenizer, args)["train"][0]["input_ids"]
    assert single_ids.count(tokenizer.sep_token_id) == 1


def test_the_lstm_reads_a_pair_joined_by_a_separator_and_single_texts_as_before():
    texts = ["the cat sat", "a dog ran", "the dog sat", "a cat ran"] * 3
    single = train_lstm_tokenizer(texts)
    assert "[SEP]" not in single.get_vocab()  # single-text vocabularies (and every earlier run) are unchanged
    paired = train_lstm_tokenizer(texts, pairs=True)
    sep = paired.convert_tokens_to_ids("[SEP]")
    ids = paired("the cat", "a dog")["input_ids"]
    assert ids == [*paired("the cat")["input_ids"], sep, *paired("a dog")["input_ids"]]


@pytest.mark.parametrize("model", ["tiny", "lstm"])
def test_a_pair_run_keeps_the_contract_and_the_predictor_answers_pairs_as_evaluated(pair_runs, model):
    run_dir = next(p for name, p in pair_runs.items() if (name == "lstm") == (model == "lstm"))
    for name in ("config.yaml", "split.json", "metrics.json", "manifest.json", "predictions_test.csv",
                 "log_history.json", "model/config.json"):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "metrics.json").read_text())["test"]["num_examples"] == 36
    inputs, rows = run_test_examples(run_dir)
    assert all(isinstance(x, tuple) and len(x) == 2 for x in inputs)
    assert [text.describe_input(x) for x in inputs] == [r["input"] for r in rows]
    check_same_as_evaluation(Predictor.load(run_dir), run_dir)


def test_predict_files_reads_pairs_from_two_columns(pair_runs, pairs_csv, tmp_path):
    run_dir = pair_runs["lstm"]
    out = predict_files(run_dir, [pairs_csv], tmp_path / "out.csv", "premise", text_pair_column="second")
    assert len(out) == 180 and out[0].input.count(text.PAIR_SEPARATOR) == 1
    with pytest.raises(UserError, match="trained on sentence pairs"):
        predict_files(run_dir, [pairs_csv], tmp_path / "out2.csv", "premise")
    assert not (tmp_path / "out2.csv").exists()


def test_bad_pair_input_is_a_one_line_error(pairs_csv, tmp_path):
    image_folder = make_image_folder(tmp_path / "shapes", per_class=4)
    with pytest.raises(UserError, match="text_pair column .nope. not found.*--text_pair_column"):
        prepare_data(parse_args(["--dataset", str(pairs_csv), "--text_column", "premise",
                                 "--text_pair_column", "nope"]).data, 2023)
    with pytest.raises(UserError, match="--text_pair_column pairs texts, but this is image data"):
        prepare_data(parse_args(["--dataset", str(image_folder), "--text_pair_column", "x"]).data, 2023)
    with pytest.raises(UserError, match="needs .*pairs like the first input"):
        text.check_inputs([("a", "b"), "c"])


def test_fortune_pairs_is_a_fixed_balanced_pair_task_that_asks_for_its_pair_column():
    from hf_project.data.builtin import load_fortune_pairs

    a, b = load_fortune_pairs()["train"], load_fortune_pairs()["train"]
    assert a.column_names == ["text", "text_pair", "label"] and a["text_pair"] == b["text_pair"]  # same pairs
    same = a["label"].count(0) / len(a)
    assert 0.45 < same < 0.55
    assert all(x != y for x, y, k in zip(a["text"][:2000], a["text_pair"][:2000], a["label"][:2000], strict=True)
               if k == 0)  # a cookie is never paired with itself
    with pytest.raises(UserError, match="pass --text_pair_column text_pair"):
        prepare_data(parse_args(["--dataset", "fortune_pairs"]).data, 2023)


def test_a_killed_pair_run_resumes_to_the_same_numbers(pairs_csv, tmp_path_factory, tmp_path, monkeypatch):
    from test_resume import EARLY_STOP, assert_same_run, eval_steps, interrupted, reference

    from hf_project import resume, runs

    settings = [*EARLY_STOP, *PAIR_ARGS, "--num_train_epochs", "3"]
    expected = reference(pairs_csv, tmp_path_factory, settings)
    run_dir = interrupted(pairs_csv, tmp_path, settings, eval_steps(expected)[-2], monkeypatch)
    assert runs.read_status(run_dir) == runs.STATUS_FAILED
    resume.resume_run(str(run_dir))
    assert_same_run(run_dir, expected)


def test_a_search_on_pairs_reads_both_texts(pairs_csv, tmp_path):
    import yaml
    from test_tasks import search_lstm

    result = search_lstm(tmp_path, pairs_csv, PAIR_ARGS, trials=2, highest_rate=2e-2, retrain=True)
    retrained = Path(result["run_dir"])
    assert yaml.safe_load((retrained / "config.yaml").read_text())["text_pair_column"] == "second"
    tokenizer_vocab = json.loads((retrained / "model" / "tokenizer.json").read_text())["model"]["vocab"]
    assert "[SEP]" in tokenizer_vocab  # the LSTM's vocabulary joins the two texts


def test_compare_marks_the_best_pair_model(pair_runs):
    from hf_project.report import build_report

    report = build_report(pair_runs["lstm"].parents[2])
    values = {r["model"]: r["test_macro_f1_mean"] for r in report.rows}
    best = max(values.values())
    assert {r["model"] for r in report.rows if "test_macro_f1" in r["best"]} == {m for m, v in values.items()
                                                                                 if v == best}
    assert report.verdict.winner["test_macro_f1_mean"] == best
