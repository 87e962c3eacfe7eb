"""Labels as a ClassLabel with names kept, class balance and class weights."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import datasets
import numpy as np
from datasets import ClassLabel

from hf_project.errors import UserError

# Numeric labels with more distinct values than this are read as a continuous target, not as class ids.
MAX_FRACTIONAL_CLASSES = 10


def listed_value(values: Sequence[Any], feature: Any) -> Any:
    """The first list-valued label (or True for a list-typed column without one), else None."""
    listed = next((v for v in values if isinstance(v, list | tuple | dict)), None)
    if listed is None and isinstance(feature, list | datasets.Sequence | datasets.List):
        return True
    return listed


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def check_label_values(values: Sequence[Any], feature: Any, column: str) -> None:
    """Single-label data must have one class per row: a list per row (multi-label) or a continuous number is a clear
    error that names the --task to use."""
    if isinstance(feature, ClassLabel):
        return
    listed = listed_value(values, feature)
    if listed is not None:
        example = f" (e.g. {listed!r:.60})" if listed is not True else ""
        raise UserError(
            f"label column {column!r} holds lists{example}: this is multi-label data; pass --task multi_label (or "
            "--task auto)"
        )
    numbers = [v for v in values if v is not None]
    if not numbers or not all(_is_number(v) for v in numbers):
        return
    distinct = sorted(set(numbers))
    fractional = any(float(v) != int(v) for v in distinct if np.isfinite(v))
    if (fractional and len(distinct) > MAX_FRACTIONAL_CLASSES) or len(distinct) > max(20, len(numbers) // 2):
        shown = ", ".join(f"{v:g}" for v in distinct[:: max(1, len(distinct) // 4)][:4])
        raise UserError(
            f"label column {column!r} looks continuous ({len(distinct)} distinct numeric values in {len(numbers)} "
            f"rows, e.g. {shown}): pass --task regression to predict the number, or bin it into classes (or pick "
            "the class column with --label_column)"
        )


def detect_task(values: Sequence[Any], feature: Any, column: str, delimiter: str | None) -> str:
    """--task auto: lists of labels, or strings split by --label_delimiter, make multi_label; anything else is
    single_label (whose checks refuse continuous numbers: a regression is never guessed)."""
    if listed_value(values, feature) is not None:
        return "multi_label"
    if delimiter is not None:
        if not any(isinstance(v, str) for v in values):
            raise UserError(f"--label_delimiter {delimiter!r} splits label strings, but label column {column!r} "
                            "holds none: leave --label_delimiter out")
        return "multi_label"
    return "single_label"


# ---- multi-label ----------------------------------------------------------------------------------------------


def label_sets(values: Sequence[Any], feature: Any, delimiter: str | None, split: str) -> list[list[str]]:
    """Each row's labels as strings: a list as it is (ClassLabel ids by their names), a string split by the
    delimiter, a lone value as a set of one. A row with no label is an error."""
    inner = getattr(feature, "feature", None)
    names = inner.names if isinstance(inner, ClassLabel) else None
    sets = []
    for i, value in enumerate(values):
        if value is None:
            labels = []
        elif isinstance(value, list | tuple):
            labels = [names[v] if names else str(v) for v in value]
        elif isinstance(value, str) and delimiter is not None:
            labels = [part.strip() for part in value.split(delimiter) if part.strip()]
        else:
            labels = [str(value)]
        if not labels:
            raise UserError(f"row {i} of the {split} split has an empty label list: every example needs at least "
                            "one label; drop such rows, or give them a label of their own (e.g. 'none')")
        sets.append(sorted(set(labels)))
    return sets


def multi_label_names(train_sets: Sequence[Sequence[str]]) -> list[str]:
    return sorted({label for labels in train_sets for label in labels})


def encode_sets(sets: Sequence[Sequence[str]], names: list[str], split: str) -> list[list[float]]:
    """0/1 indicator rows over `names`; a label that the training split never has is an error."""
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted({label for labels in sets for label in labels if label not in index})
    if unknown:
        raise UserError(
            f"label(s) {', '.join(unknown[:5])} in the {split} split never occur in train: the model cannot learn "
            "them; drop them from the data or move their rows so that train has them"
        )
    rows = []
    for labels in sets:
        row = [0.0] * len(names)
        for label in labels:
            row[index[label]] = 1.0
        rows.append(row)
    return rows


def multi_label_balance(indicators_by_split: dict[str, list[list[float]]], names: list[str]) -> list[dict[str, Any]]:
    """Rows of class_balance.csv for multi-label data: the examples carrying each label, per split. A label that
    validation or test has and train does not is an error."""
    counts = {split: np.asarray(rows, dtype=np.int64).reshape(-1, len(names)).sum(axis=0)
              for split, rows in indicators_by_split.items()}
    if int((counts["train"] > 0).sum()) < 2:
        raise UserError(f"the training split has a single label ({', '.join(names)}): multi-label classification needs "
                        "at least two; for yes/no of one label, make it a single-label class column")
    for split in ("validation", "test"):
        unseen = [name for i, name in enumerate(names) if counts[split][i] and not counts["train"][i]]
        if unseen:
            raise UserError(
                f"label(s) {', '.join(unseen[:5])} in the {split} split never occur in train: the model cannot learn "
                "them; drop them from the data or move their rows so that train has them"
            )
    return [{"label": name, **{split: int(counts[split][i]) for split in ("train", "validation", "test")}}
            for i, name in enumerate(names)]


# ---- regression -----------------------------------------------------------------------------------------------


def targets(values: Sequence[Any], column: str, split: str) -> list[float]:
    """Regression targets as floats; a missing, non-numeric or non-finite value is an error naming its row."""
    out = []
    for i, value in enumerate(values):
        number = value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = value
        if number is None:
            raise UserError(f"row {i} of the {split} split has no target in column {column!r}: drop rows with missing "
                            "(NaN) or empty targets")
        if not _is_number(number):
            raise UserError(f"row {i} of the {split} split has target {value!r} in column {column!r}, which is not a "
                            "number: a regression needs numeric targets; fix or drop the row")
        if not np.isfinite(number):
            raise UserError(f"row {i} of the {split} split has target {number} in column {column!r}: drop rows with "
                            "missing (NaN) or infinite targets")
        out.append(float(number))
    return out


def target_statistics(values_by_split: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Rows of class_balance.csv for a regression: n, mean, std, min and max of the target per split."""
    stats = {"n": len, "mean": np.mean, "std": np.std, "min": np.min, "max": np.max}
    return [{"statistic": name, **{split: float(f(np.asarray(values_by_split[split]))) if name != "n"
                                   else len(values_by_split[split]) for split in ("train", "validation", "test")}}
            for name, f in stats.items()]


