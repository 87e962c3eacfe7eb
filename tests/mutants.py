#!/usr/bin/env python
"""Mutation check: each guarantee of the methodology, broken on purpose in a copy of the code, must fail a test.

    make mutants                                   # every mutant (about 5 minutes on 2 cores)
    .venv/bin/python tests/mutants.py --only best-checkpoint-backwards,class-weights-dropped

For each mutant: copy the repository's code to a temporary folder, replace one exact piece of source (it must occur
exactly once: a mutant whose code moved is an error, not a silent pass), run the tests meant to catch it, and
record whether they failed (killed) or passed (survived). Prints a table; exits 1 if any mutant survived.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("hf_project", "tests", "scripts", "configs", "notebooks", "pyproject.toml")
GUARANTEES = "tests/test_guarantees.py"


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]  # pytest arguments: files, or file::test ids, or "-k" expressions


MUTANTS = (
    Mutant("best-checkpoint-backwards", "hf_project/training.py",
           "greater_is_better=greater_is_better(t.metric_for_best_model),",
           "greater_is_better=not greater_is_better(t.metric_for_best_model),",
           (GUARANTEES, "-k", "kept_model")),
    Mutant("test-split-used-for-selection", "hf_project/training.py",
           'eval_dataset=inputs.prepared["validation"],', 'eval_dataset=inputs.prepared["test"],',
           (GUARANTEES, "-k", "read_once")),
    Mutant("class-weights-never-reach-the-trainer", "hf_project/training.py",
           "    if cfg.train.class_weights:\n", "    if False:\n",
           (GUARANTEES, "-k", "class_weights")),
    Mutant("class-weights-left-out-of-the-loss", "hf_project/tasks.py",
           "return F.cross_entropy(logits, labels, weight=weight)", "return F.cross_entropy(logits, labels)",
           (GUARANTEES, "-k", "class_weights")),
    Mutant("accumulated-loss-not-scaled", "hf_project/training.py",
           "self.loss_is_scaled_for_ga = False", "self.loss_is_scaled_for_ga = True",
           (GUARANTEES, "-k", "gradient_accumulation")),
    Mutant("resume-restarts-from-scratch", "hf_project/training.py",
           "output = trainer.train(resume_from_checkpoint=None if checkpoint is None else str(checkpoint))",
           "output = trainer.train()",
           ("tests/test_resume.py", "-k", "never_repeats")),
    Mutant("evaluation-rows-left-in-length-order", "hf_project/training.py",
           "restore = np.argsort(self.order)  # row order[k] was predicted k-th",
           "restore = np.arange(len(self.order))",
           ("tests/test_speed.py", "-k", "evaluation_runs_longest_first")),
    Mutant("inference-rows-left-in-length-order", "hf_project/inference.py",
           "return outputs if order is None else outputs[np.argsort(order)]", "return outputs",
           ("tests/test_speed.py", "-k", "predictor_sorts")),
    Mutant("split-test-from-the-head", "hf_project/data/splits.py",
           'parts["test"] = {"source": "train", "indices": perm[n - n_test :].tolist()}',
           'parts["test"] = {"source": "train", "indices": perm[:n_test].tolist()}',
           ("tests/test_data.py", "-k", "split_rule")),
    Mutant("no-stratify-ignored", "hf_project/data/__init__.py",
           'label_utils.stratification_keys(task, labels["train"]) if args.stratify else None',
           'label_utils.stratification_keys(task, labels["train"])',
           (GUARANTEES, "-k", "no_stratify")),
    Mutant("compare-marks-every-row", "hf_project/report.py", "if r[key] == top:", "if True:",
           (GUARANTEES, "-k", "compare_marks")),
    Mutant("compare-best-is-highest-loss", "hf_project/report.py",
           "top = (max if greater_is_better(metric) else min)(r[key] for r in scored)",
           "top = max(r[key] for r in scored)",
           (GUARANTEES, "-k", "compare_marks")),
    Mutant("loss-plot-draws-nothing", "hf_project/plots.py",
           "    if train_steps:\n", "    if False:\n",
           (GUARANTEES, "-k", "loss_plot")),
    Mutant("confusion-matrix-not-normalised", "hf_project/plots.py",
           "values = _normalise_rows(counts) if normalize else counts", "values = counts",
           (GUARANTEES, "-k", "confusion_matrix_plot")),
    Mutant("validation-curves-first-seed-only", "hf_project/plots.py",
           "for i, points in enumerate(seeds):", "for i, points in enumerate(seeds[:1]):",
           (GUARANTEES, "-k", "comparison_plots")),
    Mutant("metric-bars-first-seed-only", "hf_project/plots.py",
           "means = [float(np.mean(s)) for s in series]", "means = [float(s[0]) for s in series]",
           (GUARANTEES, "-k", "comparison_plots")),
    Mutant("rmse-higher-is-better", "hf_project/metrics/__init__.py",
           'LOWER_IS_BETTER = frozenset({"loss", "rmse", "mae", "hamming_loss", *CALIBRATION_METRIC_NAMES})',
           'LOWER_IS_BETTER = frozenset({"loss", "mae", "hamming_loss", *CALIBRATION_METRIC_NAMES})',
           ("tests/test_tasks.py", "-k", "regression_run_honours or tasks_direction or search_follows")),
    Mutant("pos-weight-left-out-of-the-loss", "hf_project/tasks.py",
           "pos_weight=weight)", "pos_weight=None)",
           ("tests/test_tasks.py", "-k", "pos_weight")),
    Mutant("tuned-threshold-not-used-on-test", "hf_project/training.py",
           "trainer.task = tune_threshold(", "tune_threshold(",
           ("tests/test_tasks.py", "-k", "tuned_threshold")),
    Mutant("inference-forgets-the-target-scale", "hf_project/tasks.py",
           "return Regression(mean=mean, std=std, standardized=", "return Regression(mean=0.0, std=1.0, standardized=",
           ("tests/test_tasks.py", "-k", "regression_predictor")),
    Mutant("multi-label-carve-by-whole-label-set", "hf_project/data/splits.py",
           "if any(isinstance(labels[i], tuple) for i in pool[:1]):", "if False:",
           ("tests/test_tasks.py", "-k", "iterative_stratification")),
)


def mutate(copy: Path, mutant: Mutant) -> None:
    source = copy / mutant.path
    text = source.read_text()
    count = text.count(mutant.old)
    if count != 1:
        raise SystemExit(f"error: mutant {mutant.name}: its code occurs {count} times in {mutant.path} (expected "
                         "once): update the mutant to the code as it is now")
    source.write_text(text.replace(mutant.old, mutant.new))


def run(mutant: Mutant, python: str) -> tuple[bool, float, str]:
    """(killed, seconds, the tests' last line) for one mutant."""
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.name}-") as tmp:
        copy = Path(tmp)
        for name in COPIED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(source, copy / name)
        mutate(copy, mutant)
        started = time.perf_counter()
        # PYTHONPATH: scripts and notebook kernels started by the tests import the mutated copy, not the package
        # installed (editable) in the venv
        proc = subprocess.run([python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *mutant.tests],
                              cwd=copy, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(copy)})
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        last = lines[-1] if lines else proc.stderr.strip()[-200:]
        if proc.returncode not in (0, 1):  # 5: no tests collected, 2/3/4: usage or internal errors
            raise SystemExit(f"error: mutant {mutant.name}: pytest exited {proc.returncode} ({last}): fix its tests")
        return proc.returncode == 1, time.perf_counter() - started, last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--only", type=lambda s: s.split(","), default=None, help="comma-separated mutant names")
    opts = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if opts.only is None or m.name in opts.only]
    unknown = sorted(set(opts.only or []) - {m.name for m in MUTANTS})
    if unknown:
        parser.error(f"unknown mutant(s) {', '.join(unknown)}: choose from {', '.join(m.name for m in MUTANTS)}")
    rows = []
    for mutant in chosen:
        print(f"[mutants] {mutant.name} ...", file=sys.stderr, flush=True)
        killed, seconds, last = run(mutant, sys.executable)
        rows.append((mutant, killed, seconds, last))
    print("| mutant | file | tests run | result | s |\n|---|---|---|---|---|")
    for mutant, killed, seconds, last in rows:
        tests = " ".join(mutant.tests).replace("tests/", "")
        result = f"killed ({last})" if killed else f"**survived** ({last})"
        print(f"| {mutant.name} | {mutant.path} | `{tests}` | {result} | {seconds:.0f} |")
    survived = [m.name for m, killed, _, _ in rows if not killed]
    print(f"\n{len(rows) - len(survived)} of {len(rows)} mutants killed" +
          (f"; survived: {', '.join(survived)}" if survived else ""))
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
