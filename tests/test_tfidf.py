"""--model tfidf_lr: the linear baseline is a normal run on the neural runs' split, its C is the validation argmax,
the test set is looked at once, and its files read like any other run's."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import fortune_rows, write_csv
from safetensors.numpy import load_file
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from hf_project import baselines, runs
from hf_project.compare import group_runs, select_runs, table_rows, to_markdown
from hf_project.config import config_from_dict, parse_args
from hf_project.data import prepare_data
from hf_project.errors import UserError
from hf_project.inference import Predictor
from hf_project.models.linear import LINEAR_WEIGHTS, LinearTextModel
from hf_project.models.registry import check_modality, resolve
from hf_project.paper import PaperArguments, build_paper
from hf_project.report import Run
from hf_project.tasks import SingleLabel
from hf_project.training import prepare_experiment, run_experiment

TINY = ["--num_train_epochs", "2", "--per_device_train_batch_size", "16", "--max_length", "32",
        "--lstm_embedding_dim", "16", "--lstm_hidden_size", "16", "--logging_steps", "2", "--no_isolate_runs"]


@pytest.fixture(scope="module")
def both(fortunes_csv, tmp_path_factory) -> dict[str, Path]:
    """A tfidf_lr run and an lstm run of one command on the sample of fortunes: {model: run directory}."""
    root = tmp_path_factory.mktemp("tfidf")
    run_experiment(parse_args(["--dataset", str(fortunes_csv), "--model", "tfidf_lr,lstm", *TINY,
                               "--runs_dir", str(root / "runs"), "--weights_dir", str(root / "weights")]))
    return {p.parent.name: p for p in runs.find_runs(root / "runs")}


def read(run_dir: Path, name: str):
    return json.loads((run_dir / name).read_text())


def rows(run_dir: Path, name: str = runs.PREDICTIONS_FILE) -> list[dict[str, str]]:
    with open(run_dir / name, newline="") as f:
        return list(csv.DictReader(f))


def test_a_complete_run_on_the_lstm_split(both):
    tfidf, lstm = both["tfidf_lr"], both["lstm"]
    assert runs.read_status(tfidf) == runs.STATUS_COMPLETE
    assert read(tfidf, runs.SPLIT_FILE) == read(lstm, runs.SPLIT_FILE)
    manifest, other = read(tfidf, runs.MANIFEST_FILE), read(lstm, runs.MANIFEST_FILE)
    assert manifest["split_hash"] == other["split_hash"] == read(lstm, runs.SPLIT_FILE)["hash"]
    assert manifest["label_names"] == other["label_names"]
    assert [r["source_row"] for r in rows(tfidf)] == [r["source_row"] for r in rows(lstm)]
    assert list(rows(tfidf)[0]) == list(rows(lstm)[0])  # the same columns
    assert list(rows(tfidf, runs.REPORT_FILE)[0]) == list(rows(lstm, runs.REPORT_FILE)[0])
    metrics, neural = read(tfidf, runs.METRICS_FILE), read(lstm, runs.METRICS_FILE)
    assert set(metrics["test"]) == set(neural["test"]) and set(metrics["validation"]) == set(neural["validation"])
    assert read(tfidf, runs.LOG_HISTORY_FILE) == []  # no training steps, so no step-wise losses
    assert metrics["validation"]["best_step"] is None and metrics["global_steps"] is None
    for name in (runs.CONFUSION_FIGURE, runs.RELIABILITY_FIGURE, baselines.REGULARIZATION_FIGURE):
        assert (tfidf / runs.FIGURES_DIR / name).stat().st_size > 0


def test_c_is_the_validation_argmax_and_recorded(both):
    tfidf = both["tfidf_lr"]
    metrics, manifest = read(tfidf, runs.METRICS_FILE), read(tfidf, runs.MANIFEST_FILE)
    search = metrics["regularization"]
    grid = search["grid"]
    assert [r["C"] for r in grid] == sorted(baselines.GRID)
    best = max(r["macro_f1"] for r in grid)
    # the strongest regularisation (smallest C) among the best
    assert search["chosen"] == min(r["C"] for r in grid if r["macro_f1"] == best)
    chosen = next(r for r in grid if r["C"] == search["chosen"])
    assert {k: metrics["validation"][k] for k in ("loss", "accuracy", "macro_f1", "weighted_f1")} == \
        {k: chosen[k] for k in ("loss", "accuracy", "macro_f1", "weighted_f1")}
    assert manifest["linear"]["regularization"] == {"C": search["chosen"]}
    model = LinearTextModel.load(tfidf / runs.MODEL_DIR)
    assert model.regularization == {"C": search["chosen"]}
    # the recorded validation scores are the saved model's, on the validation split rebuilt from config.yaml
    data = prepare_data(config_from_dict(runs.read_config(tfidf)).data, manifest["seed"])
    logits = model.logits(list(data.splits["validation"]["text"]))
    truth, predicted = data.references("validation"), logits.argmax(-1)
    assert metrics["validation"]["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert metrics["validation"]["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro",
                                                                       labels=range(len(data.label_names))))


def test_test_metrics_recomputed_from_the_predictions(both):
    tfidf = both["tfidf_lr"]
    metrics, manifest = read(tfidf, runs.METRICS_FILE), read(tfidf, runs.MANIFEST_FILE)
    predictions = rows(tfidf)
    names = manifest["label_names"]
    truth = [names.index(r["label"]) for r in predictions]
    predicted = [names.index(r["predicted"]) for r in predictions]
    assert metrics["test"]["num_examples"] == len(predictions)
    assert metrics["test"]["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert metrics["test"]["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert metrics["test"]["weighted_f1"] == pytest.approx(f1_score(truth, predicted, average="weighted"))
    assert read(tfidf, runs.CONFUSION_FILE)["matrix"] == confusion_matrix(truth, predicted).tolist()
    probabilities = np.array([[float(r[f"p_{n}"]) for n in names] for r in predictions])
    assert probabilities.sum(axis=1) == pytest.approx(1.0, abs=1e-5)
    assert metrics["test"]["nll"] == pytest.approx(-np.mean(np.log(probabilities[np.arange(len(truth)), truth])),
                                                   abs=1e-5)


def test_parameters_are_the_coefficients_and_intercepts(both):
    tfidf = both["tfidf_lr"]
    manifest = read(tfidf, runs.MANIFEST_FILE)
    weights = load_file(str(tfidf / runs.MODEL_DIR / LINEAR_WEIGHTS))
    classes, features = weights["coef"].shape
    assert classes == 3 and features == manifest["linear"]["num_features"] == len(weights["idf"])
    assert manifest["parameters"] == {"total": classes * features + classes, "trainable": classes * features + classes}
    assert manifest["model"]["from_scratch"] and manifest["model"]["family"] == "linear"
    assert manifest["model_size_mb"] > 0 and manifest["wall_time_s"] > 0 and manifest["peak_memory_mb"] > 0
    assert manifest["train_samples_per_second"] > 0


def test_the_saved_model_predicts_what_was_tested(both):
    tfidf = both["tfidf_lr"]
    predictions = rows(tfidf)
    weights = Path(runs.read_config(tfidf)["weights_dir"]) / "sample" / "tfidf_lr"
    for source in (tfidf, weights):  # the run directory, and the copy in weights/
        predictor = Predictor.load(source)
        found = predictor.predict([r["input"] for r in predictions])
        assert [p.label for p in found] == [r["predicted"] for r in predictions]
        assert [p.score for p in found] == pytest.approx([float(r["score"]) for r in predictions], abs=1e-6)
    with pytest.raises(UserError, match="sentence pairs"):
        predictor.predict([("a text", "and its pair")])


def test_compare_and_the_report_read_it_beside_the_lstm(both):
    root = both["tfidf_lr"].parents[2]
    table = {r["model"]: r for r in table_rows(group_runs(select_runs(root)))}
    metrics = read(both["tfidf_lr"], runs.METRICS_FILE)
    assert table["tfidf_lr"]["test_macro_f1_mean"] == metrics["test"]["macro_f1"]
    assert table["tfidf_lr"]["best_epoch_mean"] is None and table["lstm"]["best_epoch_mean"] is not None
    assert "tfidf_lr" in to_markdown(list(table.values()))
    run = Run.load(both["tfidf_lr"])
    assert run.log_history() == [] and run.modality == "text"
    assert run.test_outcomes().truth.tolist() == Run.load(both["lstm"]).test_outcomes().truth.tolist()


def test_test_labels_never_reach_the_choice(fortunes_csv, tmp_path):
    """The same run with the test labels scrambled chooses the same C and fits the same weights."""
    cfg = parse_args(["--dataset", str(fortunes_csv), "--model", "tfidf_lr", "--runs_dir", str(tmp_path / "r"),
                      "--weights_dir", str(tmp_path / "w")])
    experiment = prepare_experiment(cfg)
    data, cfg = experiment.data, experiment.cfg
    ((name, spec),) = experiment.models
    labels = np.asarray(data.references("test"))
    scrambled = data.splits["test"].remove_columns("label").add_column(
        "label", np.random.default_rng(0).permutation((labels + 1) % data.num_labels).tolist())
    blind = dataclasses.replace(data, splits=type(data.splits)({**data.splits, "test": scrambled}))
    results = []
    for i, prepared in enumerate((data, blind)):
        run_dir = tmp_path / f"run{i}"
        run_dir.mkdir()
        metrics = baselines.fit_and_test(cfg.for_run(name, cfg.train.seed), spec, prepared, run_dir, is_main=True)
        results.append((metrics, load_file(str(run_dir / runs.MODEL_DIR / LINEAR_WEIGHTS))))
    (first, weights), (second, blind_weights) = results
    def untimed(search: dict) -> dict:
        return {**search, "grid": [{k: v for k, v in r.items() if k != "fit_s"} for r in search["grid"]]}

    assert untimed(first["regularization"]) == untimed(second["regularization"])
    assert first["validation"] == second["validation"]
    assert np.array_equal(weights["coef"], blind_weights["coef"])
    assert first["test"]["accuracy"] != second["test"]["accuracy"]  # the test set was scored, once, after the choice


def test_class_weights_are_the_balanced_weights():
    rng = np.random.default_rng(0)
    features = rng.random((60, 5))
    labels = np.array([0] * 40 + [1] * 15 + [2] * 5)
    weights = SingleLabel().loss_weights(labels.tolist(), 3)
    found = baselines.fit(SingleLabel(), features, labels, 1.0, 3, weights, seed=0)
    expected = LogisticRegression(C=1.0, solver="saga", max_iter=baselines.MAX_ITER, random_state=0,
                                  class_weight="balanced").fit(features, labels)
    assert np.allclose(found.coef, expected.coef_) and np.allclose(found.intercept, expected.intercept_)
    assert found.parameters == 3 * 5 + 3


def test_a_binary_problem_has_the_probabilities_of_scikit_learn():
    rng = np.random.default_rng(1)
    features, labels = rng.random((40, 4)), np.array([0, 1] * 20)
    found = baselines.fit(SingleLabel(), features, labels, 1.0, 2, None, seed=0)
    expected = LogisticRegression(C=1.0, solver="saga", max_iter=baselines.MAX_ITER, random_state=0).fit(features,
                                                                                                         labels)
    outputs = SingleLabel().outputs(features @ found.coef.T + found.intercept)
    assert outputs == pytest.approx(expected.predict_proba(features), abs=1e-5)
    assert found.parameters == 4 + 1


def test_multi_label_and_regression_runs(tmp_path):
    texts = fortune_rows(per_class=30)
    multi = [{"text": r["text"], "label": r["label"] + (";long" if len(r["text"]) > 120 else "")} for r in texts]
    numbers = [{"text": r["text"], "label": len(r["text"])} for r in texts]
    out = ["--runs_dir", str(tmp_path / "runs"), "--weights_dir", str(tmp_path / "weights")]
    found = run_experiment(parse_args(["--dataset", str(write_csv(tmp_path / "multi.csv", multi)),
                                       "--label_delimiter", ";", "--model", "tfidf_lr", "--tune_threshold", *out]))
    metrics = found["tfidf_lr"]
    assert metrics["task"] == "multi_label" and metrics["threshold"]["tuned_on_validation"]
    assert 0 <= metrics["test"]["micro_f1"] <= 1
    found = run_experiment(parse_args(["--dataset", str(write_csv(tmp_path / "numbers.csv", numbers)),
                                       "--task", "regression", "--model", "tfidf_lr", *out]))
    metrics = found["tfidf_lr"]
    assert metrics["regularization"]["parameter"] == "alpha" and metrics["test"]["rmse"] > 0
    best = min(r["rmse"] for r in metrics["regularization"]["grid"])
    assert metrics["validation"]["rmse"] == best
    run_dir = next(p for p in runs.find_runs(tmp_path / "runs") if p.parts[-3] == "numbers")
    predictions = rows(run_dir)
    values = Predictor.load(run_dir).predict([r["input"] for r in predictions])
    assert [p.value for p in values] == pytest.approx([float(r["predicted"]) for r in predictions])


def test_what_tfidf_lr_cannot_read_is_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match="'tfidf_lr' classifies text, but this dataset is image"):
        check_modality(resolve("tfidf_lr"), "image")
    pairs = [{"text": r["text"], "text_pair": r["text"][::-1], "label": r["label"]} for r in fortune_rows(per_class=10)]
    cfg = parse_args(["--dataset", str(write_csv(tmp_path / "pairs.csv", pairs)), "--text_pair_column", "text_pair",
                      "--model", "tfidf_lr", "--runs_dir", str(tmp_path / "r"), "--weights_dir", str(tmp_path / "w")])
    with pytest.raises(UserError, match="sentence pairs"):
        prepare_experiment(cfg)
    assert not list((tmp_path / "r").rglob(runs.STATUS_FILE))  # refused before any run directory was made


def test_a_search_of_tfidf_lr_is_refused(fortunes_csv, tmp_path):
    from hf_project.search import run_search

    cfg = parse_args(["--dataset", str(fortunes_csv), "--model", "tfidf_lr", "--runs_dir", str(tmp_path / "r"),
                      "--weights_dir", str(tmp_path / "w")])
    with pytest.raises(UserError, match="nothing to search"):
        run_search(cfg, None, trials=1)
    assert not list((tmp_path / "r").rglob(runs.STUDY_FILE))  # refused before any study was made


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="the LaTeX toolchain is missing: make system-deps")
def test_the_paper_speaks_of_it_as_a_linear_baseline(both, tmp_path):
    """No LSTM or Trainer wording for a model fitted by scikit-learn: its own input, fit, chosen C and cost."""
    root = both["tfidf_lr"].parents[2]
    paper = tmp_path / "paper"
    build_paper(PaperArguments(runs_dir=str(root), out_dir=str(paper)))
    generated = {p.stem: p.read_text() for p in (paper / "generated").glob("*.tex")}
    chosen = read(both["tfidf_lr"], runs.METRICS_FILE)["regularization"]["chosen"]
    assert "1 LSTM baseline and 1 TF-IDF + logistic-regression baseline" in generated["macros"]
    training = generated["training"]
    assert "The neural models are trained with the Hugging Face" in training
    assert f"the chosen $C$ ({chosen:.3g})" in training and "scikit-learn" in training
    hparams = training.split(r"\label{tab:hparams}")[1]
    columns = {line.split(" & ")[0]: line.split(" & ")[1:] for line in hparams.splitlines() if " & " in line}
    order = columns[""]  # the header: the models' column order
    linear = order.index("tfidf\\_lr \\\\") if "tfidf\\_lr \\\\" in order else order.index("tfidf\\_lr")
    for row in ("learning rate", "epochs (max)", "LSTM hidden"):
        assert columns[row][linear].startswith("-"), (row, columns[row])
    assert columns["$C$ (on validation)"][linear].startswith(f"{chosen:.3g}")
    assert "TF-IDF, word 1-2-grams" in training
    assert "reads each whole text as TF-IDF weights" in generated["preprocessing"]
    assert "logistic regression on" in generated["models"]


def test_the_video_draft_speaks_of_it_as_a_linear_baseline(both, tmp_path):
    """Every slide of the report draws, and no narration gives it a learning rate, epochs or a curve."""
    from hf_project.report import build_report
    from hf_project.video.deck import draft_slides, render_slides

    report = build_report(both["tfidf_lr"].parents[2])
    deck = draft_slides(report)
    said = {s.key: s.narration for s in deck}
    assert "tfidf_lr is the simple baseline: a logistic regression on" in said["models"]
    assert "The neural models use batch size" in said["models"]
    assert "tfidf_lr has no curve" in said["training"] and "tfidf_lr reached" not in said["training"]
    render_slides(deck, tmp_path / "slides", 640, 360)
    assert all(s.image.is_file() for s in deck)
