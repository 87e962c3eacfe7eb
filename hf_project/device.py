"""Where training runs: the device, the processes that share it, and the precision it trains in."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from hf_project.config import MIXED_PRECISIONS, TrainArguments
from hf_project.errors import UserError

T = TypeVar("T")
logger = logging.getLogger(__name__)


def use_cpu() -> bool:
    """No accelerator here: train on the CPU, over gloo when several processes were launched."""
    return not torch.accelerator.is_available()


def distributed_state() -> Any:
    """The state shared by the processes, set up as TrainingArguments(use_cpu=use_cpu()) sets it up.

    `accelerate launch --multi_gpu --num_processes N` passes no CPU flag: on a machine without GPUs a bare
    PartialState() would leave every process on its own (each one its own main process and run directory).
    """
    from accelerate import PartialState

    return PartialState(cpu=use_cpu())


def on_main_process(fn: Callable[[], T]) -> T:
    """`fn()` computed by the main process and handed to every process; its UserError reaches all of them."""
    from accelerate.utils import broadcast_object_list

    result, error = None, None
    if distributed_state().is_main_process:
        try:
            result = fn()
        except UserError as err:
            error = str(err)
    result, error = broadcast_object_list([result, error])
    if error is not None:
        raise UserError(error)
    return result


def launched_precision() -> str:
    """What `accelerate launch` (flag or config file) asked for: no, bf16 or fp16."""
    launched = os.environ.get("ACCELERATE_MIXED_PRECISION", "no").lower()
    if launched not in MIXED_PRECISIONS:
        raise UserError(f"accelerate's mixed precision {launched!r} is not supported here: use no, bf16 or fp16")
    return launched


def resolve_mixed_precision(t: TrainArguments) -> str:
    """The precision to train in: --mixed_precision, or at `auto` (the default) what `accelerate launch` (flag or
    config file) asked for, else the device's best: bf16 on a GPU that has it, fp16 on an older GPU, fp32 on a CPU."""
    launched = launched_precision()
    if t.mixed_precision != "auto" and launched not in ("no", t.mixed_precision):
        raise UserError(f"--mixed_precision {t.mixed_precision} contradicts accelerate's mixed precision {launched} "
                        "(accelerate launch --mixed_precision or its config file): give only one of them")
    if t.mixed_precision != "auto":
        precision = t.mixed_precision
    elif launched != "no":
        precision = launched
    else:
        precision = device_default_precision()
    if precision == "fp16" and use_cpu():
        raise UserError("mixed precision fp16 needs a GPU and there is none here: use --mixed_precision bf16 (or no) "
                        "on a CPU")
    hint = bf16_hint(t.mixed_precision, precision)
    if hint:
        logger.info(hint)
    return precision


# Measured with benchmarks/bench_train.py on a 2-core AMD EPYC with avx512_bf16 (BENCHMARKS.md): MiniLM on fortunes.
BF16_CPU_SPEEDUP = {"train": 47.7 / 36.7, "eval": 3.61 / 2.51}


def cpu_supports_bf16(cpuinfo: str | None = None) -> bool:
    """Native bf16 instructions (avx512_bf16 or AMX) in /proc/cpuinfo's flags (or in `cpuinfo`, for tests)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = {f for line in cpuinfo.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()}
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def bf16_hint(requested: str, precision: str, cpuinfo: str | None = None) -> str | None:
    """The one-line hint for a CPU with native bf16 that `auto` kept in fp32 (None otherwise): `auto` stays fp32 on
    every CPU, because only some CPUs of one kind of machine have bf16, and the same command must give the same numbers
    on all of them; bf16 is there for whoever asks."""
    if requested != "auto" or precision != "no" or not use_cpu() or not cpu_supports_bf16(cpuinfo):
        return None
    return (f"this CPU has native bf16: --mixed_precision bf16 trains about {BF16_CPU_SPEEDUP['train']:.1f}x and "
            f"evaluates about {BF16_CPU_SPEEDUP['eval']:.1f}x faster (MiniLM, BENCHMARKS.md), but its numbers differ "
            "from fp32's, so `auto` stays fp32 to give the same numbers on every CPU")


def device_default_precision() -> str:
    """Mixed precision on by default where the device runs it fast: bf16 on a GPU that has it, fp16 on older GPUs.
    CPUs train in fp32 unless asked: only some have bf16 instructions, and emulated bf16 is slower than fp32."""
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
