"""Peak memory of one model's run, its own even when several models train one after another in one process.

The process-wide maximum RSS (`ru_maxrss`) only grows, so the second model of `--model minilm,lstm` would report
the first one's peak. On Linux the kernel's high-water mark (VmHWM) can be reset (`/proc/self/clear_refs`, "5"),
so the peak of a window is exact; where that is refused, a thread samples the RSS instead. On a GPU the figure is
torch's maximum allocated memory, whose counter is reset the same way.
"""

from __future__ import annotations

import ctypes
import gc
import re
import threading
from pathlib import Path
from typing import Any

import psutil
import torch

CUDA_KIND = "cuda max allocated"
HWM_KIND = "max RSS while this model trained and tested"
SAMPLED_KIND = "max RSS while this model trained and tested (sampled every 50 ms)"
SAMPLE_INTERVAL_S = 0.05
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def release_freed_memory() -> None:
    """Hand memory freed by an earlier model back to the OS, so the next model's peak does not start from it."""
    gc.collect()
    try:  # glibc keeps freed heap pages mapped until asked
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _high_water_mb() -> float | None:
    try:
        match = re.search(r"VmHWM:\s+(\d+) kB", _STATUS.read_text())
    except OSError:
        return None
    return int(match.group(1)) / 1024 if match else None


def _reset_high_water() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return _high_water_mb() is not None


class PeakMemory:
    """`with PeakMemory() as peak: ...` then `peak.mb` (MB) and `peak.kind` (what was measured). `host`: the process's
    RSS even when a GPU is there, for a model that never uses it (the TF-IDF baseline)."""

    def __init__(self, host: bool = False) -> None:
        self.host = host
        self.kind = ""
        self._sampled = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        release_freed_memory()
        if torch.cuda.is_available() and not self.host:
            torch.cuda.reset_peak_memory_stats()
            self.kind = CUDA_KIND
        elif _reset_high_water():
            self.kind = HWM_KIND
        else:
            self.kind = SAMPLED_KIND
            self._sampled = psutil.Process().memory_info().rss / 2**20
            self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self._sampled = max(self._sampled, process.memory_info().rss / 2**20)

    @property
    def mb(self) -> float:
        """The peak so far (MB), of this window only."""
        if self.kind == CUDA_KIND:
            return torch.cuda.max_memory_allocated() / 2**20
        if self.kind == HWM_KIND:
            return _high_water_mb() or 0.0
        return max(self._sampled, psutil.Process().memory_info().rss / 2**20)

    def reading(self) -> dict[str, Any]:
        """The manifest's fields for this window."""
        return {"peak_memory_mb": round(self.mb, 1), "peak_memory_kind": self.kind}

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
