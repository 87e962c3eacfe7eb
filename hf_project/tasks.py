"""The task kinds, and the one place each decides its head, loss, metrics, predictions and figures.

    single_label   one class per example: softmax over K outputs, cross-entropy (class weights: per class),
                   accuracy / macro-F1 / weighted-F1, a confusion matrix
    multi_label    a set of labels per example: K sigmoid outputs, binary cross-entropy (class weights: pos_weight
                   per label), a label is predicted above a threshold (fixed, or tuned on validation), micro/macro/
                   samples-F1, Hamming loss, subset accuracy, test F1 per label
    regression     one number per example: one output, mean squared error on targets standardised with the training
                   split's mean and standard deviation (undone for every reported value), RMSE / MAE / Pearson /
                   Spearman / R^2 in the target's units, predicted against true values

The data side (hf_project.data.labels) turns a label column into what the task trains on; everything after that
asks the task object. The model's config carries what inference needs to undo the same way: problem_type, the
threshold (`label_threshold`), the target's statistics (`target_mean`, `target_std`) and, for a classifier whose
temperature was fitted on validation (--temperature_scaling), that temperature (`calibration_temperature`).

Both classifiers report the calibration of their test probabilities (ECE, Brier score, NLL) and draw a reliability
diagram; a regression does neither.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from hf_project import plots, runs
from hf_project.metrics import (
    DEFAULT_METRIC,
    TASK_METRICS,
    TASKS,
    calibration_pairs,
    calibration_scores,
    classification_report,
    compute_metrics,
    greater_is_better,
    logits_of,
    multi_label_report,
    multi_label_scores,
    regression_report,
    regression_scores,
    reliability_bins,
)

LABEL_SET_SEPARATOR = runs.LABEL_SET_SEPARATOR
DEFAULT_THRESHOLD = 0.5
THRESHOLD_GRID = tuple(round(t, 2) for t in np.arange(0.05, 0.96, 0.05))  # what --tune_threshold tries
# transformers' config.problem_type of each task
PROBLEM_TYPES = {"single_label": "single_label_classification", "multi_label": "multi_label_classification",
                 "regression": "regression"}
# The model config's key of a fitted temperature. Not `temperature`: that names a sampling setting of generation.
TEMPERATURE_SETTING = "calibration_temperature"
TEMPERATURE_RANGE = (0.01, 100.0)  # where --temperature_scaling looks for T


@dataclass(frozen=True)
class SingleLabel:
    name: ClassVar[str] = "single_label"
    figure: ClassVar[str] = runs.TEST_FIGURES["single_label"]
    # the reliability diagram's axes: what a bin's confidence and its outcome are
    calibration_axes: ClassVar[tuple[str, str]] = ("confidence (probability of the predicted class)", "accuracy")
    temperature: float = 1.0  # outputs are softmax(logits / temperature); 1 (the default) leaves logits untouched
    # validation NLL before and after, when the temperature was fitted on validation (--temperature_scaling)
    temperature_fit: tuple[float, float] | None = None

    def num_outputs(self, label_names: list[str]) -> int:
        return len(label_names)

    def model_settings(self) -> dict[str, Any]:
        """What the model's config records for inference."""
        return {"problem_type": PROBLEM_TYPES[self.name], **self.temperature_setting()}

    def temperature_setting(self) -> dict[str, float]:
        # Only a fitted (or restored) temperature is written: models trained without one keep their config as it was.
        scaled = self.temperature_fit is not None or self.temperature != 1.0
        return {TEMPERATURE_SETTING: self.temperature} if scaled else {}

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        return F.cross_entropy(logits, labels, weight=weight)

    def loss_weights(self, train_labels: list[Any], num_labels: int) -> list[float]:
        """'Balanced' class weights n / (K * n_c); a class absent from train gets weight 0."""
        from hf_project.data.labels import class_weights

        return class_weights(train_labels, num_labels)

    def initial_bias(self, train_labels: list[Any]) -> list[float] | None:
        """The output biases a new head starts from (None: the model's own initialisation)."""
        return None

    def scaled(self, logits: Any) -> torch.Tensor:
        """The logits as float32, divided by the temperature; at T = 1 not divided at all, so that runs without
        temperature scaling give exactly the numbers they gave before it existed."""
        values = torch.from_numpy(logits_of(logits).astype(np.float32))
        return values if self.temperature == 1.0 else values / self.temperature

    def outputs(self, logits: Any) -> np.ndarray:
        """(N, K) class probabilities, softmax(logits / T): a temperature never changes the most probable class."""
        return torch.softmax(self.scaled(logits), -1).numpy()

    def logit_nll(self, references: Any, logits: np.ndarray) -> float:
        """The mean negative log-likelihood of the references under these logits (float64)."""
        from scipy.special import log_softmax

        refs = np.asarray(references).astype(np.int64).reshape(-1)
        return float(-np.mean(log_softmax(logits, axis=-1)[np.arange(len(refs)), refs]))

    def with_temperature(self, references: Any, logits: Any) -> SingleLabel:
        """This task with one temperature T > 0 fitted to these (validation) predictions: the T of TEMPERATURE_RANGE
        that minimises the NLL of the references under logits / T (Guo et al., 2017), found by a bounded Brent search
        over log T (deterministic; the NLL is convex in 1/T, so unimodal in log T). T > 1 softens over-confident
        probabilities, T < 1 sharpens timid ones; should the search not beat T = 1, T stays 1."""
        from scipy.optimize import minimize_scalar

        values = logits_of(logits).astype(np.float64)
        before = self.logit_nll(references, values)
        low, high = (math.log(t) for t in TEMPERATURE_RANGE)
        found = minimize_scalar(lambda u: self.logit_nll(references, values / math.exp(u)), bounds=(low, high),
                                method="bounded", options={"xatol": 1e-6})
        temperature = float(math.exp(found.x))
        after = self.logit_nll(references, values / temperature)
        if not after < before:
            temperature, after = 1.0, before
        return dataclasses.replace(self, temperature=temperature, temperature_fit=(before, after))

    def decide(self, outputs: np.ndarray) -> np.ndarray:
        """What the test scores are computed from (hf_project.stats takes it): class ids; multi-label: 0/1 label
        indicators at the threshold; regression: the predicted values."""
        return np.asarray(outputs).argmax(-1)

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        return compute_metrics(eval_pred)

    def report(self, references: np.ndarray, outputs: np.ndarray, names: list[str]) -> dict[str, Any]:
        """The test scores, per-class rows (classification_report.csv) and the confusion matrix."""
        return classification_report(np.asarray(references).tolist(), outputs.argmax(-1).tolist(), names)

    def confusion(self, report: dict[str, Any], names: list[str]) -> dict[str, Any] | None:
        return {"labels": names, "matrix": report["confusion_matrix"]}

    def calibration(self, references: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
        """ECE, Brier score and NLL of the test probabilities (hf_project.metrics.calibration_scores)."""
        return calibration_scores(references, outputs, self.name)

    def draw_calibration(self, references: np.ndarray, outputs: np.ndarray, path: Path, title: str) -> None:
        """The reliability diagram of the test probabilities."""
        bins = reliability_bins(*calibration_pairs(references, outputs, self.name))
        plots.plot_reliability(bins, path, title=title, axes=self.calibration_axes)

    def predicted(self, output: np.ndarray, names: list[str]) -> dict[str, Any]:
        """The prediction columns of one example (predictions_test.csv, predict.py)."""
        k = int(output.argmax())
        return {"predicted": names[k], "score": float(output[k]),
                **{f"p_{name}": float(p) for name, p in zip(names, output, strict=True)}}

    def row(self, reference: Any, output: np.ndarray, names: list[str]) -> dict[str, Any]:
        """The columns of predictions_test.csv after the input: the truth, the prediction and whether they agree."""
        k = int(output.argmax())
        fields = self.predicted(output, names)
        return {"label": names[reference], "predicted": fields.pop("predicted"), "score": fields.pop("score"),
                "correct": bool(reference == k), **fields}

    def draw(self, report: dict[str, Any], references: np.ndarray, outputs: np.ndarray, names: list[str],
             path: Path, title: str) -> None:
        plots.plot_confusion_matrix(report["confusion_matrix"], names, path, title=title)

    def summary(self, report: dict[str, Any]) -> str:
        return f"test accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}"

    def record(self) -> dict[str, Any]:
        """What metrics.json says of the task beyond its name."""
        return self.temperature_record()

    def temperature_record(self) -> dict[str, Any]:
        if self.temperature_fit is None:
            return {}
        before, after = self.temperature_fit
        return {"temperature": {"value": self.temperature, "validation_nll_before": before,
                                "validation_nll_after": after}}


@dataclass(frozen=True)
class MultiLabel(SingleLabel):
    name: ClassVar[str] = "multi_label"
    figure: ClassVar[str] = runs.TEST_FIGURES["multi_label"]
    calibration_axes: ClassVar[tuple[str, str]] = ("predicted probability of a label",
                                                   "fraction of (example, label) pairs with the label")
    threshold: float = DEFAULT_THRESHOLD
    tuned: bool = False  # whether `threshold` was chosen on validation

    def model_settings(self) -> dict[str, Any]:
        return {"problem_type": PROBLEM_TYPES[self.name], "label_threshold": self.threshold,
                **self.temperature_setting()}

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), pos_weight=weight)

    def loss_weights(self, train_labels: list[Any], num_labels: int) -> list[float]:
        """pos_weight of each label: its negatives over its positives in train (BCEWithLogitsLoss's recipe)."""
        positives = np.asarray(train_labels, dtype=np.float64).sum(axis=0)
        return [float((len(train_labels) - p) / p) if p else 0.0 for p in positives]

    def initial_bias(self, train_labels: list[Any]) -> list[float]:
        """The output biases a new head starts from: each label's log-odds in train, so that the first predictions
        are the label frequencies. From zero biases (probability 0.5 for every label, when a label is on a few
        percent of the examples) the first steps' gradients only push every output down, through the pretrained
        encoder too: MiniLM on debtags stayed at the constant most-frequent-labels prediction for 3 epochs."""
        prevalence = np.asarray(train_labels, dtype=np.float64).mean(axis=0).clip(1e-4, 1 - 1e-4)
        return np.log(prevalence / (1 - prevalence)).tolist()

    def outputs(self, logits: Any) -> np.ndarray:
        """(N, K) independent label probabilities, sigmoid(logits / T); the threshold applies to these."""
        return torch.sigmoid(self.scaled(logits)).numpy()

    def logit_nll(self, references: Any, logits: np.ndarray) -> float:
        """The mean binary cross-entropy over every (example, label) pair (float64, from the logits)."""
        refs = np.asarray(references, dtype=np.float64)
        return float(np.mean(np.logaddexp(0.0, logits) - refs * logits))

    def decide(self, outputs: np.ndarray) -> np.ndarray:
        return (outputs >= self.threshold).astype(np.int64)

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        return multi_label_scores(np.asarray(eval_pred.label_ids), self.decide(self.outputs(eval_pred.predictions)))

    def report(self, references: np.ndarray, outputs: np.ndarray, names: list[str]) -> dict[str, Any]:
        return multi_label_report(np.asarray(references), self.decide(outputs), names)

    def confusion(self, report: dict[str, Any], names: list[str]) -> dict[str, Any] | None:
        return {"kind": "per_label", "labels": names, "matrix": report["confusion_matrix"]}

    def predicted(self, output: np.ndarray, names: list[str]) -> dict[str, Any]:
        chosen = self.decide(output)
        return {"predicted": label_set(names, chosen),
                **{f"p_{name}": float(p) for name, p in zip(names, output, strict=True)}}

    def row(self, reference: Any, output: np.ndarray, names: list[str]) -> dict[str, Any]:
        fields = self.predicted(output, names)
        truth = np.asarray(reference, dtype=np.int64)
        return {"label": label_set(names, truth), "predicted": fields.pop("predicted"),
                "correct": bool((self.decide(output) == truth).all()), **fields}

    def draw(self, report: dict[str, Any], references: np.ndarray, outputs: np.ndarray, names: list[str],
             path: Path, title: str) -> None:
        plots.plot_per_label_f1(report["per_class"], path, title=title)

    def summary(self, report: dict[str, Any]) -> str:
        return f"test micro-F1 {report['micro_f1']:.4f}, macro-F1 {report['macro_f1']:.4f} at threshold " \
               f"{self.threshold:g}"

    def record(self) -> dict[str, Any]:
        return {"threshold": {"value": self.threshold, "tuned_on_validation": self.tuned}, **self.temperature_record()}

    def tune(self, references: np.ndarray, outputs: np.ndarray, metric: str) -> MultiLabel:
        """The threshold of THRESHOLD_GRID that scores best on these (validation) predictions by `metric` (micro-F1
        when the metric does not depend on it, the loss); ties go to the one nearest the current threshold."""
        metric = metric if metric in TASK_METRICS[self.name] else DEFAULT_METRIC[self.name]
        sign = 1 if greater_is_better(metric) else -1
        refs = np.asarray(references)

        def score(t: float) -> tuple[float, float]:
            value = multi_label_scores(refs, (outputs >= t).astype(np.int64))[metric]
            return sign * value, -abs(t - self.threshold)

        return dataclasses.replace(self, threshold=float(max(THRESHOLD_GRID, key=score)), tuned=True)


