"""Raw datasets from the hub, local files or the builtins, as a DatasetDict of the provided splits."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import datasets
from datasets import DatasetDict

from hf_project.data.builtin import BUILTIN_DATASETS, load_builtin
from hf_project.errors import UserError

logger = logging.getLogger(__name__)

FILE_BUILDERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
VALIDATION_NAMES = ("validation", "valid", "val", "dev")


def dataset_name(dataset: str, dataset_config: str | None, train_file: str | None) -> str:
    """A short, filesystem-safe name for runs/<dataset>/ and weights/<dataset>/."""
    if train_file:
        name = Path(train_file).stem
    elif Path(dataset).suffix.lower() in FILE_BUILDERS:
        name = Path(dataset).stem
    else:
        name = dataset.replace("/", "__") + (f"-{dataset_config}" if dataset_config else "")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _load_files(files: dict[str, str]) -> DatasetDict:
    suffixes = set()
    for split, path in files.items():
        if not Path(path).is_file():
            raise UserError(f"{split} file {path} does not exist: check the path")
        suffix = Path(path).suffix.lower()
        if suffix not in FILE_BUILDERS:
            raise UserError(f"{path}: unsupported file type {suffix!r}, use one of {', '.join(FILE_BUILDERS)}")
        suffixes.add(FILE_BUILDERS[suffix])
    if len(suffixes) > 1:
        raise UserError("train/validation/test files must share one format (csv, json/jsonl or parquet)")
    try:
        # Local files are read into memory: their content, not a cache path, defines the run.
        return datasets.load_dataset(suffixes.pop(), data_files=files, keep_in_memory=True)
    except Exception as err:  # datasets raises many types for a broken file
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"could not parse {', '.join(files.values())}: {message}") from None


def _load_hub(name: str, config: str | None) -> DatasetDict:
    try:
        loaded = datasets.load_dataset(name, config)
    except Exception as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"cannot load dataset {name!r} from the Hugging Face hub ({message}): check the name, run once with "
            "network access so it is cached, or pass local files with --train_file"
        ) from None
    if not isinstance(loaded, DatasetDict):
        loaded = DatasetDict({"train": loaded})
    return loaded


def _canonical_splits(raw: DatasetDict) -> DatasetDict:
    """Rename the provided splits to train / validation / test."""
    out = {}
    for split, ds in raw.items():
        if split in VALIDATION_NAMES:
            out["validation"] = ds
        elif split in ("train", "test"):
            out[split] = ds
        else:
            logger.warning("ignoring split %r (only train, validation and test are used)", split)
    if "train" not in out:
        if len(raw) == 1:
            out["train"] = next(iter(raw.values()))
        else:
            raise UserError(f"the dataset has no 'train' split (it has {', '.join(raw)}): provide one")
    return DatasetDict(out)


def load_raw(dataset: str, dataset_config: str | None = None, train_file: str | None = None,
             validation_file: str | None = None, test_file: str | None = None) -> DatasetDict:
    if train_file:
        files = {"train": train_file}
        if validation_file:
            files["validation"] = validation_file
        if test_file:
            files["test"] = test_file
        raw = _load_files(files)
    elif validation_file or test_file:
        raise UserError("--validation_file/--test_file need --train_file too")
    elif dataset in BUILTIN_DATASETS:
        raw = load_builtin(dataset)
    elif Path(dataset).suffix.lower() in FILE_BUILDERS or Path(dataset).exists():
        raw = _load_files({"train": dataset})
    else:
        raw = _load_hub(dataset, dataset_config)
    return _canonical_splits(raw)
