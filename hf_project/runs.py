"""Run directory layout, atomic writes, status and the manifest (ARCHITECTURE.md's contract)."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

STATUS_RUNNING, STATUS_COMPLETE, STATUS_FAILED = "running", "complete", "failed"
REPO_ROOT = Path(__file__).resolve().parents[1]
VERSIONED_PACKAGES = (
    "torch", "transformers", "datasets", "evaluate", "accelerate", "tokenizers", "numpy", "scikit-learn", "pandas",
)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Temp file in the same directory, fsync, then os.replace: readers see the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=_jsonable) + "\n")


def write_yaml(path: str | Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def write_csv(path: str | Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def new_run_dir(runs_dir: str | Path, dataset: str, model: str, seed: int) -> Path:
    """runs/<dataset>/<model>/<timestamp>-s<seed>/, never reusing an existing directory."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = Path(runs_dir) / dataset / model
    base.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        path = base / (f"{stamp}-s{seed}" if n == 0 else f"{stamp}-{n}-s{seed}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run directory under {base}")


def set_status(run_dir: str | Path, status: str) -> None:
    atomic_write_text(Path(run_dir) / "status", status + "\n")


def read_status(run_dir: str | Path) -> str | None:
    try:
        return (Path(run_dir) / "status").read_text().strip()
    except FileNotFoundError:
        return None


class RunLocked(Exception):
    """Another live process is training this run."""


@contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Held by the process that trains the run for as long as it runs. The OS drops it when that process ends, even
    by SIGKILL, so a `running` status without the lock is a killed run, and one with it is alive."""
    fd = os.open(Path(run_dir) / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunLocked(f"run {run_dir} is being trained by another process") from None
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def is_locked(run_dir: str | Path) -> bool:
    try:
        with run_lock(run_dir):
            return False
    except RunLocked:
        return True
    except OSError:  # no lock file can be made here (read-only): nobody can be training in it either
        return False


def find_runs(runs_dir: str | Path = "runs", complete_only: bool = True) -> list[Path]:
    """Run directories (those with a status file), oldest first; only complete ones by default."""
    found = [p.parent for p in Path(runs_dir).glob("*/*/*/status")]
    if complete_only:
        found = [p for p in found if read_status(p) == STATUS_COMPLETE]
    return sorted(found, key=lambda p: (p.name, str(p)))


def git_state() -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT, capture_output=True, text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    if commit.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                            "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info.update(type="cuda", name=torch.cuda.get_device_name(0), count=torch.cuda.device_count())
    else:
        info.update(type="cpu", name=platform.processor() or platform.machine())
    return info


def command_line() -> str:
    return " ".join([Path(sys.executable).name, *sys.argv])


def copy_dir_atomic(src: str | Path, dst: str | Path) -> None:
    """Replace dst by a copy of src; a crash leaves the old dst or the new one, never a mix."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.tmp-"))
    try:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
        if dst.exists():
            old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
            os.replace(dst, old)
            try:
                os.replace(tmp, dst)
            except BaseException:
                os.replace(old, dst)  # the earlier copy goes back: a failed write never costs the old weights
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dst)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
