"""The linear text baseline, `--model tfidf_lr`: TF-IDF features and a linear model fitted by scikit-learn, its
regularisation chosen on validation, tested once, written as a normal run.

It answers "how much do the neural models add over a simple classifier?", so everything but the model is the other
runs': the data, split, labels and task come from hf_project.training.prepare_experiment, the run directory from
run_one, and the scores, predictions, figures and calibration from the task objects of hf_project.tasks applied to
the model's logits (hf_project.models.linear). Per task:

    single_label   multinomial logistic regression (saga), C on GRID; --class_weights: the balanced weights the
                   neural losses use
    multi_label    one logistic regression per label (one-vs-rest), one C for all; --class_weights: pos_weight
    regression     ridge regression on the standardised target, alpha on GRID

Each value of GRID is fitted on train and scored on validation by the run's selection metric; the best one (ties:
the stronger regularisation) is the model, and only it ever sees the test set. There are no training steps: the
run's log_history.json is an empty list, best_step and epochs are null, and the validation score of every value is
in metrics.json's `regularization` entry (and figures/regularization.png).
"""

from __future__ import annotations

import logging
import platform
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from tqdm.auto import tqdm
from transformers import EvalPrediction

from hf_project import plots, runs
from hf_project.config import ExperimentConfig
from hf_project.data import SPLITS, PreparedData
from hf_project.errors import UserError
from hf_project.memory import PeakMemory
from hf_project.metrics import ALL_METRIC_NAMES, TASK_METRICS, greater_is_better
from hf_project.modalities import text as text_stage
from hf_project.models.linear import LinearTextModel, fit_vectorizer
from hf_project.models.registry import ModelSpec
from hf_project.results import scored_test, write_test_files
from hf_project.tasks import Task, task_for

logger = logging.getLogger(__name__)

# Half-decades from strong to weak regularisation (C = inverse strength; a ridge's alpha = strength, tried from 100
# down to 0.01). On fortunes the best C is 30-100 (validation macro-F1 0.42); a choice at either end is warned of.
GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
MAX_ITER = 1000  # saga passes over the data; about 300 at C = 100 on fortunes
ABSENT_CLASS_LOGIT = -20.0  # a class no training example has: probability ~e^-20 relative to the others
REGULARIZATION_FIGURE = "regularization.png"  # in the run's figures/: the validation score of each value


@dataclass
class Fit:
    """One value of the grid, fitted on train: the linear layer as LinearTextModel holds it (K rows)."""

    value: float
    coef: np.ndarray  # (K, F)
    intercept: np.ndarray  # (K,)
    parameters: int  # coefficients and intercepts scikit-learn fitted (a binary problem has one row)
    iterations: int


def parameter_name(task: Task) -> str:
    return "alpha" if task.name == "regression" else "C"


def estimator_name(task: Task) -> str:
    return "Ridge" if task.name == "regression" else "LogisticRegression"


def check_data(data: PreparedData) -> None:
    """What tfidf_lr cannot read, refused before anything is fitted (the modality is checked with the others)."""
    if text_stage.TEXT_PAIR in data.splits["train"].column_names:
        raise UserError("tfidf_lr reads one text per example, and this data has sentence pairs (--text_pair_column): "
                        "leave tfidf_lr out, or compare minilm and lstm, which read both texts")


def fit(task: Task, features: Any, labels: np.ndarray, value: float, num_outputs: int,
        class_weights: list[float] | None, seed: int) -> Fit:
    """The linear layer for one value of the grid (C, or a ridge's alpha) with `num_outputs` rows, fitted on
    `features` (N, F)."""
    from sklearn.linear_model import LogisticRegression, Ridge

    num_features = features.shape[1]
    if task.name == "regression":  # on the standardised target, as the neural regressors are trained
        ridge = Ridge(alpha=value, solver="sparse_cg", random_state=seed)
        ridge.fit(features, (labels.astype(np.float64) - task.mean) / task.std)
        return Fit(value, ridge.coef_.reshape(1, -1), np.atleast_1d(ridge.intercept_).astype(np.float64),
                   num_features + 1, int(np.max(ridge.n_iter_)) if ridge.n_iter_ is not None else 0)

    def logistic(y: np.ndarray, weight: dict[int, float] | None) -> LogisticRegression:
        model = LogisticRegression(C=value, solver="saga", max_iter=MAX_ITER, random_state=seed, class_weight=weight)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # counted in `iterations`, warned of once below
            return model.fit(features, y)

    if task.name == "multi_label":  # one-vs-rest: one binary logistic regression per label
        coef = np.zeros((labels.shape[1], num_features))
        # a label always (or never) on in train keeps its log-odds there (clipped), with nothing else to fit
        intercept = np.asarray(task.initial_bias(labels.tolist()), dtype=np.float64)
        parameters, iterations = 0, 0
        for k in range(labels.shape[1]):
            y = labels[:, k].astype(np.int64)
            if y.min() == y.max():
                parameters += 1
                continue
            weight = {0: 1.0, 1: class_weights[k]} if class_weights else None
            model = logistic(y, weight)
            coef[k], intercept[k] = model.coef_[0], model.intercept_[0]
            parameters += model.coef_.size + model.intercept_.size
            iterations = max(iterations, int(np.max(model.n_iter_)))
        return Fit(value, coef, intercept, parameters, iterations)

    present = sorted(set(labels.tolist()))
    weight = {c: class_weights[c] for c in present} if class_weights else None
    model = logistic(labels.astype(np.int64), weight)
    rows = model.coef_ if len(present) > 2 else np.vstack([np.zeros_like(model.coef_), model.coef_])
    biases = model.intercept_ if len(present) > 2 else np.concatenate([[0.0], model.intercept_])
    # binary: softmax([0, z]) is scikit-learn's sigmoid(z); classes absent from train keep an inert row
    coef = np.zeros((num_outputs, num_features))
    intercept = np.full(num_outputs, ABSENT_CLASS_LOGIT)
    for row, c in enumerate(present):
        coef[c], intercept[c] = rows[row], biases[row]
    return Fit(value, coef, intercept, model.coef_.size + model.intercept_.size, int(np.max(model.n_iter_)))


