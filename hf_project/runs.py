"""Run directory layout, atomic writes, status and the manifest (ARCHITECTURE.md's contract)."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

STATUS_RUNNING, STATUS_COMPLETE, STATUS_FAILED = "running", "complete", "failed"
# The files of a run directory (ARCHITECTURE.md's run-directory contract): every reader and writer names them here.
STATUS_FILE = "status"
CONFIG_FILE = "config.yaml"
MANIFEST_FILE = "manifest.json"
SPLIT_FILE = "split.json"
CLASS_BALANCE_FILE = "class_balance.csv"
LOG_HISTORY_FILE = "log_history.json"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions_test.csv"
REPORT_FILE = "classification_report.csv"
CONFUSION_FILE = "confusion_matrix.json"
REPRODUCTION_FILE = "reproduction.json"
LOCK_FILE = ".lock"
MODEL_DIR = "model"
FIGURES_DIR = "figures"
# A search's folder, runs/<dataset>/<model>/search-<study>/ (hf_project.search): no status file, never a run.
SEARCH_DIR_PREFIX = "search-"
STUDY_FILE = "study.db"
SEARCH_FILE = "search.yaml"
TRIALS_FILE = "trials.csv"
BEST_FILE = "best.json"
LOSS_FIGURE = "loss.png"  # in FIGURES_DIR, as the next four
CONFUSION_FIGURE = "confusion_matrix.png"  # single-label classification
PER_LABEL_FIGURE = "per_label_f1.png"  # multi-label: test F1 of each label (the confusion figure's place)
SCATTER_FIGURE = "predicted_vs_true.png"  # regression: predicted against true test values
RELIABILITY_FIGURE = "reliability.png"  # classification: confidence against accuracy on test (calibration)
MODEL_CARD_FILE = "README.md"  # in MODEL_DIR and weights/<dataset>/<model>/: the model card
TENSORBOARD_DIR = "tensorboard"  # in the run directory, with --report_to tensorboard
# manifest.json of a text run: {split: {"p50", "p95", "truncated", "max_length"}}, token lengths before truncation
TEXT_LENGTHS = "text_lengths"
LABEL_SET_SEPARATOR = "|"  # joins the labels of one multi-label example in predictions_test.csv (and predict.py's)
# the figure of the test set that each task kind draws (hf_project.metrics.TASKS)
TEST_FIGURES = {"single_label": CONFUSION_FIGURE, "multi_label": PER_LABEL_FIGURE, "regression": SCATTER_FIGURE}
SAMPLE_INPUTS_FIGURE = "sample_inputs.png"
# single-label: the test inputs of the most confused pairs of classes, each the mistake the model was surest of
CONFUSED_FIGURE = "confused_examples.png"
CHECKPOINTS_DIR = "checkpoints"
RUN_NAME_RE = re.compile(r"^(\d{8}-\d{6})(?:-(\d+))?-s")  # new_run_dir's <UTC timestamp>[-n]-s<seed>
REPO_ROOT = Path(__file__).resolve().parents[1]
VERSIONED_PACKAGES = (
    "torch", "transformers", "datasets", "evaluate", "accelerate", "tokenizers", "numpy", "scikit-learn", "pandas",
)


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A fresh temporary name beside `path` (same directory, so the rename is atomic) for the block to write a file
    or a folder to; renamed over `path` when the block succeeds, removed when it fails. Readers see the old `path`
    or the new one, never a half-written one. `suffix` keeps the extension tools such as ffmpeg look at."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Temp file in the same directory, fsync, then os.replace: readers see the old file or the new one."""
    with atomic_path(path) as tmp, open(tmp, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


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


def started(run_dir: Path) -> tuple[str, int, str]:
    """Sort key of run directories by start: <UTC timestamp>[-n]-s<seed>, the n-th directory made within the same
    second being newer than the plain one (new_run_dir's names)."""
    match = RUN_NAME_RE.match(run_dir.name)
    if not match:
        return ("", 0, str(run_dir))
    return (match.group(1), int(match.group(2) or 0), str(run_dir))


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
    atomic_write_text(Path(run_dir) / STATUS_FILE, status + "\n")


def read_status(run_dir: str | Path) -> str | None:
    try:
        return (Path(run_dir) / STATUS_FILE).read_text().strip()
    except FileNotFoundError:
        return None


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """A run's config.yaml as a mapping; OSError, yaml.YAMLError or ValueError (empty, or not a mapping) for the
    caller to turn into its own message."""
    values = yaml.safe_load((Path(run_dir) / CONFIG_FILE).read_text())
    if not isinstance(values, dict):
        raise ValueError(f"{Path(run_dir) / CONFIG_FILE} is not a mapping")
    return values


class RunLocked(Exception):
    """Another live process is training this run."""


@contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Held by the process that trains the run for as long as it runs. The OS drops it when that process ends, even
    by SIGKILL, so a `running` status without the lock is a killed run, and one with it is alive."""
    fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
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
    found = [p.parent for p in Path(runs_dir).glob(f"*/*/*/{STATUS_FILE}")]
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