def check_targets(train: list[float], column: str) -> None:
    if len(set(train)) < 2:
        raise UserError(f"every training target in column {column!r} is {train[0]:g}: a regression needs targets "
                        "that vary")


def stratification_keys(task: str, train_values: Sequence[Any], bins: int = 5) -> list[Any]:
    """What the validation carve stratifies on: the class (single_label), the label set (multi_label: iterative
    stratification in splits.make_split), the quintile of the target (regression)."""
    if task == "multi_label":
        return [tuple(labels) for labels in train_values]
    if task == "regression":
        values = np.asarray(train_values, dtype=np.float64)
        edges = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
        return np.searchsorted(edges, values, side="right").tolist()
    return list(train_values)


def label_names_from(feature: Any, train_values: Sequence[Any]) -> list[str]:
    """Class names: a ClassLabel's own names, else the sorted distinct training values."""
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    values = sorted(set(train_values), key=lambda v: (isinstance(v, str), v))
    return [str(v) for v in values]


def encode(values: Sequence[Any], feature: Any, names: list[str], split: str) -> list[int]:
    """Map raw labels to ids 0..K-1; a value that the training split never has is an error."""
    if any(v is None for v in values):
        raise UserError(f"the {split} split has rows with no label: drop them or fill the label column")
    if isinstance(feature, ClassLabel):
        bad = sorted({v for v in values if not 0 <= v < len(names)})
        if bad:
            raise UserError(
                f"the {split} split has label id(s) {bad} outside the {len(names)} classes: drop unlabelled rows"
            )
        return list(values)
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted({str(v) for v in values if str(v) not in index})
    if unknown:
        raise UserError(
            f"label(s) {', '.join(unknown[:5])} in the {split} split never occur in train: "
            "the model cannot learn them; fix the data or the split"
        )
    return [index[str(v)] for v in values]


def check_labels(ids_by_split: dict[str, list[int]], names: list[str]) -> None:
    train = set(ids_by_split["train"])
    if len(train) < 2:
        only = names[next(iter(train))] if train else "none"
        raise UserError(f"the training split has a single class ({only}): classification needs at least two")
    for split in ("validation", "test"):
        missing = sorted(set(ids_by_split[split]) - train)
        if missing:
            shown = ", ".join(names[i] for i in missing[:5])
            raise UserError(
                f"label(s) {shown} in the {split} split never occur in train: "
                "the model cannot learn them; fix the data or the split"
            )


def class_balance(ids_by_split: dict[str, list[int]], names: list[str]) -> list[dict[str, Any]]:
    """Rows of class_balance.csv: examples per class per split."""
    counts = {split: Counter(ids) for split, ids in ids_by_split.items()}
    return [
        {"label": name, **{split: counts[split][i] for split in ("train", "validation", "test")}}
        for i, name in enumerate(names)
    ]


def class_weights(train_ids: Sequence[int], num_labels: int) -> list[float]:
    """'Balanced' weights n / (K * n_c); a class absent from train gets weight 0."""
    counts = Counter(train_ids)
    n = len(train_ids)
    return [n / (num_labels * counts[c]) if counts[c] else 0.0 for c in range(num_labels)]
