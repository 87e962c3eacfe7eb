"""From a data configuration to the three splits every model of an experiment shares."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import ClassLabel, DatasetDict

from hf_project.config import DataArguments
from hf_project.data import labels as label_utils
from hf_project.data.sources import dataset_name, load_raw
from hf_project.data.splits import limit_eval, limit_train, make_split
from hf_project.errors import UserError
from hf_project.modalities import MODALITIES, get_stage
from hf_project.modalities import text as text_stage
from hf_project.modalities.files import undecoded

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
    modality: str = "text"  # the input column of every split is named after it: text | image | audio

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


def detect_modality(raw: DatasetDict, args: DataArguments) -> tuple[str, str]:
    """(modality, input column) from the dataset's features (the stages' FEATURE types), or as forced by --modality;
    text, the modality of plain columns, otherwise."""
    features = raw["train"].features
    for modality in MODALITIES:
        kind = get_stage(modality).FEATURE
        if kind is None or args.modality not in ("auto", modality):
            continue
        column = getattr(args, f"{modality}_column")  # --<modality>_column
        if isinstance(features.get(column), kind):
            return modality, column
        typed = [name for name, feature in features.items() if isinstance(feature, kind)]
        if len(typed) == 1:
            return modality, typed[0]
        if args.modality == modality:
            found = ", ".join(f"{k} ({type(v).__name__})" for k, v in features.items())
            raise UserError(f"no {modality} column in the dataset (columns: {found}): pass --{modality}_column")
    return "text", args.text_column


def _check_columns(raw: DatasetDict, input_column: str, label_column: str, modality: str,
                   pair_column: str | None = None) -> None:
    roles = [(modality, input_column), ("label", label_column)]
    roles += [(text_stage.TEXT_PAIR, pair_column)] if pair_column else []
    for split, ds in raw.items():
        if len(ds) == 0:
            raise UserError(f"the {split} split of the dataset is empty: provide data with at least one row")
        for role, column in roles:
            if column not in ds.column_names:
                raise UserError(
                    f"{role} column {column!r} not found in the {split} split (columns: {', '.join(ds.column_names)}): "
                    f"pass --{role}_column"
                )


def _content(value: Any) -> Any:
    """What identifies one input: the text, or an image/audio file's bytes."""
    if isinstance(value, dict) and ("bytes" in value or "path" in value):
        if value.get("bytes") is not None:
            return hashlib.sha256(value["bytes"]).hexdigest()
        return hashlib.sha256(Path(value["path"]).read_bytes()).hexdigest()
    return value


def fingerprint(raw: DatasetDict, input_column: str, label_column: str, pair_column: str | None = None) -> str:
    """Content hash of the raw inputs (and the second texts of pairs) and labels, stable across machines (unlike
    datasets' cache fingerprints)."""
    digest = hashlib.sha256()
    for split in sorted(raw):
        digest.update(split.encode())
        columns = [input_column, label_column] + ([pair_column] if pair_column else [])
        ds = undecoded(raw[split].select_columns(columns), input_column)
        for batch in ds.iter(batch_size=1024):
            inputs = [_content(v) for v in batch[input_column]]
            content = [inputs, batch[label_column]] + ([batch[pair_column]] if pair_column else [])
            digest.update(json.dumps(content, default=str).encode())
    return digest.hexdigest()[:16]


def prepare_data(args: DataArguments, seed: int) -> PreparedData:
    raw = load_raw(args.dataset, args.dataset_config, args.train_file, args.validation_file, args.test_file)
    modality, input_column = detect_modality(raw, args)
    pair_column = args.text_pair_column
    if pair_column and modality != "text":
        raise UserError(f"--text_pair_column pairs texts, but this is {modality} data: leave --text_pair_column out")
    if not pair_column and text_stage.TEXT_PAIR in raw["train"].column_names and modality == "text":
        raise UserError(f"the data has a {text_stage.TEXT_PAIR!r} column, the second texts of sentence pairs: pass "
                        f"--text_pair_column {text_stage.TEXT_PAIR} to train on the pairs (or drop the column)")
    _check_columns(raw, input_column, args.label_column, modality, pair_column)
    for ds in raw.values():
        label_utils.check_label_values(ds[args.label_column], ds.features[args.label_column], args.label_column)
    fp = fingerprint(raw, input_column, args.label_column, pair_column)
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
    split = limit_eval(split, args.max_eval_samples, seed)
    names = label_utils.label_names_from(raw["train"].features[args.label_column], train_values)
    splits, ids_by_split = {}, {}
    for part in SPLITS:
        source = raw[split[part]["source"]]
        rows = source.select(split[part]["indices"])
        ids = label_utils.encode(list(rows[args.label_column]), source.features[args.label_column], names, part)
        ids_by_split[part] = ids
        inputs = get_stage(modality).split_inputs(rows, input_column, part)
        if pair_column:
            inputs = text_stage.with_pairs(inputs, rows, pair_column, part)
        splits[part] = inputs.add_column("label", ids).cast_column("label", ClassLabel(names=names))
    label_utils.check_labels(ids_by_split, names)
    balance = label_utils.class_balance(ids_by_split, names)
    name = dataset_name(args.dataset, args.dataset_config, args.train_file)
    logger.info(
        "dataset %s (%s%s): %d classes; train %d, validation %d, test %d; split hash %s",
        name, modality, f" pairs, second text from {pair_column!r}" if pair_column else "", len(names),
        len(splits["train"]), len(splits["validation"]), len(splits["test"]),
        split["hash"],
    )
    return PreparedData(name, DatasetDict(splits), names, split, fp, balance, modality)
