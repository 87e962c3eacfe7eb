"""The methodology's guarantees, each pinned by a real run of a tiny model (tests/mutants.py breaks each)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import fortune_rows, write_csv

from hf_project import compare, plots, training
from hf_project.config import parse_args
from hf_project.data import prepare_data
from hf_project.inference import Predictor
from hf_project.runs import find_runs

LSTM = ["--model", "lstm", "--max_length", "32", "--lstm_embedding_dim", "16", "--lstm_hidden_size", "16",
        "--per_device_train_batch_size", "16", "--logging_steps", "1"]


def run(data: Path, root: Path, *extra: str) -> tuple[Path, dict]:
    """One run (in this process: several models would train in processes of their own) and its metrics."""
    cfg = parse_args(["--dataset", str(data), *LSTM, "--runs_dir", str(root / "runs"),
                      "--weights_dir", str(root / "weights"), *extra])
    metrics = training.run_experiment(cfg)["lstm"]
    (run_dir,) = find_runs(root / "runs")
    return run_dir, metrics


@pytest.fixture(scope="module")
def imbalanced_csv(tmp_path_factory) -> Path:
    """Three fortune categories at 60, 20 and 12 cookies: class weights far from 1."""
    rows = fortune_rows(per_class=60)
    kept, seen = [], {}
    for row in rows:
        limit = {"startrek": 60, "law": 20, "food": 12}[row["label"]]
        if seen.get(row["label"], 0) < limit:
            kept.append(row)
            seen[row["label"]] = seen.get(row["label"], 0) + 1
    return write_csv(tmp_path_factory.mktemp("imbalanced") / "imbalanced.csv", kept)


@pytest.mark.parametrize("metric", ["macro_f1", "loss"])
def test_the_kept_model_is_the_validation_best_checkpoint(fortunes_csv, tmp_path, metric):
    # A learning rate high enough to overfit 16 x 9 steps: validation loss and F1 peak, then fall back.
    run_dir, metrics = run(fortunes_csv, tmp_path, "--num_train_epochs", "16", "--eval_strategy", "steps",
                           "--eval_steps", "9", "--early_stopping_patience", "0", "--lstm_learning_rate", "0.05",
                           "--metric_for_best_model", metric)
    history = json.loads((run_dir / "log_history.json").read_text())
    evals = [e for e in history if "eval_loss" in e]
    values = [e[f"eval_{metric}"] for e in evals]
    best = int(np.argmin(values) if metric == "loss" else np.argmax(values))  # the first of ties, as the Trainer
    worst = int(np.argmax(values) if metric == "loss" else np.argmin(values))
    # Choosing means something here: the best checkpoint is neither the last one nor the worst one.
    assert best != len(evals) - 1 and values[best] != values[worst] and values[best] != values[-1], values
    assert metrics["validation"]["best_step"] == evals[best]["step"]
    assert metrics["validation"][metric] == values[best]
    # The saved model is that checkpoint: its validation loss and macro-F1 are the ones logged at the best step.
    data = prepare_data(parse_args(["--dataset", str(fortunes_csv)]).data, 2023)
    probs = Predictor.load(run_dir).probabilities(list(data.splits["validation"]["text"]), progress=False)
    labels = np.asarray(data.splits["validation"]["label"])
    loss = float(np.mean(-np.log(probs[np.arange(len(labels)), labels])))
    assert loss == pytest.approx(evals[best]["eval_loss"], abs=1e-4)
    from sklearn.metrics import f1_score

    assert f1_score(labels, probs.argmax(-1), average="macro") == pytest.approx(evals[best]["eval_macro_f1"], abs=1e-6)
    # And the test predictions are that model's: the saved model gives the same probabilities on the test texts.
    import pandas as pd

    written = pd.read_csv(run_dir / "predictions_test.csv")
    test_probs = Predictor.load(run_dir).probabilities(list(data.splits["test"]["text"]), progress=False)
    np.testing.assert_allclose(written[[f"p_{n}" for n in data.label_names]].to_numpy(), test_probs, atol=1e-5)


def test_test_split_is_read_once_after_training_by_the_selected_model(fortunes_csv, tmp_path, monkeypatch):
    seen = []
    original = training.ClassificationTrainer.evaluation_loop

    def recording(self, dataloader, *args, **kwargs):
        prefix = kwargs.get("metric_key_prefix", args[3] if len(args) > 3 else "eval")
        seen.append((prefix, len(dataloader.dataset), self.state.global_step, self.state.max_steps))
        return original(self, dataloader, *args, **kwargs)

    monkeypatch.setattr(training.ClassificationTrainer, "evaluation_loop", recording)
    run_dir, metrics = run(fortunes_csv, tmp_path, "--num_train_epochs", "2", "--eval_strategy", "steps",
                           "--eval_steps", "4", "--early_stopping_patience", "0")
    split = json.loads((run_dir / "split.json").read_text())
    n_val, n_test = len(split["validation"]["indices"]), len(split["test"]["indices"])
    assert n_val != n_test
    assert [s[0] for s in seen].count("test") == 1 and seen[-1][0] == "test"  # once, and last
    assert seen[-1][1] == n_test and seen[-1][2] == seen[-1][3]  # the test split, after the last step
    assert all(size == n_val for prefix, size, _, _ in seen[:-1]) and len(seen) > 2  # selection saw validation only
    assert metrics["test"]["num_examples"] == n_test


def first_loss(run_dir: Path) -> float:
    return json.loads((run_dir / "log_history.json").read_text())[0]["loss"]


def test_class_weights_reach_the_loss(imbalanced_csv, tmp_path):
    plain, _ = run(imbalanced_csv, tmp_path / "plain", "--max_steps", "1")
    weighted, _ = run(imbalanced_csv, tmp_path / "weighted", "--max_steps", "1", "--class_weights")
    # The same first batch and initial weights; only the loss's class weights differ.
    assert json.loads((plain / "split.json").read_text()) == json.loads((weighted / "split.json").read_text())
    assert abs(first_loss(plain) - first_loss(weighted)) > 1e-3


def test_no_stratify_carves_validation_as_the_plain_tail_of_the_seeded_order(imbalanced_csv):
    stratified = prepare_data(parse_args(["--dataset", str(imbalanced_csv)]).data, 2023)
    plain = prepare_data(parse_args(["--dataset", str(imbalanced_csv), "--no_stratify"]).data, 2023)
    n = sum(len(s) for s in plain.splits.values())
    perm = np.random.default_rng(2023).permutation(n)
    pool = perm[: n - round(0.2 * n)]
    n_val = round(0.1 * len(pool))
    assert plain.split["validation"]["indices"] == pool[len(pool) - n_val:].tolist()
    assert plain.split["validation"] != stratified.split["validation"]


def test_gradient_accumulation_with_our_loss_matches_one_big_batch(imbalanced_csv, tmp_path):
    """Class weights switch on our own loss; 2 x 8 accumulated must give the step of one batch of 16."""
    common = ("--max_steps", "2", "--class_weights", "--lstm_dropout", "0", "--learning_rate", "0.01")
    big, _ = run(imbalanced_csv, tmp_path / "big", *common, "--per_device_train_batch_size", "16")
    small, _ = run(imbalanced_csv, tmp_path / "acc", *common, "--per_device_train_batch_size", "8",
                   "--gradient_accumulation_steps", "2")
    a = [e["loss"] for e in json.loads((big / "log_history.json").read_text()) if "loss" in e]
    b = [e["loss"] for e in json.loads((small / "log_history.json").read_text()) if "loss" in e]
    assert len(a) == len(b) == 2
    assert a == pytest.approx(b, abs=2e-3)


def test_max_steps_before_the_first_evaluation_still_selects_and_tests(fortunes_csv, tmp_path):
    # 2 steps of a 9-step epoch, evaluated per epoch: the final model is evaluated (and selected) when training stops.
    run_dir, metrics = run(fortunes_csv, tmp_path, "--max_steps", "2", "--eval_strategy", "epoch")
    history = json.loads((run_dir / "log_history.json").read_text())
    assert [e["step"] for e in history if "eval_loss" in e] == [2]  # the final model, evaluated once
    assert metrics["validation"]["best_step"] == 2 and metrics["global_steps"] == 2
    assert not math.isnan(metrics["test"]["macro_f1"])


def test_compare_marks_exactly_the_best_value_of_each_column():
    def row(model: str, val_f1: float, val_acc: float, test_f1: float, test_acc: float) -> dict:
        return {"dataset": "d", "model": model, "selection_metric": "macro_f1",
                "validation_macro_f1_mean": val_f1, "validation_accuracy_mean": val_acc,
                "test_macro_f1_mean": test_f1, "test_accuracy_mean": test_acc}

    rows = [row("a", 0.5, 0.7, 0.4, 0.9), row("b", 0.6, 0.6, 0.4, 0.8), row("c", 0.1, 0.2, 0.3, None)]
    compare.mark_best(rows)
    assert rows[0]["best"] == ["validation_accuracy", "test_macro_f1", "test_accuracy"]
    assert rows[1]["best"] == ["validation_macro_f1", "test_macro_f1"]  # a tie marks every tied row
    assert rows[2]["best"] == []
    losses = [{**row("a", 0, 0, 0, 0), "selection_metric": "loss", "validation_loss_mean": 0.9, "test_loss_mean": 1.2},
              {**row("b", 0, 0, 0, 0), "selection_metric": "loss", "validation_loss_mean": 0.4, "test_loss_mean": 1.5}]
    compare.mark_best(losses)
    assert "validation_loss" in losses[1]["best"] and "validation_loss" not in losses[0]["best"]  # lower is better
    assert "test_loss" in losses[0]["best"] and "test_loss" not in losses[1]["best"]


def test_loss_plot_draws_the_logged_losses_and_the_best_step(monkeypatch, tmp_path):
    drawn = {}
    monkeypatch.setattr(plots, "_save_atomic", lambda fig, path, dpi=100: drawn.setdefault("fig", fig))
    history = [{"step": 1, "loss": 1.1}, {"step": 2, "loss": 0.9}, {"step": 2, "eval_loss": 1.0},
               {"step": 3, "loss": 0.7}, {"step": 4, "eval_loss": 0.8}, {"step": 4, "train_loss": 0.9}]
    plots.plot_loss(history, tmp_path / "loss.png", best_step=4)
    (ax,) = drawn["fig"].axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["training loss"].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(lines["training loss"].get_ydata(), [1.1, 0.9, 0.7])
    np.testing.assert_array_equal(lines["validation loss"].get_xdata(), [2, 4])
    np.testing.assert_array_equal(lines["validation loss"].get_ydata(), [1.0, 0.8])
    assert list(lines["best step (4)"].get_xdata()) == [4, 4]


@pytest.fixture
def drawn(monkeypatch) -> dict:
    """The figure each plot function would save, kept for inspection instead of written."""
    figures: dict = {}
    monkeypatch.setattr(plots, "_save_atomic", lambda fig, path, dpi=100: figures.setdefault(Path(path).name, fig))
    return figures


def test_confusion_matrix_plot_shows_row_fractions_and_the_counts_it_was_given(drawn, tmp_path):
    matrix = [[8, 2, 0], [1, 3, 0], [0, 0, 0]]
    plots.plot_confusion_matrix(matrix, ["a", "b", "c"], tmp_path / "cm.png")
    (ax, _colorbar) = drawn["cm.png"].axes
    np.testing.assert_allclose(ax.images[0].get_array(), [[0.8, 0.2, 0], [0.25, 0.75, 0], [0, 0, 0]])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert {t.get_text() for t in ax.texts} >= {"0.80", "0.75", "0.25"}  # the cells are annotated with their values
    assert len(ax.texts) == 3 + 2  # the diagonal and the non-zero mistakes; empty cells stay blank


def test_comparison_plots_draw_every_model_and_seed(drawn, tmp_path):
    curves = {"lstm": [[(1, 1.0), (2, 0.8)], [(1, 1.1), (2, 0.7)]], "minilm": [[(1, 0.9), (2, 0.5)]]}
    plots.plot_validation_curves(curves, tmp_path / "val.png")
    (ax,) = drawn["val.png"].axes
    assert [line.get_ydata().tolist() for line in ax.get_lines()] == [[1.0, 0.8], [1.1, 0.7], [0.9, 0.5]]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["lstm", "minilm"]
    plots.plot_metric_bars({"lstm": {"macro_f1": [0.4, 0.6]}, "minilm": {"macro_f1": [0.7]}}, tmp_path / "bars.png")
    (ax,) = drawn["bars.png"].axes
    assert [round(bar.get_height(), 6) for bar in ax.patches] == [0.5, 0.7]  # the mean over seeds
