"""Classification metrics computed through `evaluate` modules shipped inside this package.

The metric scripts live next to this file and are loaded by absolute path to the ``.py`` file, so nothing
is ever fetched from the Hugging Face hub. evaluate still copies each script into its modules cache
(``HF_MODULES_CACHE``, default ``~/.cache/huggingface/modules``) and creates an empty directory under
``HF_METRICS_CACHE``; both must be writable, the package directory need not be.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import evaluate

logger = logging.getLogger(__name__)

METRIC_NAMES = ("accuracy", "macro_f1", "weighted_f1")  # single-label classification
MULTI_LABEL_METRIC_NAMES = ("micro_f1", "macro_f1", "samples_f1", "hamming_loss", "subset_accuracy")
REGRESSION_METRIC_NAMES = ("rmse", "mae", "pearson", "spearman", "r2")

# The task kinds (hf_project.tasks holds what each does) and the facts about them that readers of runs need too:
# the metrics a run of each reports, the one that selects the best checkpoint by default, and the two that tables
# show beside the selection metric (a deliberate subset, so a table fits).
TASKS = ("single_label", "multi_label", "regression")
TASK_METRICS = {"single_label": METRIC_NAMES, "multi_label": MULTI_LABEL_METRIC_NAMES,
                "regression": REGRESSION_METRIC_NAMES}
DEFAULT_METRIC = {"single_label": "macro_f1", "multi_label": "micro_f1", "regression": "rmse"}
TABLE_METRICS = {"single_label": ("accuracy", "macro_f1"), "multi_label": ("micro_f1", "macro_f1"),
                 "regression": ("rmse", "pearson")}
ALL_METRIC_NAMES = tuple(dict.fromkeys(m for names in TASK_METRICS.values() for m in names))

# Names accepted by load_metric: one directory per metric, holding <name>/<name>.py.
AVAILABLE_METRICS = ("accuracy", "confusion_matrix", "f1", "precision", "recall")
# Calibration of a classifier's probabilities on test (single-label and multi-label): expected calibration error over
# 15 equal-width confidence bins, Brier score and negative log-likelihood; lower is better for all three.
CALIBRATION_METRIC_NAMES = ("ece", "brier", "nll")
LOWER_IS_BETTER = frozenset({"loss", "rmse", "mae", "hamming_loss", *CALIBRATION_METRIC_NAMES})


def greater_is_better(metric: str) -> bool:
    """Whether a higher value of `metric` is better (selection, early stopping, the best mark in tables)."""
    return metric not in LOWER_IS_BETTER

_METRICS_DIR = Path(__file__).resolve().parent


def metric_script_path(name: str) -> Path:
    """Return the path of the shipped evaluate script for ``name``; ValueError if there is none."""
    if name not in AVAILABLE_METRICS:
        raise ValueError(f"Unknown metric {name!r}; valid names: {', '.join(AVAILABLE_METRICS)}")
    return _METRICS_DIR / name / f"{name}.py"


@functools.cache  # an lru_cache without a size bound
def load_metric(name: str) -> evaluate.EvaluationModule:
    """Load a shipped metric by local path; cached, so the returned instance is shared between callers.

    The shared instance is fine for ``compute(predictions=..., references=...)`` but not for concurrent
    ``add_batch`` accumulation from several threads.
    """
    path = metric_script_path(name)
    # Imported lazily: evaluate pulls in datasets/pyarrow, which callers needing only METRIC_NAMES avoid.
    import evaluate

    # Passing the .py file (not its directory) takes evaluate's "file exists" branch, which raises
    # FileNotFoundError instead of falling back to a hub lookup if the script were ever missing.
    # keep_in_memory avoids arrow cache files and file locks under HF_METRICS_CACHE on every compute.
    metric = evaluate.load(str(path), keep_in_memory=True)
    logger.debug("Loaded metric %s from %s", name, path)
    return metric


def logits_of(predictions: Any) -> np.ndarray:
    # Trainer passes a tuple when the model returns extra outputs (hidden states, ...); logits come first.
    if isinstance(predictions, tuple | list):
        predictions = predictions[0]
    return np.asarray(predictions)


def _class_ids(predictions: Any) -> tuple[np.ndarray, int | None]:
    """Turn logits (N, K) into predicted ids, also returning K; 1-D input is taken as ids already."""
    logits = logits_of(predictions)
    if logits.ndim == 1:
        # preprocess_logits_for_metrics may already have reduced logits to ids, so K is unknown here.
        return logits.astype(np.int64), None
    if logits.ndim != 2:
        raise ValueError(f"Expected logits of shape (N, K), got shape {logits.shape}")
    return logits.argmax(axis=-1), logits.shape[-1]


def _summary_scores(references: np.ndarray, predictions: np.ndarray, labels: list[int]) -> dict[str, float]:
    accuracy = load_metric("accuracy").compute(predictions=predictions, references=references)["accuracy"]
    f1 = load_metric("f1")
    scores = {"accuracy": float(accuracy)}
    for average in ("macro", "weighted"):
        result = f1.compute(
            predictions=predictions, references=references, labels=labels, average=average, zero_division=0
        )
        scores[f"{average}_f1"] = float(result["f1"])
    return scores


def compute_metrics(eval_pred: Any) -> dict[str, float]:
    """Trainer-compatible metrics: accuracy, macro F1 and weighted F1 as python floats.

    F1 averages cover every class id 0..K-1 given by the logits' width, so a class that the model never
    predicts and that is absent from this split still pulls the macro average down (scored 0).
    """
    predictions, num_labels = _class_ids(eval_pred.predictions)
    references = np.asarray(eval_pred.label_ids).astype(np.int64).reshape(-1)
    if num_labels is None:
        num_labels = int(max(predictions.max(initial=0), references.max(initial=0))) + 1
    _check_inputs(references, predictions, num_labels)
    return _summary_scores(references, predictions, list(range(num_labels)))


def _check_inputs(references: np.ndarray, predictions: np.ndarray, num_labels: int) -> None:
    if references.shape != predictions.shape:
        raise ValueError(f"{references.shape[0]} references but {predictions.shape[0]} predictions")
    if references.size == 0:
        raise ValueError("Cannot compute metrics on zero examples")
    # An id outside 0..K-1 would silently count in accuracy but be ignored by F1 and the confusion matrix.
    for name, ids in (("references", references), ("predictions", predictions)):
        if ids.min() < 0 or ids.max() >= num_labels:
            raise ValueError(f"{name} contain ids outside 0..{num_labels - 1}")


def _per_class(
    references: np.ndarray, predictions: np.ndarray, labels: list[int], matrix: np.ndarray, names: list[str]
) -> list[dict[str, Any]]:
    kwargs = {"predictions": predictions, "references": references, "labels": labels, "average": None}
    scores = {
        metric: np.atleast_1d(load_metric(metric).compute(**kwargs, zero_division=0)[metric])
        for metric in ("precision", "recall", "f1")
    }
    support = matrix.sum(axis=1)
    return [
        {
            "label": names[i],
            "precision": float(scores["precision"][i]),
            "recall": float(scores["recall"][i]),
            "f1": float(scores["f1"][i]),
            "support": int(support[i]),
        }
        for i in labels
    ]


def classification_report(
    references: Sequence[int] | np.ndarray, predictions: Sequence[int] | np.ndarray, label_names: list[str]
) -> dict[str, Any]:
    """Summary scores, per-class precision/recall/F1/support and the confusion matrix over all labels.

    Every label id 0..len(label_names)-1 appears in ``per_class`` and in the K x K ``confusion_matrix``
    (rows = true label, columns = predicted), even when absent from the data; undefined scores are 0.
    """
    refs = np.asarray(references).astype(np.int64).reshape(-1)
    preds = np.asarray(predictions).astype(np.int64).reshape(-1)
    labels = list(range(len(label_names)))
    _check_inputs(refs, preds, len(labels))
    matrix = load_metric("confusion_matrix").compute(predictions=preds, references=refs, labels=labels)
    matrix = np.asarray(matrix["confusion_matrix"], dtype=np.int64)
    report: dict[str, Any] = _summary_scores(refs, preds, labels)
    report["per_class"] = _per_class(refs, preds, labels, matrix, label_names)
    report["confusion_matrix"] = matrix.tolist()
    return report


# ---- multi-label and regression --------------------------------------------------------------------------------
# scikit-learn's (and scipy's) functions directly: the shipped evaluate modules take one class id per example.


def multi_label_scores(references: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """MULTI_LABEL_METRIC_NAMES from (N, K) 0/1 indicator arrays; an undefined F1 (no true and no predicted label)
    counts 0."""
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss

    refs, preds = np.asarray(references, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    if refs.shape != preds.shape or refs.ndim != 2:
        raise ValueError(f"multi-label references {refs.shape} and predictions {preds.shape} must be the same (N, K)")
    if refs.shape[0] == 0:
        raise ValueError("Cannot compute metrics on zero examples")
    scores = {f"{average}_f1": float(f1_score(refs, preds, average=average, zero_division=0))
              for average in ("micro", "macro", "samples")}
    scores["hamming_loss"] = float(hamming_loss(refs, preds))
    scores["subset_accuracy"] = float(accuracy_score(refs, preds))  # the exact label set
    return {name: scores[name] for name in MULTI_LABEL_METRIC_NAMES}


def multi_label_report(references: np.ndarray, predictions: np.ndarray, label_names: list[str]) -> dict[str, Any]:
    """Per-label precision/recall/F1/support and each label's 2x2 confusion matrix [[tn, fp], [fn, tp]]."""
    from sklearn.metrics import multilabel_confusion_matrix, precision_recall_fscore_support

    refs, preds = np.asarray(references, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    precision, recall, f1, support = precision_recall_fscore_support(refs, preds, average=None, zero_division=0)
    per_label = [{"label": name, "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                  "support": int(support[i])} for i, name in enumerate(label_names)]
    matrices = multilabel_confusion_matrix(refs, preds).tolist()
    return {**multi_label_scores(refs, preds), "per_class": per_label, "confusion_matrix": matrices}


def regression_scores(references: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """REGRESSION_METRIC_NAMES in the target's own units. A correlation of constant predictions is undefined: it is
    reported as 0 (no linear or rank agreement), as a constant predictor earns."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    refs, preds = np.asarray(references, dtype=np.float64).reshape(-1), np.asarray(predictions, dtype=np.float64)
    preds = preds.reshape(-1)
    if refs.shape != preds.shape:
        raise ValueError(f"{refs.shape[0]} references but {preds.shape[0]} predictions")
    if refs.size == 0:
        raise ValueError("Cannot compute metrics on zero examples")
    if not (np.isfinite(preds).all() and np.isfinite(refs).all()):
        raise ValueError("regression predictions or references are not finite (NaN or inf)")
    constant = np.ptp(preds) == 0 or np.ptp(refs) == 0
    scores = {
        "rmse": float(np.sqrt(mean_squared_error(refs, preds))),
        "mae": float(mean_absolute_error(refs, preds)),
        "pearson": 0.0 if constant else float(pearsonr(refs, preds)[0]),
        "spearman": 0.0 if constant else float(spearmanr(refs, preds)[0]),
        "r2": float(r2_score(refs, preds)) if refs.size > 1 else 0.0,
    }
    return scores


def regression_report(references: np.ndarray, predictions: np.ndarray, bins: int = 5) -> dict[str, Any]:
    """The scores, and the errors per quintile of the true value (rows bin, low, high, n, rmse, mae, bias): where
    in the target's range the model errs, and which way."""
    refs, preds = np.asarray(references, dtype=np.float64), np.asarray(predictions, dtype=np.float64)
    order = np.argsort(refs, kind="stable")
    rows = []
    for k, part in enumerate(np.array_split(order, min(bins, len(refs)))):
        error = preds[part] - refs[part]
        rows.append({"bin": k + 1, "low": float(refs[part].min()), "high": float(refs[part].max()), "n": len(part),
                     "rmse": float(np.sqrt(np.mean(error ** 2))), "mae": float(np.mean(np.abs(error))),
                     "bias": float(np.mean(error))})
    return {**regression_scores(refs, preds), "per_class": rows}


# ---- calibration -----------------------------------------------------------------------------------------------
# How far a classifier's probabilities can be taken at their word, on test (and for --temperature_scaling, on
# validation). A regression has no probabilities: none of this applies to it.

CALIBRATION_BINS = 15  # equal-width bins of [0, 1], as in Guo et al. (2017), "On calibration of modern neural networks"
PROBABILITY_FLOOR = 1e-12  # log(0) guard of the NLL


def calibration_pairs(references: Any, probabilities: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
    """What calibration compares: (stated probability, outcome 0/1) per prediction. Single-label: the confidence (the
    largest class probability) against whether the most probable class is the true one. Multi-label: every (example,
    label) pair is one binary prediction, its sigmoid probability against whether the label is on."""
    probs = np.asarray(probabilities, dtype=np.float64)
    if task == "single_label":
        refs = np.asarray(references).astype(np.int64).reshape(-1)
        _check_probabilities(refs, probs, (len(refs), probs.shape[-1]))
        return probs.max(axis=-1), (probs.argmax(axis=-1) == refs).astype(np.float64)
    if task == "multi_label":
        refs = np.asarray(references, dtype=np.float64)
        _check_probabilities(refs, probs, refs.shape)
        return probs.reshape(-1), refs.reshape(-1)
    raise ValueError(f"calibration needs class probabilities: a {task} task has none")


def _check_probabilities(references: np.ndarray, probabilities: np.ndarray, shape: tuple[int, ...]) -> None:
    """`shape`: the (N, K) the references call for."""
    if probabilities.ndim != 2 or probabilities.shape != tuple(shape):
        raise ValueError(f"references {references.shape} do not fit probabilities {probabilities.shape}")
    if len(references) == 0:
        raise ValueError("Cannot compute metrics on zero examples")


def reliability_bins(confidences: np.ndarray, outcomes: np.ndarray, bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Per equal-width bin of [0, 1] (bin m holds (m/bins, (m+1)/bins], the first one 0 too): its edges, number of
    predictions, their mean confidence and their mean outcome (accuracy, or the fraction of labels on); empty bins
    have mean NaN. `ece` is the sum over bins of |mean outcome - mean confidence| x the bin's share of predictions."""
    conf, hit = np.asarray(confidences, dtype=np.float64), np.asarray(outcomes, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.digitize(conf, edges[1:-1], right=True)  # edges[m] < conf <= edges[m + 1]
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=conf, minlength=bins) / counts
        mean_hit = np.bincount(index, weights=hit, minlength=bins) / counts
    filled = counts > 0
    ece = float(np.sum(np.abs(mean_hit[filled] - mean_conf[filled]) * counts[filled]) / counts.sum())
    return {"edges": edges.tolist(), "count": counts.tolist(),
            "confidence": mean_conf.tolist(), "accuracy": mean_hit.tolist(), "ece": ece}


def expected_calibration_error(confidences: np.ndarray, outcomes: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """ECE over `bins` equal-width confidence bins (reliability_bins)."""
    return reliability_bins(confidences, outcomes, bins)["ece"]


def calibration_scores(references: Any, probabilities: np.ndarray, task: str) -> dict[str, float]:
    """CALIBRATION_METRIC_NAMES of a classifier's probabilities (`task`: single_label or multi_label); lower is better.

    single_label (probabilities (N, K), references the class ids):
        ece    over 15 equal-width bins of the confidence (largest probability) against accuracy (argmax == label)
        brier  the multi-class Brier score of Brier (1950): the mean over examples of sum_k (p_k - onehot_k)^2,
               in [0, 2] (not divided by K)
        nll    the mean of -log p[label], p clipped at 1e-12
    multi_label (probabilities and references (N, K)): every (example, label) pair is one binary prediction of its
    sigmoid probability p against y in {0, 1}:
        ece    over 15 equal-width bins of p against the fraction of pairs whose label is on
        brier  the binary Brier score, the mean of (p - y)^2 over the N x K pairs, in [0, 1]
        nll    the binary cross-entropy, the mean of -(y log p + (1 - y) log(1 - p)), p clipped to [1e-12, 1 - 1e-12]
    """
    confidences, outcomes = calibration_pairs(references, probabilities, task)
    probs = np.asarray(probabilities, dtype=np.float64)
    if task == "single_label":
        refs = np.asarray(references).astype(np.int64).reshape(-1)
        onehot = np.eye(probs.shape[1])[refs]
        brier = np.mean(np.sum((probs - onehot) ** 2, axis=1))
        nll = -np.mean(np.log(np.clip(probs[np.arange(len(refs)), refs], PROBABILITY_FLOOR, 1.0)))
    else:
        p = np.clip(confidences, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
        brier = np.mean((confidences - outcomes) ** 2)
        nll = -np.mean(outcomes * np.log(p) + (1.0 - outcomes) * np.log(1.0 - p))
    return {"ece": expected_calibration_error(confidences, outcomes), "brier": float(brier), "nll": float(nll)}
