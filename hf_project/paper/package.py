"""The submission zip the course asks for: code, notebooks, weights, requirements, README and the paper PDF.

Never the data: runs/ stays out entirely, and so does any data file (csv, parquet, audio, arrays...) wherever it
lies, so a dataset copied into the repository cannot slip in.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from hf_project import runs
from hf_project.errors import UserError

logger = logging.getLogger(__name__)

INCLUDE = ("README.md", "requirements.txt", "Makefile", "pyproject.toml", "hf_project", "scripts", "configs",
           "notebooks", "tests", "benchmarks", "paper", "weights")
REQUIRED = ("README.md", "requirements.txt", "scripts", "paper/paper.pdf")
EXCLUDED_DIRS = {"runs", ".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints",
                 runs.CHECKPOINTS_DIR, "dist"}
DATA_PATTERNS = ("*.csv", "*.tsv", "*.parquet", "*.arrow", "*.jsonl", "*.feather", "*.npy", "*.npz", "*.pkl",
                 "*.wav", "*.flac", "*.mp3", "*.ogg", "*.db", "*.sqlite", "*.zip", "*.tar", "*.tar.gz", "*.h5")
# LaTeX by-products and editor droppings carry nothing a reader needs.
JUNK_PATTERNS = ("*.pyc", "*.aux", "*.log", "*.bbl", "*.blg", "*.out", "*.tmp", ".*.tmp", ".DS_Store")


@dataclass
class PackageArguments:
    root: str = field(default=str(runs.REPO_ROOT), metadata={"help": "The project folder to package."})
    output: str = field(default="dist/submission.zip", metadata={"help": "The zip to write (relative to --root)."})
    allow_missing_paper: bool = field(
        default=False, metadata={"help": "Package even without paper/paper.pdf (build it with build_paper.py)."})


def is_excluded(rel: Path) -> bool:
    if any(part in EXCLUDED_DIRS for part in rel.parts[:-1]):
        return True
    return any(fnmatch.fnmatch(rel.name, p) for p in (*DATA_PATTERNS, *JUNK_PATTERNS))


def submission_files(root: Path) -> list[Path]:
    """Paths relative to root, sorted: the INCLUDE entries that exist, minus data and junk."""
    files = []
    for entry in INCLUDE:
        path = root / entry
        if path.is_file():
            files.append(Path(entry))
        elif path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS)
                for name in filenames:
                    rel = Path(dirpath, name).relative_to(root)
                    if not is_excluded(rel):
                        files.append(rel)
    return sorted(files)


def package_submission(args: PackageArguments) -> tuple[Path, str]:
    """Write the zip atomically; returns its path and a size summary per top-level entry."""
    root = Path(args.root).resolve()
    missing = [r for r in REQUIRED if not (root / r).exists()]
    if args.allow_missing_paper and "paper/paper.pdf" in missing:
        missing.remove("paper/paper.pdf")
    if missing:
        hint = " (build it with scripts/build_paper.py)" if "paper/paper.pdf" in missing else ""
        raise UserError(f"cannot package {root}: missing {', '.join(missing)}{hint}")
    files = submission_files(root)
    output = Path(args.output) if Path(args.output).is_absolute() else root / args.output
    with runs.atomic_path(output, suffix=".zip") as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for rel in files:
                zf.write(root / rel, rel.as_posix())
    return output, size_summary(output)


def size_summary(zip_path: Path) -> str:
    sizes: dict[str, list[int]] = {}
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            top = info.filename.split("/")[0]
            entry = sizes.setdefault(top, [0, 0, 0])
            entry[0] += 1
            entry[1] += info.file_size
            entry[2] += info.compress_size
    width = max([len(k) for k in sizes] + [5])
    lines = [f"{'entry'.ljust(width)}  files  size MB  zipped MB"]
    for top, (n, size, packed) in sorted(sizes.items(), key=lambda kv: -kv[1][2]):
        lines.append(f"{top.ljust(width)}  {n:5d}  {size / 1e6:7.2f}  {packed / 1e6:9.2f}")
    total = [sum(v[i] for v in sizes.values()) for i in range(3)]
    lines.append(f"{'total'.ljust(width)}  {total[0]:5d}  {total[1] / 1e6:7.2f}  {total[2] / 1e6:9.2f}")
    lines.append(f"{zip_path}: {zip_path.stat().st_size / 1e6:.2f} MB")
    return "\n".join(lines)
