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


def check_label_values(values: Sequence[Any], feature: Any, column: str) -> None:
    """Labels must be one class per row: a list per row (multi-label) or a continuous number is a clear error."""
    if isinstance(feature, ClassLabel):
        return
    listed = next((v for v in values if isinstance(v, list | tuple | dict)), None)
    if listed is not None or isinstance(feature, list | datasets.Sequence | datasets.List):
        example = f" (e.g. {listed!r:.60})" if listed is not None else ""
        raise UserError(
            f"label column {column!r} holds lists{example}: this looks like multi-label data, which is not supported "
            "yet; give each row a single label"
        )
    numbers = [v for v in values if v is not None]
    if not numbers or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
        return
    distinct = sorted(set(numbers))
    fractional = any(float(v) != int(v) for v in distinct if np.isfinite(v))
    if (fractional and len(distinct) > MAX_FRACTIONAL_CLASSES) or len(distinct) > max(20, len(numbers) // 2):
        shown = ", ".join(f"{v:g}" for v in distinct[:: max(1, len(distinct) // 4)][:4])
        raise UserError(
            f"label column {column!r} looks continuous ({len(distinct)} distinct numeric values in {len(numbers)} "
            f"rows, e.g. {shown}): classification needs classes; bin the values into a few classes, or pick the "
            "class column with --label_column (regression is not supported yet)"
        )


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
