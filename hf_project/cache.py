"""Where the project keeps what it derives once and reuses: tokenised splits, converted checkpoints, builtin data."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def default_cache_dir() -> Path:
    """$HF_PROJECT_CACHE, else ~/.cache/hf_project."""
    return Path(os.environ.get("HF_PROJECT_CACHE", Path.home() / ".cache" / "hf_project"))


def build_once(final: Path, build: Callable[[Path], None]) -> Path:
    """`final`, built by `build(tmp)` into a fresh temporary folder beside it and renamed into place unless it
    exists already; when two processes build at once the first rename wins and the other's copy is dropped.
    A build that fails leaves nothing behind, so the next call builds afresh."""
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from other users
    try:
        build(tmp)
        try:
            os.replace(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
