"""From a data configuration to the three splits every model of an experiment shares."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from datasets import ClassLabel, DatasetDict, Sequence, Value

from hf_project.config import DataArguments
from hf_project.data import labels as label_utils
from hf_project.data.sources import dataset_name, load_raw
from hf_project.data.splits import limit_eval, limit_train, make_split, split_hash
from hf_project.errors import UserError
from hf_project.modalities import MODALITIES, get_stage
from hf_project.modalities import text as text_stage
from hf_project.modalities.files import undecoded

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


@dataclass
class PreparedData:
    name: str  # used in runs/<name>/ and weights/<name>/
    # train/validation/test, each with the modality's input column and "label": a class id (ClassLabel), 0/1 label
    # indicators (multi_label) or the target (regression)
    splits: DatasetDict
    label_names: list[str]  # classes; multi_label: the labels; regression: [the label column]
    split: dict[str, Any]  # the content of split.json
    fingerprint: str
    class_balance: list[dict[str, Any]]  # class_balance.csv (regression: the target's statistics per split)
    modality: str = "text"  # the input column of every split is named after it: text | image | audio
    task: str = "single_label"  # hf_project.metrics.TASKS
    target_stats: tuple[float, float] | None = None  # regression: mean and std of the training targets

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def references(self, part: str) -> list[Any]:
        """The labels of a split as the task scores them: class ids, indicator rows or targets."""
        return self.splits[part]["label"][:]  # in bulk: iterating a datasets Column formats one row at a time


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
    task = _task_of(raw, args)
    labels = {name: _labels(task, ds, args, name) for name, ds in raw.items()}  # per provided split, parsed
    fp = fingerprint(raw, input_column, args.label_column, pair_column)
    strata = label_utils.stratification_keys(task, labels["train"]) if args.stratify else None
    split = make_split({name: len(ds) for name, ds in raw.items()}, strata, seed, args.test_fraction,
                       args.validation_fraction, fp)
    if task != "single_label":  # what the labels are depends on the task (and the delimiter), not on the data alone
        split = {**split, "task": task, "label_delimiter": args.label_delimiter}
        split["hash"] = split_hash(split)
    split = limit_train(split, args.max_train_samples)
    split = limit_eval(split, args.max_eval_samples, seed)
    names = _names(task, raw, labels, args)
    splits, encoded = {}, {}
    for part in SPLITS:
        source = split[part]["source"]
        rows = raw[source].select(split[part]["indices"])
        values = [labels[source][i] for i in split[part]["indices"]]
        encoded[part] = _encode(task, values, raw[source].features[args.label_column], names, part)
        inputs = get_stage(modality).split_inputs(rows, input_column, part)
        if pair_column:
            inputs = text_stage.with_pairs(inputs, rows, pair_column, part)
        splits[part] = inputs.add_column("label", encoded[part]).cast_column("label", _label_feature(task, names))
    balance, stats = _balance(task, encoded, names, args.label_column)
    name = dataset_name(args.dataset, args.dataset_config, args.train_file)
    what = {"single_label": f"{len(names)} classes", "multi_label": f"{len(names)} labels (multi-label)",
            "regression": f"regression of {args.label_column!r}"}[task]
    logger.info(
        "dataset %s (%s%s): %s; train %d, validation %d, test %d; split hash %s",
        name, modality, f" pairs, second text from {pair_column!r}" if pair_column else "", what,
        len(splits["train"]), len(splits["validation"]), len(splits["test"]),
        split["hash"],
    )
    return PreparedData(name, DatasetDict(splits), names, split, fp, balance, modality, task, stats)


def _task_of(raw: DatasetDict, args: DataArguments) -> str:
    """The task: --task, or with auto what the label column holds (label_utils.detect_task)."""
    column = args.label_column
    if args.task != "auto":
        if args.task == "single_label":
            for ds in raw.values():
                if label_utils.listed_value(ds[column], ds.features[column]) is not None:
                    raise UserError(f"--task single_label, but label column {column!r} holds lists: pass --task "
                                    "multi_label (or --task auto)")
        return args.task
    # each split's labels read once, in bulk: the checks pass over them several times, and every pass over a datasets
    # Column formats its rows one at a time again
    values = {name: ds[column][:] for name, ds in raw.items()}
    train = raw["train"]
    task = label_utils.detect_task(values["train"], train.features[column], column, args.label_delimiter)
    if task == "single_label":
        for name, ds in raw.items():
            label_utils.check_label_values(values[name], ds.features[column], column)
    return task


def _labels(task: str, ds: Any, args: DataArguments, split: str) -> list[Any]:
    """A provided split's labels, parsed for the task: raw values, label sets or float targets."""
    values = ds[args.label_column][:]  # in bulk: iterating a datasets Column formats one row at a time
    if task == "multi_label":
        return label_utils.label_sets(values, ds.features[args.label_column], args.label_delimiter, split)
    if task == "regression":
        return label_utils.targets(values, args.label_column, split)
    return values


def _names(task: str, raw: DatasetDict, labels: dict[str, list[Any]], args: DataArguments) -> list[str]:
    if task == "multi_label":
        return label_utils.multi_label_names(labels["train"])
    if task == "regression":
        return [args.label_column]
    return label_utils.label_names_from(raw["train"].features[args.label_column], labels["train"])


def _encode(task: str, values: list[Any], feature: Any, names: list[str], part: str) -> list[Any]:
    if task == "multi_label":
        return label_utils.encode_sets(values, names, part)
    if task == "regression":
        return values
    return label_utils.encode(values, feature, names, part)


def _label_feature(task: str, names: list[str]) -> Any:
    if task == "multi_label":
        return Sequence(Value("float32"), length=len(names))
    if task == "regression":
        return Value("float64")
    return ClassLabel(names=names)


def _balance(task: str, encoded: dict[str, list[Any]], names: list[str],
             column: str) -> tuple[list[dict[str, Any]], tuple[float, float] | None]:
    """class_balance.csv's rows, after the task's checks; for a regression also the training targets' mean and
    standard deviation."""
    if task == "multi_label":
        return label_utils.multi_label_balance(encoded, names), None
    if task == "regression":
        label_utils.check_targets(encoded["train"], column)
        train = np.asarray(encoded["train"], dtype=np.float64)
        return label_utils.target_statistics(encoded), (float(train.mean()), float(train.std()))
    label_utils.check_labels(encoded, names)
    return label_utils.class_balance(encoded, names), None