def scores(task: Task, logits: np.ndarray, references: np.ndarray, loss_weight: torch.Tensor | None
           ) -> dict[str, float]:
    """The loss and the task's metrics of these logits, as the Trainer's evaluation names them (without eval_)."""
    refs = torch.as_tensor(references)
    loss = float(task.loss(torch.as_tensor(logits), refs, loss_weight))
    return {"loss": loss, **task.compute_metrics(EvalPrediction(predictions=logits, label_ids=references))}


def class_weights(cfg: ExperimentConfig, task: Task, data: PreparedData) -> list[float] | None:
    """--class_weights: the weights the neural losses use (single-label: balanced, n / (K n_c); multi-label: each
    label's pos_weight), from the training split."""
    return task.loss_weights(data.references("train"), data.num_labels) if cfg.train.class_weights else None


def search(cfg: ExperimentConfig, task: Task, data: PreparedData, features: dict[str, Any],
           refs: dict[str, np.ndarray]) -> tuple[Fit, np.ndarray, dict[str, Any], list[dict[str, Any]]]:
    """Every value of GRID fitted on train and scored on validation: (the best fit, its validation logits and
    record, the records of every value). Strongest regularisation first; a later value must score strictly better
    to win."""
    metric, name = cfg.train.metric_for_best_model, parameter_name(task)
    sign = 1 if greater_is_better(metric) else -1
    weights = class_weights(cfg, task, data)
    loss_weight = torch.tensor(weights, dtype=torch.float64) if weights else None
    values = sorted(GRID, reverse=task.name == "regression")
    best: tuple[Fit, np.ndarray, dict[str, Any]] | None = None
    records = []
    for value in tqdm(values, desc=f"{name} on validation", unit="fit"):
        started = time.time()
        found = fit(task, features["train"], refs["train"], value, task.num_outputs(data.label_names),
                    weights, cfg.train.seed)
        logits = np.asarray(features["validation"] @ found.coef.T) + found.intercept
        record = {name: value, **scores(task, logits, refs["validation"], loss_weight),
                  "iterations": found.iterations, "fit_s": round(time.time() - started, 2)}
        records.append(record)
        logger.info("%s = %g: validation %s %.4f", name, value, metric, record[metric])
        if best is None or sign * record[metric] > sign * best[2][metric]:
            best = (found, logits, record)
    assert best is not None
    chosen = best[0]
    if chosen.value in (values[0], values[-1]):
        logger.warning("%s = %g, chosen on validation, is at the end of the grid (%g to %g)", name, chosen.value,
                       min(GRID), max(GRID))
    if task.name != "regression" and chosen.iterations >= MAX_ITER:
        logger.warning("the saga solver stopped at %d passes before converging at %s = %g", MAX_ITER, name,
                       chosen.value)
    return chosen, best[1], best[2], records


