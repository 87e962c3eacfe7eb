"""Where the project keeps what it derives once and reuses: tokenised splits, converted checkpoints, builtin data."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from hf_project.runs import atomic_path


def default_cache_dir() -> Path:
    """$HF_PROJECT_CACHE, else ~/.cache/hf_project."""
    return Path(os.environ.get("HF_PROJECT_CACHE", Path.home() / ".cache" / "hf_project"))


def build_once(final: Path, build: Callable[[Path], None]) -> Path:
    """`final`, built by `build(tmp)` into a fresh temporary folder beside it and renamed into place unless it
    exists already; when two processes build at once the first rename wins and the other's copy is dropped.
    A build that fails leaves nothing behind, so the next call builds afresh."""
    if final.is_dir():
        return final
    try:
        with atomic_path(final) as tmp:
            tmp.mkdir()
            tmp.chmod(0o755)  # readable by the other users of a shared cache, whatever the umask
            build(tmp)
    except OSError:
        if not final.is_dir():  # a rename that lost the race leaves the winner's copy in place
            raise
    return final


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
