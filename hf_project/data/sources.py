"""Raw datasets from the hub, local files or the builtins, as a DatasetDict of the provided splits."""

from __future__ import annotations

import codecs
import logging
import re
from pathlib import Path

import datasets
from datasets import DatasetDict

from hf_project.data.builtin import BUILTIN_DATASETS, load_builtin
from hf_project.errors import UserError, first_line
from hf_project.modalities import file_modalities, get_stage

logger = logging.getLogger(__name__)

FILE_BUILDERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
VALIDATION_NAMES = ("validation", "valid", "val", "dev")
SPLIT_DIRS = ("train", "test", *VALIDATION_NAMES)


def dataset_name(dataset: str, dataset_config: str | None, train_file: str | None) -> str:
    """A short, filesystem-safe name for runs/<dataset>/ and weights/<dataset>/."""
    if train_file:
        name = Path(train_file).stem
    elif Path(dataset).suffix.lower() in FILE_BUILDERS:
        name = Path(dataset).stem
    elif Path(dataset).is_dir():  # an image/audio folder: its own name, not its whole path
        name = Path(dataset).resolve().name
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
    builder = suffixes.pop()
    for path in files.values():
        check_file(Path(path), builder)
    try:
        # Local files are read into memory: their content, not a cache path, defines the run.
        return datasets.load_dataset(builder, data_files=files, keep_in_memory=True)
    except Exception as err:  # datasets raises many types for a broken file; the cause says what was wrong
        message = first_line(err.__cause__ or err)
        if "corresponds to no data" in message:  # datasets' words for a file that parsed to zero rows
            raise UserError(f"{', '.join(files.values())}: no rows found; give at least one row") from None
        raise UserError(f"could not parse {', '.join(files.values())} as {builder}: {message}") from None


def check_file(path: Path, builder: str) -> None:
    """The causes datasets reports only as "An error occurred while generating the dataset", named with the fix."""
    with open(path, "rb") as f:
        head = f.read(8192)
    if not head.strip():
        raise UserError(f"{path} is empty: it has no rows; give a file with a header line and at least one row")
    if builder == "parquet":
        if not head.startswith(b"PAR1"):
            raise UserError(f"{path} is not a parquet file (no PAR1 header): give a real parquet file, or rename a "
                            "csv/json file to its own suffix")
        return
    if b"\0" in head or sum(b < 32 and b not in b"\t\n\r\f" for b in head) > len(head) // 20:
        raise UserError(f"{path} looks like a binary file, not a {builder} text file: give the {builder} file itself")
    bad = first_non_utf8(path)
    if bad is not None:
        offset, byte, line = bad
        raise UserError(f"{path} is not UTF-8 text (byte 0x{byte:02x} at offset {offset}, line {line}): re-save it "
                        f"as UTF-8, e.g. `iconv -f latin1 -t utf-8 {path} > {path.stem}-utf8{path.suffix}`")
    if builder == "csv" and len([line for line in head.splitlines() if line.strip()]) < 2:
        with open(path, "rb") as f:
            rows = sum(1 for line in f if line.strip())
        if rows < 2:
            raise UserError(f"{path} has a header but no rows: add at least one data row")


def first_non_utf8(path: Path, chunk: int = 1 << 20) -> tuple[int, int, int] | None:
    """(byte offset, byte, 1-based line) of the first byte that is not valid UTF-8, or None."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, lines = 0, 1
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as err:
                # err.start counts from the bytes the decoder held back from the last block, then this one.
                held = len(err.object) - len(block)
                at = offset - held + err.start
                return at, err.object[err.start], lines + err.object[: err.start].count(b"\n")
            if not block:
                return None
            offset += len(block)
            lines += block.count(b"\n")


def _class_dirs(root: Path) -> list[Path]:
    """Class sub-folders of an image/audio folder, looking inside train/test/... split folders when present."""
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    split_dirs = [p for p in subdirs if p.name in SPLIT_DIRS]
    if split_dirs:
        return [c for s in split_dirs for c in sorted(p for p in s.iterdir() if p.is_dir())]
    return subdirs


def folder_modality(root: Path) -> str:
    """The modality ('image' or 'audio') of a folder of class sub-folders, from its files' suffixes (the stages'
    INPUT_SUFFIXES); errors a user can act on otherwise."""
    classes = _class_dirs(root)
    if not classes:
        raise UserError(
            f"folder {root} has no class sub-folders: put each class's files in a sub-folder named after the class"
        )
    suffixes = {modality: get_stage(modality).INPUT_SUFFIXES for modality in file_modalities()}
    kinds = set()
    for class_dir in classes:
        files = [p for p in class_dir.rglob("*") if p.is_file()]
        found = {m for p in files for m, known in suffixes.items() if p.suffix.lower() in known}
        if not found:
            raise UserError(f"class folder {class_dir} has no {' or '.join(suffixes)} files: add some or remove the "
                            "folder")
        kinds |= found
    if len(kinds) > 1:
        mixed = [m for m in suffixes if m in kinds]
        raise UserError(f"folder {root} mixes {' and '.join(mixed)} files: keep one kind per dataset")
    return kinds.pop()


def _load_folder(root: Path) -> DatasetDict:
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    split_dirs = {p.name: p for p in subdirs if p.name in SPLIT_DIRS} or {"train": root}
    return get_stage(folder_modality(root)).load_folder(root, split_dirs)


def _load_hub(name: str, config: str | None) -> DatasetDict:
    try:
        loaded = datasets.load_dataset(name, config)
    except Exception as err:
        message = first_line(err)
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
    elif Path(dataset).is_dir():
        raw = _load_folder(Path(dataset))
    elif Path(dataset).suffix.lower() in FILE_BUILDERS or Path(dataset).exists():
        raw = _load_files({"train": dataset})
    else:
        raw = _load_hub(dataset, dataset_config)
    return _undecoded_audio(_canonical_splits(raw))


def _undecoded_audio(raw: DatasetDict) -> DatasetDict:
    """Audio columns stay as bytes/paths: the audio stage decodes them itself (no torchcodec needed)."""
    for column, feature in raw["train"].features.items():
        if isinstance(feature, datasets.Audio) and feature.decode:
            raw = raw.cast_column(column, datasets.Audio(decode=False))
    return raw