def fit_and_test(cfg: ExperimentConfig, spec: ModelSpec, data: PreparedData, run_dir: Path, is_main: bool
                 ) -> dict[str, Any]:
    """What hf_project.training.train_and_test does for a neural model: fit and select on validation, test once,
    write the run's result files and the copy in weights/; returns metrics.json's content. One process does it
    all (scikit-learn uses no GPU and no accelerate processes)."""
    if not is_main:
        return {}
    check_data(data)
    started = time.time()
    with PeakMemory(host=True) as peak:
        task = task_for(cfg, data)
        refs = {part: np.asarray(data.references(part)) for part in SPLITS}
        fit_started = time.time()
        vectorizer = fit_vectorizer(list(data.splits["train"]["text"]))
        features = {part: vectorizer.transform(list(data.splits[part]["text"])) for part in ("train", "validation")}
        logger.info("TF-IDF: %d features from %d training texts", len(vectorizer.vocabulary_), len(refs["train"]))
        chosen, validation_logits, best, records = search(cfg, task, data, features, refs)
        fit_seconds = time.time() - fit_started
        task = adjust_on_validation(cfg, task, refs["validation"], validation_logits)
        model = LinearTextModel(vectorizer, chosen.coef, chosen.intercept, data.label_names, task.model_settings(),
                                {parameter_name(task): chosen.value})
        test_logits = model.logits(list(data.splits["test"]["text"]))  # the one and only look at test
        memory = peak.reading()
    validation = {"best_step": None, "best_epoch": None, "selected_by": f"validation {cfg.train.metric_for_best_model}",
                  **{k: best[k] for k in ("loss", *ALL_METRIC_NAMES) if k in best}}
    weights = class_weights(cfg, task, data)
    loss_weight = torch.tensor(weights, dtype=torch.float64) if weights else None
    test_loss = float(task.loss(torch.as_tensor(test_logits), torch.as_tensor(refs["test"]), loss_weight))
    search_record = {"parameter": parameter_name(task), "chosen": chosen.value,
                     "selected_by": validation["selected_by"], "grid": records}
    return write_linear_results(run_dir, cfg, spec, data, task, model, chosen, validation, search_record,
                                test_logits, test_loss, time.time() - started, fit_seconds, memory)


def adjust_on_validation(cfg: ExperimentConfig, task: Task, references: np.ndarray, logits: np.ndarray) -> Task:
    """--temperature_scaling and --tune_threshold, fitted on the chosen model's validation logits as for a neural
    model (hf_project.training.fit_temperature, tune_threshold): part of the selected model, before test."""
    if cfg.train.temperature_scaling:
        task = task.with_temperature(references, logits)
        logger.info("temperature fitted on validation: T = %.4g", task.temperature)
    if cfg.train.tune_threshold:
        task = task.tune(references, task.outputs(logits), cfg.train.metric_for_best_model)
        logger.info("threshold tuned on validation by %s: %g", cfg.train.metric_for_best_model, task.threshold)
    return task


def write_linear_results(
    run_dir: Path, cfg: ExperimentConfig, spec: ModelSpec, data: PreparedData, task: Task, model: LinearTextModel,
    chosen: Fit, validation: dict[str, Any], search_record: dict[str, Any], test_logits: np.ndarray,
    test_loss: float, wall_time: float, fit_seconds: float, memory: dict[str, Any],
) -> dict[str, Any]:
    """The run directory's result files, in the layout hf_project.results.write_results gives a neural run."""
    metrics, refs, outputs, report = scored_test(cfg, spec, data, task, test_logits, validation, test_loss)
    metrics = {
        **metrics,
        "epochs_trained": None,  # no training steps: one fit per value of the grid
        "global_steps": None,
        "regularization": search_record,
    }
    model_dir, figures = run_dir / runs.MODEL_DIR, run_dir / runs.FIGURES_DIR
    model.save(model_dir)
    runs.write_json(run_dir / runs.LOG_HISTORY_FILE, [])  # no steps, so no step-wise losses
    write_test_files(run_dir, data, task, refs, outputs, report, title=f"{spec.name}: test")
    plot_search(search_record, cfg.train.metric_for_best_model, figures / REGULARIZATION_FIGURE,
                title=f"{spec.name} on {data.name}")
    runs.write_json(run_dir / runs.METRICS_FILE, metrics)
    run_manifest = manifest(cfg, spec, data, task, model, chosen, model_dir, wall_time, fit_seconds, memory)
    runs.write_json(run_dir / runs.MANIFEST_FILE, run_manifest)
    write_card(model_dir, metrics, run_manifest)
    weights_dir = Path(cfg.train.weights_dir) / data.name / spec.name
    runs.copy_dir_atomic(model_dir, weights_dir)
    logger.info("%s = %g chosen on validation (%s %.4f); %s; weights in %s", search_record["parameter"],
                chosen.value, cfg.train.metric_for_best_model, validation.get(cfg.train.metric_for_best_model,
                                                                             float("nan")),
                task.summary(report), weights_dir)
    return metrics


