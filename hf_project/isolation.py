"""One run in a process of its own: what a multi-model command on a CPU does for every model.

In one process, the second model inherits the first one's heap: glibc keeps the span the first model's training
grew, and the next model's allocations spread over it, so an LSTM trained after MiniLM holds about 300 MB more
than the same LSTM alone (measured on fortunes: 970 MB against 656 MB), and its peak memory would not be its own.
transformers' benchmark utilities measured memory in a separate process for the same reason. A new interpreter
(not a fork: no inherited thread pools, nothing of the caller's script re-run) receives the run's config and the
prepared data, trains, writes its run directory and hands back the metrics; its one-line errors stay one-line here.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hf_project.errors import UserError
from hf_project.runs import atomic_write_bytes

PACKAGE_PARENT = Path(__file__).resolve().parents[1]  # so the child imports this same hf_project


def run_in_own_process(run: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """`run(*args)` in a new interpreter (`python -m hf_project.isolation`; `run` must be importable by name): its
    metrics, or its error raised here. Nothing of the caller's script is re-imported there."""
    with tempfile.TemporaryDirectory(prefix="hf_project-run-") as tmp:
        job, result = Path(tmp) / "job.pkl", Path(tmp) / "result.pkl"
        job.write_bytes(pickle.dumps((run, args, torch.get_num_threads())))
        path = os.pathsep.join(p for p in (str(PACKAGE_PARENT), os.environ.get("PYTHONPATH")) if p)
        child = subprocess.Popen([sys.executable, "-m", "hf_project.isolation", str(job), str(result)],
                                 env={**os.environ, "PYTHONPATH": path})
        try:
            code = child.wait()
        except KeyboardInterrupt:  # Ctrl-C reached the child too: it marks its run failed, then stops
            child.wait()
            raise
        if not result.is_file():
            if code == 130:
                raise KeyboardInterrupt
            raise UserError(_death_message(code))
        kind, value = pickle.loads(result.read_bytes())
    if kind == "ok":
        return value
    if kind == "user_error":
        raise UserError(value)
    raise RuntimeError(f"the run's own process failed:\n{value}")


def _death_message(code: int) -> str:
    if code == -signal.SIGKILL:
        cause = "it was killed (SIGKILL: most often the system running out of memory)"
    else:
        cause = f"it exited with status {code}"
    return (f"the process training this model ended without a result ({cause}); its run directory is not complete: "
            "free memory or lower --per_device_train_batch_size, then continue it with --resume last")


def _child(job: Path, result: Path) -> int:
    from hf_project.cli import setup_logging

    setup_logging()
    run, args, threads = pickle.loads(job.read_bytes())
    torch.set_num_threads(threads)  # the parent's setting, so the numbers do not depend on where the run trained
    try:
        outcome = ("ok", run(*args))
    except UserError as err:
        outcome = ("user_error", str(err))
    except KeyboardInterrupt:
        return 130
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
        outcome = ("error", traceback.format_exc())
    atomic_write_bytes(result, pickle.dumps(outcome))  # whole or absent: a killed child leaves no half result
    return 0


if __name__ == "__main__":
    sys.exit(_child(Path(sys.argv[1]), Path(sys.argv[2])))
