"""Builtin offline datasets: real data that needs no hub."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from hf_project.errors import UserError

logger = logging.getLogger(__name__)

FORTUNE_PACKAGES = ("fortunes", "fortunes-min")
BUILTIN_DATASETS = ("fortunes", "digits")


def fortune_files(packages: tuple[str, ...] = FORTUNE_PACKAGES) -> list[Path]:
    """Cookie files owned by the given Debian packages only, so other fortune packages cannot leak in.

    A cookie file is a regular file with a `.dat` index beside it; the `.u8` names are symlinks to the same
    files and are skipped so no cookie is counted twice.
    """
    if shutil.which("dpkg") is None:
        raise UserError("builtin dataset 'fortunes' needs Debian's dpkg and the fortunes package: use a Debian machine")
    proc = subprocess.run(["dpkg", "-L", *packages], capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(
            "builtin dataset 'fortunes' needs the Debian package fortunes: run `sudo apt-get install -y fortunes`"
        )
    files = []
    for line in proc.stdout.splitlines():
        path = Path(line)
        if path.suffix or path.is_symlink() or not path.is_file():
            continue
        if Path(f"{path}.dat").is_file():
            files.append(path)
    if not files:
        raise UserError("the fortunes package has no cookie files: run `apt-get install --reinstall fortunes`")
    return sorted(set(files))


def parse_cookies(path: Path) -> list[str]:
    """One text per cookie; cookies are separated by lines holding a single '%'."""
    cookies, current = [], []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip() == "%":
            cookies.append("\n".join(current).strip())
            current = []
        else:
            current.append(line.rstrip())
    cookies.append("\n".join(current).strip())
    return [c for c in cookies if c]


def load_fortunes() -> DatasetDict:
    files = fortune_files()
    names = sorted(f.name for f in files)
    texts, labels = [], []
    for path in files:
        cookies = parse_cookies(path)
        texts.extend(cookies)
        labels.extend([names.index(path.name)] * len(cookies))
    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})
    logger.info("builtin fortunes: %d cookies in %d categories", len(texts), len(names))
    return DatasetDict({"train": Dataset.from_dict({"text": texts, "label": labels}, features=features)})


def load_digits() -> DatasetDict:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, offline) as greyscale PIL images."""
    import numpy as np
    from datasets import Image
    from PIL import Image as PILImage
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    # Pixel values are 0..16; scale to the 0..255 of an 8-bit greyscale image.
    images = [PILImage.fromarray((img * 255 / 16).round().astype(np.uint8)) for img in bunch.images]
    features = Features({"image": Image(), "label": ClassLabel(names=[str(d) for d in range(10)])})
    train = Dataset.from_dict({"image": images, "label": bunch.target.tolist()}, features=features)
    return DatasetDict({"train": train})


def load_builtin(name: str) -> DatasetDict:
    if name == "fortunes":
        return load_fortunes()
    if name == "digits":
        return load_digits()
    raise UserError(f"unknown builtin dataset {name!r}: valid ones are {', '.join(BUILTIN_DATASETS)}")
