"""The one split rule: a provided split is used as is; otherwise shuffle with the seed and hold out the tail.

    test:        provided test split, else the last `test_fraction` of a seeded permutation of train
    validation:  provided validation split, else `validation_fraction` of the rest, carved per class (multi-label:
                 iterative stratification over the labels; regression: per quintile of the target)
    train:       what remains, in seeded order
The row indices (into the provided split they come from) and their hash are saved with every run; two
runs with the same data and settings get the same hash whatever the model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np


def _carve(pool: np.ndarray, labels: Sequence[Any] | None, fraction: float, seed: int) -> tuple[list, list]:
    """Split `pool` (already shuffled) into (kept, carved); per class when labels are given."""
    if labels is None:
        n_carve = int(round(len(pool) * fraction))
        return pool[: len(pool) - n_carve].tolist(), pool[len(pool) - n_carve :].tolist()
    if any(isinstance(labels[i], tuple) for i in pool[:1]):  # label sets
        carved = _iterative_carve(pool, labels, fraction, seed)
        return [int(i) for i in pool if i not in carved], [int(i) for i in pool if i in carved]
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = {}
    for idx in pool:
        by_class.setdefault(repr(labels[idx]), []).append(int(idx))
    carved: set[int] = set()
    for key in sorted(by_class):
        members = np.array(by_class[key])
        rng.shuffle(members)
        carved.update(members[: int(round(len(members) * fraction))].tolist())
    # Keep the seeded pool order in both parts so the split does not depend on class order.
    return [int(i) for i in pool if i not in carved], [int(i) for i in pool if i in carved]


def _iterative_carve(pool: np.ndarray, label_sets: Sequence[tuple], fraction: float, seed: int) -> set[int]:
    """The rows carved for validation by iterative stratification (Sechidis, Tsoumakas and Vlahavas, ECML 2011):
    the rarest label first, each of its rows goes to the part that still wants most of that label (ties: the part
    that wants most rows, then a seeded coin), so every label is split as near `fraction` as its count allows."""
    rng = np.random.default_rng(seed)
    rows = [int(i) for i in pool]
    wanted = np.array([len(rows) * (1 - fraction), len(rows) * fraction])  # rows each part still wants: kept, carved
    by_label: dict[Any, list[int]] = {}
    for i in rows:
        for label in label_sets[i]:
            by_label.setdefault(label, []).append(i)
    wanted_of = {label: np.array([len(members) * (1 - fraction), len(members) * fraction])
                 for label, members in by_label.items()}
    left = {label: len(members) for label, members in by_label.items()}
    placed: dict[int, int] = {}
    while left:
        label = min(left, key=lambda k: (left[k], str(k)))  # the rarest label still to place
        for i in by_label[label]:
            if i in placed:
                continue
            want = wanted_of[label]
            best = np.flatnonzero(want == want.max())
            if len(best) > 1:
                best = best[np.flatnonzero(wanted[best] == wanted[best].max())]
            part = int(best[0] if len(best) == 1 else rng.choice(best))
            placed[i] = part
            wanted[part] -= 1
            for other in label_sets[i]:
                wanted_of[other][part] -= 1
                left[other] -= 1
                if left[other] == 0:
                    del left[other]
    for i in rows:  # rows without labels: wherever rows are still wanted
        if i not in placed:
            placed[i] = int(np.argmax(wanted))
            wanted[placed[i]] -= 1
    return {i for i, part in placed.items() if part == 1}


def make_split(
    sizes: dict[str, int],
    train_labels: Sequence[Any] | None,
    seed: int,
    test_fraction: float,
    validation_fraction: float,
    fingerprint: str,
) -> dict[str, Any]:
    """Row indices of train/validation/test. `sizes` gives the provided splits and their lengths.

    `train_labels` (labels of the provided train split) makes the validation carve stratified; None makes it
    a plain tail of the seeded order.
    """
    n = sizes["train"]
    perm = np.random.default_rng(seed).permutation(n)
    parts: dict[str, dict[str, Any]] = {}
    if "test" in sizes:
        parts["test"] = {"source": "test", "indices": list(range(sizes["test"]))}
        pool = perm
    else:
        n_test = int(round(n * test_fraction))
        parts["test"] = {"source": "train", "indices": perm[n - n_test :].tolist()}
        pool = perm[: n - n_test]
    if "validation" in sizes:
        parts["validation"] = {"source": "validation", "indices": list(range(sizes["validation"]))}
        parts["train"] = {"source": "train", "indices": pool.tolist()}
    else:
        kept, carved = _carve(pool, train_labels, validation_fraction, seed)
        parts["validation"] = {"source": "train", "indices": carved}
        parts["train"] = {"source": "train", "indices": kept}
    split = {
        "seed": seed,
        "test_fraction": None if "test" in sizes else test_fraction,
        "validation_fraction": None if "validation" in sizes else validation_fraction,
        "stratified": "validation" not in sizes and train_labels is not None,
        "dataset_fingerprint": fingerprint,
        "train": parts["train"],
        "validation": parts["validation"],
        "test": parts["test"],
    }
    split["hash"] = split_hash(split)
    return split


def limit_train(split: dict[str, Any], max_train_samples: int | None) -> dict[str, Any]:
    """Keep the first N training rows of the seeded order (a budget), and re-hash."""
    if max_train_samples is None or max_train_samples >= len(split["train"]["indices"]):
        return split
    split = {**split, "train": {**split["train"], "indices": split["train"]["indices"][:max_train_samples]}}
    split["max_train_samples"] = max_train_samples
    split["hash"] = split_hash(split)
    return split


def limit_eval(split: dict[str, Any], max_eval_samples: int | None, seed: int) -> dict[str, Any]:
    """Keep a seeded random N of the validation rows and N of the test rows (a budget for large provided splits),
    in their original order, and re-hash. Both are fixed before any model sees them, like the rest of the split."""
    if max_eval_samples is None:
        return split
    split = dict(split)
    for offset, part in enumerate(("validation", "test")):
        indices = split[part]["indices"]
        if max_eval_samples < len(indices):
            keep = np.sort(np.random.default_rng(seed + 1 + offset).permutation(len(indices))[:max_eval_samples])
            split[part] = {**split[part], "indices": [indices[i] for i in keep]}
    split["max_eval_samples"] = max_eval_samples
    split["hash"] = split_hash(split)
    return split


def split_hash(split: dict[str, Any]) -> str:
    content = {k: v for k, v in split.items() if k != "hash"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