def manifest(cfg: ExperimentConfig, spec: ModelSpec, data: PreparedData, task: Task, model: LinearTextModel,
             chosen: Fit, model_dir: Path, wall_time: float, fit_seconds: float, memory: dict[str, Any]
             ) -> dict[str, Any]:
    """manifest.json with the keys of a neural run's (hf_project.results.manifest), and a `linear` entry: the
    estimator, the vectoriser and the regularisation chosen. Throughput counts every fit of the grid, as the
    Trainer's counts every epoch."""
    size = sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))
    fits = len(GRID)
    return {
        "command": runs.command_line(),
        "seed": cfg.train.seed,
        "full_determinism": cfg.train.full_determinism,
        "model": {"name": spec.name, "checkpoint": None, "from_scratch": True, "class": estimator_name(task),
                  "source": None, "family": "linear"},
        "versions": runs.package_versions(),
        "git": runs.git_state(),
        "device": {**cpu_device(), "num_processes": 1, "distributed_type": "NO"},
        "mixed_precision": "no",
        "resumed_from": None,
        "dataset": {"name": data.name, "modality": data.modality, "fingerprint": data.fingerprint,
                    "num_labels": data.num_labels, "sizes": {k: len(v) for k, v in data.splits.items()}},
        "split_hash": data.split["hash"],
        "label_names": data.label_names,
        "parameters": {"total": chosen.parameters, "trainable": chosen.parameters},
        "model_size_mb": round(size / 1e6, 3),
        "wall_time_s": round(wall_time, 2),
        "train_runtime_s": round(fit_seconds, 2),
        "train_samples_per_second": round(fits * len(data.splits["train"]) / fit_seconds, 1) if fit_seconds else None,
        **memory,
        "linear": {"estimator": estimator_name(task),
                   "solver": "sparse_cg" if task.name == "regression" else "saga",
                   "max_iter": MAX_ITER,
                   "class_weight": ("pos_weight" if task.name == "multi_label" else "balanced")
                   if cfg.train.class_weights else None,
                   "one_vs_rest": task.name == "multi_label",
                   "regularization": {parameter_name(task): chosen.value}, "grid": list(GRID),
                   "iterations": chosen.iterations, "num_features": model.num_features,
                   "vectorizer": {**model.vectorizer.get_params(deep=False), "dtype": "float64"}},
    }


def cpu_device() -> dict[str, Any]:
    """runs.device_info() of the CPU that fitted the model, also on a machine with a GPU (which it never used)."""
    info = runs.device_info()
    if info["type"] == "cpu":
        return info
    keep = {k: info[k] for k in ("platform", "cpu_count", "torch_threads")}
    return {**keep, "type": "cpu", "name": platform.processor() or platform.machine()}


def plot_search(record: dict[str, Any], metric: str, path: Path, title: str) -> None:
    """The validation score and loss of every value of the grid, the chosen one marked."""
    name, grid = record["parameter"], record["grid"]
    values = [r[name] for r in grid]
    fig = plots._new_figure(7, 4.5)
    ax = fig.add_subplot()
    ax.plot(values, [r[metric] for r in grid], marker="o", color="tab:blue", label=f"validation {metric}")
    ax.axvline(record["chosen"], color="tab:green", linestyle="--", label=f"chosen {name} = {record['chosen']:g}")
    ax.set_xscale("log")
    ax.set_xlabel(name)
    ax.set_ylabel(metric)
    if metric != "loss":
        twin = ax.twinx()
        twin.plot(values, [r["loss"] for r in grid], marker=".", color="tab:orange", label="validation loss")
        twin.set_ylabel("loss")
        handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        ax.legend(handles=handles, loc="best")
    else:
        ax.legend(loc="best")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    plots._save_atomic(fig, path)


def write_card(model_dir: Path, metrics: dict[str, Any], manifest: dict[str, Any]) -> None:
    """A short model card (README.md): what the model is, how it was chosen, its test scores, how to load it."""
    linear, search_record = manifest["linear"], metrics["regularization"]
    test = ", ".join(f"{k} {v:.4f}" for k, v in metrics["test"].items() if k in TASK_METRICS[metrics["task"]])
    lines = [
        f"# {metrics['model']} on {metrics['dataset']}", "",
        f"TF-IDF (word 1-2-grams, sublinear tf, {linear['num_features']:,} features from the training split) and "
        f"{linear['estimator']} ({'one per label, ' if linear['one_vs_rest'] else ''}solver {linear['solver']}), "
        f"the linear baseline of hf_project. {search_record['parameter']} = {search_record['chosen']:g} was chosen "
        f"on validation {metrics['selection_metric']} among {', '.join(f'{v:g}' for v in linear['grid'])}.", "",
        f"Split {manifest['split_hash']}, seed {metrics['seed']}. Test ({metrics['test']['num_examples']} examples, "
        f"scored once): {test}.", "",
        "Load it with `hf_project.inference.Predictor.load(<this folder>)` or `scripts/predict.py <this folder> "
        "inputs.csv`; the files are plain JSON and safetensors (no pickle).", "",
    ]
    runs.atomic_write_text(model_dir / runs.MODEL_CARD_FILE, "\n".join(lines))
