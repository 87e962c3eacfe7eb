"""Where the project keeps what it derives once and reuses: tokenised splits, converted checkpoints, builtin data."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """$HF_PROJECT_CACHE, else ~/.cache/hf_project."""
    return Path(os.environ.get("HF_PROJECT_CACHE", Path.home() / ".cache" / "hf_project"))
