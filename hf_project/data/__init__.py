"""From a data configuration to the three splits every model of an experiment shares."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from hf_project.config import DataArguments
from hf_project.data import labels as label_utils
from hf_project.data.sources import dataset_name, load_raw
from hf_project.data.splits import limit_train, make_split
from hf_project.errors import UserError

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


@dataclass
class PreparedData:
    name: str  # used in runs/<name>/ and weights/<name>/
    splits: DatasetDict  # train/validation/test with columns "text" and "label" (ClassLabel)
    label_names: list[str]
    split: dict[str, Any]  # the content of split.json
    fingerprint: str
    class_balance: list[dict[str, Any]]

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


def _check_columns(raw: DatasetDict, text_column: str, label_column: str) -> None:
    for split, ds in raw.items():
        if len(ds) == 0:
            raise UserError(f"the {split} split of the dataset is empty: provide data with at least one row")
        for role, column in (("text", text_column), ("label", label_column)):
            if column not in ds.column_names:
                raise UserError(
                    f"{role} column {column!r} not found in the {split} split (columns: {', '.join(ds.column_names)}): "
                    f"pass --{role}_column"
                )


def fingerprint(raw: DatasetDict, text_column: str, label_column: str) -> str:
    """Content hash of the raw texts and labels, stable across machines (unlike datasets' cache fingerprints)."""
    digest = hashlib.sha256()
    for split in sorted(raw):
        digest.update(split.encode())
        for batch in raw[split].select_columns([text_column, label_column]).iter(batch_size=4096):
            digest.update(json.dumps([batch[text_column], batch[label_column]], default=str).encode())
    return digest.hexdigest()[:16]


def prepare_data(args: DataArguments, seed: int) -> PreparedData:
    raw = load_raw(args.dataset, args.dataset_config, args.train_file, args.validation_file, args.test_file)
    _check_columns(raw, args.text_column, args.label_column)
    fp = fingerprint(raw, args.text_column, args.label_column)
    train_values = list(raw["train"][args.label_column])
    split = make_split(
        {name: len(ds) for name, ds in raw.items()},
        train_values if args.stratify else None,
        seed,
        args.test_fraction,
        args.validation_fraction,
        fp,
    )
    split = limit_train(split, args.max_train_samples)
    feature = raw["train"].features[args.label_column]
    names = label_utils.label_names_from(feature, train_values)
    out, ids_by_split = {}, {}
    for part in SPLITS:
        source = raw[split[part]["source"]]
        rows = source.select(split[part]["indices"])
        texts = list(rows[args.text_column])
        if any(not isinstance(t, str) for t in texts if t is not None):
            raise UserError(
                f"text column {args.text_column!r} does not hold text: pick a string column with --text_column"
            )
        n_missing = sum(t is None for t in texts)
        if n_missing:
            logger.warning("%s split: %d rows with no text are read as empty strings", part, n_missing)
        ids = label_utils.encode(list(rows[args.label_column]), source.features[args.label_column], names, part)
        ids_by_split[part] = ids
        out[part] = (["" if t is None else t for t in texts], ids)
    label_utils.check_labels(ids_by_split, names)
    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})
    splits = DatasetDict(
        {part: Dataset.from_dict({"text": t, "label": y}, features=features) for part, (t, y) in out.items()}
    )
    balance = label_utils.class_balance(ids_by_split, names)
    name = dataset_name(args.dataset, args.dataset_config, args.train_file)
    logger.info(
        "dataset %s: %d classes; train %d, validation %d, test %d; split hash %s",
        name, len(names), len(splits["train"]), len(splits["validation"]), len(splits["test"]), split["hash"],
    )
    return PreparedData(name, splits, names, split, fp, balance)
