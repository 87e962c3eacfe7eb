"""Metrics computed through the shipped evaluate modules must match sklearn and never touch the network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from transformers import EvalPrediction

from hf_project import metrics
from hf_project.metrics import (
    AVAILABLE_METRICS,
    METRIC_NAMES,
    classification_report,
    compute_metrics,
    load_metric,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
NUM_LABELS = 6


@pytest.fixture
def fresh_cache():
    """Force real loads instead of lru_cache hits, and do not leak instances into other tests."""
    load_metric.cache_clear()
    yield
    load_metric.cache_clear()


@pytest.fixture
def labelled_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1234)
    # Label 5 is absent everywhere and label 4 is never predicted, so averaging over all labels matters.
    references = rng.integers(0, 5, size=300)
    predictions = np.where(rng.random(300) < 0.6, np.minimum(references, 3), rng.integers(0, 4, size=300))
    return references, predictions


def test_metric_names() -> None:
    assert METRIC_NAMES == ("accuracy", "macro_f1", "weighted_f1")


def test_loading_is_offline(blocked_network: list[object], fresh_cache: None) -> None:
    for name in AVAILABLE_METRICS:
        metric = load_metric(name)
        assert metric.name == name
    result = load_metric("accuracy").compute(predictions=[0, 1, 1], references=[0, 1, 0])
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert blocked_network == []


def test_load_metric_is_cached() -> None:
    assert load_metric("f1") is load_metric("f1")


def test_unknown_metric_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="valid names: accuracy, confusion_matrix, f1, precision, recall"):
        load_metric("bleu")


def test_classification_report_matches_sklearn(labelled_data: tuple[np.ndarray, np.ndarray]) -> None:
    references, predictions = labelled_data
    names = [f"class_{i}" for i in range(NUM_LABELS)]
    labels = list(range(NUM_LABELS))
    report = classification_report(references.tolist(), predictions.tolist(), names)

    assert report["accuracy"] == pytest.approx(accuracy_score(references, predictions))
    for average in ("macro", "weighted"):
        expected = f1_score(references, predictions, labels=labels, average=average, zero_division=0)
        assert report[f"{average}_f1"] == pytest.approx(expected)
    # sklearn's default averages only over labels seen in the data; ours also counts absent label 5 as 0.
    assert report["macro_f1"] < f1_score(references, predictions, average="macro", zero_division=0)
    assert all(type(report[key]) is float for key in METRIC_NAMES)


def test_per_class_and_confusion_matrix_match_sklearn(labelled_data: tuple[np.ndarray, np.ndarray]) -> None:
    references, predictions = labelled_data
    names = [f"class_{i}" for i in range(NUM_LABELS)]
    labels = list(range(NUM_LABELS))
    report = classification_report(references, predictions, names)

    precision, recall, f1, support = precision_recall_fscore_support(
        references, predictions, labels=labels, zero_division=0
    )
    assert [row["label"] for row in report["per_class"]] == names
    assert [row["precision"] for row in report["per_class"]] == pytest.approx(precision)
    assert [row["recall"] for row in report["per_class"]] == pytest.approx(recall)
    assert [row["f1"] for row in report["per_class"]] == pytest.approx(f1)
    assert [row["support"] for row in report["per_class"]] == support.tolist()
    assert report["per_class"][5] == {
        "label": "class_5",
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
    }
    assert report["confusion_matrix"] == confusion_matrix(references, predictions, labels=labels).tolist()
    assert all(type(cell) is int for row in report["confusion_matrix"] for cell in row)
    json.dumps(report)  # the report is written to disk as JSON


def test_classification_report_rejects_out_of_range_ids() -> None:
    with pytest.raises(ValueError, match="outside 0..1"):
        classification_report([0, 1, 2], [0, 1, 1], ["a", "b"])


def _expected_scores(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    predictions = logits.argmax(axis=-1)
    ids = list(range(logits.shape[1]))
    return {
        "accuracy": accuracy_score(labels, predictions),
        "macro_f1": f1_score(labels, predictions, labels=ids, average="macro", zero_division=0),
        "weighted_f1": f1_score(labels, predictions, labels=ids, average="weighted", zero_division=0),
    }


@pytest.mark.parametrize("as_tuple", [False, True], ids=["logits", "tuple"])
def test_compute_metrics_from_eval_prediction(as_tuple: bool) -> None:
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(120, 5)).astype(np.float32)
    logits[:, 4] -= 100.0  # class 4 is never predicted
    labels = rng.integers(0, 5, size=120)
    predictions = (logits, rng.normal(size=(120, 3, 8))) if as_tuple else logits

    scores = compute_metrics(EvalPrediction(predictions=predictions, label_ids=labels))

    assert list(scores) == list(METRIC_NAMES)
    assert all(type(value) is float for value in scores.values())
    assert scores == pytest.approx(_expected_scores(logits, labels))


def test_compute_metrics_accepts_class_ids() -> None:
    # What Trainer passes when preprocess_logits_for_metrics already took the argmax.
    scores = compute_metrics(
        EvalPrediction(predictions=np.array([0, 1, 2, 2]), label_ids=np.array([0, 1, 2, 1]))
    )
    assert scores["accuracy"] == pytest.approx(0.75)


_ISOLATED_LOAD = """
import json, os, socket, sys
from pathlib import Path

attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args))
    raise OSError("network access is blocked")
socket.socket.connect = socket.socket.connect_ex = socket.getaddrinfo = refuse

def snapshot(root):
    return sorted(
        (str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*") if "__pycache__" not in p.parts
    )

from hf_project import metrics
package_dir = Path(metrics.__file__).parent
before = snapshot(package_dir)
results = {name: type(metrics.load_metric(name)).__name__ for name in metrics.AVAILABLE_METRICS}
report = metrics.classification_report([0, 1, 1], [0, 1, 0], ["a", "b"])
copied = sorted(p.name for p in Path(os.environ["HF_MODULES_CACHE"]).rglob("*.py"))
print(json.dumps({"attempts": attempts, "package_unchanged": snapshot(package_dir) == before,
                  "classes": results, "accuracy": report["accuracy"], "copied": copied}))
"""


def test_fresh_process_loads_offline_without_writing_to_package(tmp_path: Path) -> None:
    """Cold caches exercise evaluate's copy-into-modules-cache path, which a warm in-process cache skips."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "HF_METRICS_CACHE": str(tmp_path / "metrics"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_ISOLATED_LOAD)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    outcome = json.loads(completed.stdout.strip().splitlines()[-1])
    assert outcome["attempts"] == []
    assert outcome["package_unchanged"]
    assert outcome["accuracy"] == pytest.approx(2 / 3)
    assert outcome["classes"] == {
        "accuracy": "Accuracy",
        "confusion_matrix": "ConfusionMatrix",
        "f1": "F1",
        "precision": "Precision",
        "recall": "Recall",
    }
    assert {f"{name}.py" for name in AVAILABLE_METRICS} <= set(outcome["copied"])


def test_metric_scripts_ship_with_package() -> None:
    for name in AVAILABLE_METRICS:
        assert (Path(metrics.__file__).parent / name / f"{name}.py").is_file()
