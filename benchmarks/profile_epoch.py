"""Where the time of one training epoch goes, for our finetune path or the reference recipe.

    .venv/bin/python benchmarks/profile_epoch.py --case minilm                 # one epoch of ours (long)
    .venv/bin/python benchmarks/profile_epoch.py --case minilm --max_steps 40  # the first 40 steps
    .venv/bin/python benchmarks/profile_epoch.py --case minilm --impl reference --max_steps 40

Prints the Python functions with the most cumulative and own time (cProfile), and the share of wall time
spent in the data pipeline (fetching + collating batches), forward+backward, and the optimiser step.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_train  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--case", choices=bench_train.CASES, default="minilm")
    parser.add_argument("--impl", choices=("ours", "reference"), default="ours")
    parser.add_argument("--max_steps", type=int, default=-1, help="profile only the first N steps (default: 1 epoch)")
    parser.add_argument("--max_train_samples", type=int, default=None)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hfp-profile-") as tmp:
        workdir = Path(tmp)
        bench_opts = argparse.Namespace(cases=[opts.case], epochs=1.0, learning_rate=2e-4, lstm_learning_rate=2e-3,
                                        batch_size=32, max_train_samples=opts.max_train_samples, max_eval_samples=None,
                                        threads=None, tiny=opts.tiny, other_batching=[],
                                        seed=bench_train.DEFAULT_SEED, fp32_only=True, no_second_run=True)
        job = next(j for j in bench_train.jobs_for(bench_opts, workdir) if j["impl"] == opts.impl)
        job.update(workdir=str(workdir / "job"), max_steps=opts.max_steps, inference=False, precision="no")
        phases = install_phase_timers()
        profiler = cProfile.Profile()
        out: dict = {}
        started = time.perf_counter()
        profiler.enable()
        (bench_train.run_ours if opts.impl == "ours" else bench_train.run_reference)(job, out)
        profiler.disable()
        wall = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    for key in ("cumulative", "tottime"):
        print(f"\n==== top {opts.top} by {key}")
        stats.sort_stats(key).print_stats(opts.top)
    print("\n==== phases (s, share of wall time)")
    for name, seconds in phases.items():
        print(f"{name:>18}: {seconds:8.2f}  {seconds / wall:6.1%}")
    print(f"{'wall':>18}: {wall:8.2f}")
    print(json.dumps(out))
    return 0


def install_phase_timers() -> dict[str, float]:
    """Wraps the Trainer's batch fetching, training step and optimiser step with timers."""
    import torch
    from transformers import Trainer

    phases = {"data (fetch+collate)": 0.0, "forward+backward": 0.0, "optimizer step": 0.0}

    def timed(fn, name):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] += time.perf_counter() - t

        return wrapper

    Trainer.training_step = timed(Trainer.training_step, "forward+backward")
    Trainer.get_batch_samples = timed(Trainer.get_batch_samples, "data (fetch+collate)")
    torch.optim.AdamW.step = timed(torch.optim.AdamW.step, "optimizer step")
    return phases


if __name__ == "__main__":
    sys.exit(main())