@dataclass(frozen=True)
class Regression(SingleLabel):
    name: ClassVar[str] = "regression"
    figure: ClassVar[str] = runs.TEST_FIGURES["regression"]
    mean: float = 0.0  # the model predicts (y - mean) / std
    std: float = 1.0
    standardized: bool = False
    column: str = "label"

    def num_outputs(self, label_names: list[str]) -> int:
        return 1

    def model_settings(self) -> dict[str, Any]:
        return {"problem_type": PROBLEM_TYPES[self.name], "target_mean": self.mean, "target_std": self.std}

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        target = (labels.to(logits.dtype) - self.mean) / self.std
        return F.mse_loss(logits.view(-1), target.view(-1))

    def loss_weights(self, train_labels: list[Any], num_labels: int) -> list[float]:
        raise ValueError("a regression has no classes to weight")

    def with_temperature(self, references: Any, logits: Any) -> Regression:
        raise ValueError("a regression has no probabilities to calibrate")

    def outputs(self, logits: Any) -> np.ndarray:
        """(N,) predicted values in the target's units."""
        values = logits_of(logits).astype(np.float64)
        return values.reshape(len(values), -1)[:, 0] * self.std + self.mean

    def decide(self, outputs: np.ndarray) -> np.ndarray:
        return np.asarray(outputs)

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        return regression_scores(np.asarray(eval_pred.label_ids), self.outputs(eval_pred.predictions))

    def report(self, references: np.ndarray, outputs: np.ndarray, names: list[str]) -> dict[str, Any]:
        return regression_report(np.asarray(references), outputs)

    def confusion(self, report: dict[str, Any], names: list[str]) -> dict[str, Any] | None:
        return None

    def calibration(self, references: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
        return {}  # no probabilities, no calibration

    def draw_calibration(self, references: np.ndarray, outputs: np.ndarray, path: Path, title: str) -> None:
        return None

    def predicted(self, output: Any, names: list[str]) -> dict[str, Any]:
        return {"predicted": float(output)}

    def row(self, reference: Any, output: Any, names: list[str]) -> dict[str, Any]:
        return {"label": float(reference), "predicted": float(output), "error": float(output) - float(reference)}

    def draw(self, report: dict[str, Any], references: np.ndarray, outputs: np.ndarray, names: list[str],
             path: Path, title: str) -> None:
        plots.plot_predicted_vs_true(references, outputs, path, title=title, quantity=self.column)

    def summary(self, report: dict[str, Any]) -> str:
        return f"test RMSE {report['rmse']:.4g}, Pearson {report['pearson']:.4f}"

    def record(self) -> dict[str, Any]:
        return {"target": {"column": self.column, "standardized": self.standardized, "mean": self.mean,
                           "std": self.std}}


Task = SingleLabel | MultiLabel | Regression
_CLASSES = {cls.name: cls for cls in (SingleLabel, MultiLabel, Regression)}
assert tuple(_CLASSES) == TASKS


def label_set(names: list[str], indicators: np.ndarray) -> str:
    return LABEL_SET_SEPARATOR.join(name for name, on in zip(names, indicators, strict=True) if on)


def make_task(name: str, **settings: Any) -> Task:
    """The task object of `name` (one of TASKS) with its settings (threshold, the target's statistics)."""
    return _CLASSES[name](**settings)


def task_of_model(config: Any) -> Task:
    """The task a saved model was trained for, with what its predictions need (threshold, target statistics, a fitted
    temperature)."""
    problem = getattr(config, "problem_type", None) or PROBLEM_TYPES["single_label"]
    name = next((k for k, v in PROBLEM_TYPES.items() if v == problem), "single_label")
    temperature = float(getattr(config, TEMPERATURE_SETTING, None) or 1.0)
    if name == "multi_label":
        return MultiLabel(threshold=float(getattr(config, "label_threshold", None) or DEFAULT_THRESHOLD),
                          temperature=temperature)
    if name == "regression":
        mean, std = getattr(config, "target_mean", None), getattr(config, "target_std", None)
        column = next(iter(getattr(config, "id2label", {}).values()), "label")
        mean, std = float(mean or 0.0), float(std or 1.0)
        return Regression(mean=mean, std=std, standardized=(mean, std) != (0.0, 1.0), column=column)
    return SingleLabel(temperature=temperature)


def task_for(cfg: Any, data: Any) -> Task:
    """The task of a run: the data's (hf_project.data.PreparedData.task) with the run's settings (an
    ExperimentConfig's threshold and target standardisation)."""
    if data.task == "multi_label":
        return MultiLabel(threshold=cfg.train.threshold)
    if data.task == "regression":
        mean, std = data.target_stats if cfg.train.standardize_targets else (0.0, 1.0)
        return Regression(mean=mean, std=std or 1.0, standardized=cfg.train.standardize_targets,
                          column=data.label_names[0])
    return SingleLabel()
