"""Helpers shared by the stages whose inputs are one file each (images, clips): not a stage itself."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Audio, Dataset, Image

from hf_project.errors import UserError


def label_tensor(labels: Sequence[Any]) -> torch.Tensor:
    """A batch's labels as the task's loss takes them: class ids as int64, multi-label indicators and regression
    targets as float32."""
    values = torch.as_tensor(np.asarray(labels))
    return values.float() if values.is_floating_point() else values.long()


def undecoded(ds: Dataset, column: str) -> Dataset:
    """`column` as stored ({"bytes", "path"} per row) when it holds images or audio, without decoding them."""
    feature = ds.features[column]
    if isinstance(feature, Image | Audio):
        return ds.cast_column(column, type(feature)(decode=False))
    return ds


def split_inputs(rows: Dataset, column: str, modality: str, feature: type) -> Dataset:
    """`column` alone, renamed to `modality`; it must have the modality's datasets feature type."""
    if not isinstance(rows.features[column], feature):
        raise UserError(f"column {column!r} does not hold {modality} data: pass --{modality}_column")
    inputs = rows.select_columns([column])
    return inputs.rename_column(column, modality) if column != modality else inputs


def read_files(path: Path, modality: str, suffixes: Sequence[str]) -> list[str]:
    """An input file as it is, or the files of a folder (searched recursively) with one of `suffixes`, sorted."""
    if not path.is_dir():
        return [str(path)]
    found = sorted(str(f) for f in path.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
    if not found:
        raise UserError(f"folder {path} holds no {modality} files ({', '.join(suffixes)})")
    return found


def check_files(inputs: Sequence[Any], modality: str) -> None:
    """Inputs given as paths must exist; stored {"bytes", "path"} dicts and decoded values are read as they are."""
    for x in inputs:
        if isinstance(x, str | Path) and not Path(x).is_file():
            raise UserError(f"{modality} file {x} does not exist")


def describe_file(value: Any) -> str:
    """A {"bytes", "path"} dict by its path ("<in memory>" without one); anything else as str()."""
    if isinstance(value, dict):
        return str(value.get("path") or "<in memory>")
    return str(value)


def describe_split(ds: Dataset, modality: str) -> list[str]:
    """The source file of each row's input (column `modality`), or `<modality row>` for stored bytes."""
    values = undecoded(ds.select_columns([modality]), modality)[modality]
    return [v.get("path") or f"<{modality} {i}>" for i, v in enumerate(values)]
