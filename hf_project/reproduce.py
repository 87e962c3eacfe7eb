"""Re-train a complete run from its own files and check that the same numbers come out.

The run's config.yaml gives every argument; its split.json must come out again from the same data (the dataset
fingerprint and the split hash are checked before anything trains). The new run goes under
`<runs root>/_reproduce/`, which `runs.find_runs` does not scan, and its weights into a throwaway folder, so
reproducing never changes the user's results or weights/.

Tolerance policy: with the same package versions and the same device (type, name, count, processes, torch
threads) on CPU, or on any device when the run used --full_determinism, the numbers must be equal (tolerance 0).
Otherwise every quantity may differ by at most DEFAULT_TOLERANCE (absolute); --tolerance overrides both. The
reproduction trains with the recorded torch thread count when this machine has that many cores, since CPU
reductions depend on it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hf_project import runs
from hf_project.errors import UserError
from hf_project.metrics import ALL_METRIC_NAMES
from hf_project.report import Run

if TYPE_CHECKING:
    from hf_project.data import PreparedData

logger = logging.getLogger(__name__)

# Absolute, on losses and on metrics in [0, 1]: one percentage point. Integer quantities (the best step) must
# match whatever the tolerance, since a different step means a different checkpoint was selected.
DEFAULT_TOLERANCE = 0.01
REPRODUCE_DIR = "_reproduce"
RUN_FILES = (runs.CONFIG_FILE, runs.SPLIT_FILE, runs.METRICS_FILE, runs.MANIFEST_FILE, runs.LOG_HISTORY_FILE)
QUANTITIES = (
    *(("validation", k) for k in ("loss", *ALL_METRIC_NAMES, "best_step")),
    *(("test", k) for k in ("loss", *ALL_METRIC_NAMES)),
)
CURVES = {"loss": "training loss", "eval_loss": "validation loss"}
# What decides the floating-point results on a device; platform strings and core counts do not.
DEVICE_KEYS = ("type", "name", "count", "num_processes", "torch_threads")


@dataclass
class Row:
    quantity: str
    recorded: float | None
    reproduced: float | None
    exact: bool = False  # compared for equality whatever the tolerance

    @property
    def difference(self) -> float:
        if self.recorded is None and self.reproduced is None:
            return 0.0
        if self.recorded is None or self.reproduced is None:
            return math.inf
        return self.reproduced - self.recorded

    def within(self, tolerance: float) -> bool:
        return self.difference == 0 if self.exact else abs(self.difference) <= tolerance


@dataclass
class CurveDifference:
    recorded_points: int
    reproduced_points: int
    max_difference: float  # inf when the two curves were logged at different steps
    where: str = ""  # the point of the largest difference, e.g. "training loss at step 4"


@dataclass
class Reproduction:
    recorded: Path
    reproduced: Path
    rows: list[Row]
    curve: CurveDifference
    tolerance: float
    tolerance_reason: str
    warnings: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        out = [f"{r.quantity} (recorded {_fmt(r.recorded)}, reproduced {_fmt(r.reproduced)}, difference "
               f"{_fmt_diff(r.difference)})" for r in self.rows if not r.within(self.tolerance)]
        if math.isinf(self.curve.max_difference):
            out.append(f"loss curve (logged at different steps: {self.curve.recorded_points} points recorded, "
                       f"{self.curve.reproduced_points} reproduced)")
        elif self.curve.max_difference > self.tolerance:
            out.append(f"loss curve (max difference {_fmt_diff(self.curve.max_difference)}, {self.curve.where})")
        return out

    @property
    def passed(self) -> bool:
        return not self.failures

    def failure_message(self) -> str:
        """One line naming every quantity that differs beyond the tolerance."""
        return (f"run not reproduced within tolerance {self.tolerance:g}: {'; '.join(self.failures)}; "
                f"the reproduction is in {self.reproduced}")

    def table(self) -> str:
        """recorded | reproduced | difference per quantity, then the loss curve, tolerance and warnings."""
        lines = [[r.quantity, _fmt(r.recorded), _fmt(r.reproduced), _fmt_diff(r.difference)] for r in self.rows]
        lines.append(["loss curve, max |difference|", f"{self.curve.recorded_points} points",
                      f"{self.curve.reproduced_points} points", _fmt_diff(self.curve.max_difference)])
        header = ["quantity", "recorded", "reproduced", "difference"]
        widths = [max(len(x[i]) for x in [header, *lines]) for i in range(4)]
        text = [f"recorded:   {self.recorded}", f"reproduced: {self.reproduced}", ""]
        for cells in [header, *lines]:
            first, *rest = zip(cells, widths, strict=True)
            text.append("  ".join([first[0].ljust(first[1]), *(c.rjust(w) for c, w in rest)]))
        verdict = "reproduced" if self.passed else "NOT reproduced"
        text += ["", f"tolerance {self.tolerance:g} ({self.tolerance_reason}): {verdict}"]
        text += [f"warning: {w}" for w in self.warnings]
        return "\n".join(text)

    def to_dict(self) -> dict[str, Any]:
        return {"recorded": str(self.recorded), "reproduced": str(self.reproduced), "passed": self.passed,
                "tolerance": self.tolerance, "tolerance_reason": self.tolerance_reason, "warnings": self.warnings,
                "rows": [{**asdict(r), "difference": r.difference} for r in self.rows],
                "loss_curve": asdict(self.curve), "failures": self.failures}


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.6f}"


def _fmt_diff(value: float) -> str:
    if value == 0:
        return "0"
    return f"{value:+.3g}" if math.isfinite(value) else "missing"


def load_run(run_dir: str | Path) -> Run:
    """A complete run, or a one-line error saying why the path is not one."""
    path = Path(run_dir)
    if not path.is_dir() or runs.read_status(path) is None:
        raise UserError(f"{path} is not a run directory (no status file): pass one like "
                        "runs/<dataset>/<model>/<timestamp>-s<seed>")
    status = runs.read_status(path)
    if status != runs.STATUS_COMPLETE:
        raise UserError(f"run {path} is {status!r}, not complete: only a complete run can be reproduced")
    missing = [name for name in RUN_FILES if not (path / name).is_file()]
    if missing:
        raise UserError(f"run {path} lacks {', '.join(missing)}: it is not a complete run directory")
    return Run.load(path)


def current_environment() -> dict[str, Any]:
    """The manifest's versions, device and git entries, as they are here and now (one process)."""
    return {"versions": runs.package_versions(), "device": {**runs.device_info(), "num_processes": 1},
            "git": runs.git_state()}


def environment_warnings(manifest: dict[str, Any], here: dict[str, Any]) -> tuple[list[str], bool]:
    """One line per difference from the manifest, and whether versions or device differ."""
    recorded_versions, versions = manifest.get("versions", {}), here["versions"]
    warnings = [f"{name} {recorded_versions.get(name)} recorded, {versions.get(name)} here"
                for name in sorted(set(recorded_versions) | set(versions))
                if recorded_versions.get(name) != versions.get(name)]
    recorded_device, device = manifest.get("device", {}), here["device"]
    warnings += [f"device {key} {recorded_device.get(key)!r} recorded, {device.get(key)!r} here"
                 for key in DEVICE_KEYS if recorded_device.get(key) != device.get(key)]
    environment_differs = bool(warnings)
    recorded_git, git = manifest.get("git", {}), here["git"]
    if recorded_git.get("commit") != git.get("commit"):
        warnings.append(f"git commit {recorded_git.get('commit')} recorded, {git.get('commit')} here")
    return warnings, environment_differs


def choose_tolerance(manifest: dict[str, Any], environment_differs: bool, tolerance: float | None
                     ) -> tuple[float, str]:
    if tolerance is not None:
        if tolerance < 0:
            raise UserError(f"--tolerance must be >= 0, got {tolerance}")
        return tolerance, "--tolerance"
    if environment_differs:
        return DEFAULT_TOLERANCE, "package versions or device differ"
    if manifest.get("device", {}).get("type") != "cpu" and not manifest.get("full_determinism"):
        return DEFAULT_TOLERANCE, "GPU without --full_determinism"
    return 0.0, "same package versions and device"


def compare_runs(recorded: Run, reproduced: Run, tolerance: float, tolerance_reason: str = "",
                 warnings: list[str] | None = None) -> Reproduction:
    rows = [Row(f"{split} {key}", recorded.metrics[split].get(key), reproduced.metrics[split].get(key),
                exact=key == "best_step")
            for split, key in QUANTITIES
            if key in recorded.metrics[split] or key in reproduced.metrics[split]]  # the task's metrics
    curve = curve_difference(recorded.log_history(), reproduced.log_history())
    return Reproduction(recorded.path, reproduced.path, rows, curve, tolerance, tolerance_reason, warnings or [])


def loss_points(history: list[dict[str, Any]]) -> dict[tuple[str, int], float]:
    return {(key, entry["step"]): entry[key] for entry in history for key in CURVES if key in entry}


def curve_difference(recorded: list[dict[str, Any]], reproduced: list[dict[str, Any]]) -> CurveDifference:
    a, b = loss_points(recorded), loss_points(reproduced)
    if a.keys() != b.keys():
        return CurveDifference(len(a), len(b), math.inf)
    diffs = {k: abs(b[k] - a[k]) for k in a}
    worst = max(diffs, key=diffs.get, default=None)
    where = f"{CURVES[worst[0]]} at step {worst[1]}" if worst else ""
    return CurveDifference(len(a), len(b), diffs[worst] if worst else 0.0, where)


def reproduction_root(run_dir: Path) -> Path:
    """<runs root>/_reproduce for runs/<dataset>/<model>/<run>: one level too deep for find_runs."""
    root = (run_dir if len(run_dir.parts) > 3 and ".." not in run_dir.parts else run_dir.resolve()).parents[2]
    return root if root.name == REPRODUCE_DIR else root / REPRODUCE_DIR


@contextmanager
def recorded_threads(device: dict[str, Any]):
    """CPU results depend on the intra-op thread count: train with the recorded one when this machine has it."""
    import torch

    previous, wanted = torch.get_num_threads(), device.get("torch_threads")
    use = device.get("type") == "cpu" and isinstance(wanted, int) and wanted != previous
    if use and wanted <= (os.cpu_count() or 1):
        logger.info("training with the recorded %d torch thread(s) (%d here by default)", wanted, previous)
        torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def check_same_data(data: PreparedData, split: dict[str, Any]) -> None:
    """The data must be the one the run saw, and split the same way, before anything trains."""
    recorded_fp = split.get("dataset_fingerprint")
    if data.fingerprint != recorded_fp:
        raise UserError(f"the data changed since the run: dataset fingerprint {data.fingerprint} now, {recorded_fp} "
                        "recorded; restore the original data to reproduce it")
    if data.split["hash"] != split.get("hash"):
        raise UserError(f"the split differs from the recorded one (hash {data.split['hash']} now, {split.get('hash')} "
                        "recorded) although the data is the same: the split rule or its settings changed")


def retrain(recorded: Run, out_root: Path) -> Path:
    """Re-run the recorded configuration under out_root, weights to a throwaway folder; the new run directory."""
    from hf_project.config import config_from_dict
    from hf_project.training import prepare_experiment, run_one

    with tempfile.TemporaryDirectory(prefix="hf_project-reproduce-weights-") as weights:
        cfg = config_from_dict({**recorded.config, "runs_dir": str(out_root), "weights_dir": weights, "seeds": None})
        experiment = prepare_experiment(cfg)
        cfg = experiment.cfg
        check_same_data(experiment.data, json.loads((recorded.path / runs.SPLIT_FILE).read_text()))
        ((name, spec),) = experiment.models
        return run_one(cfg.for_run(name, cfg.train.seed), spec, experiment.data).run_dir


def reproduce(run_dir: str | Path, tolerance: float | None = None, out_dir: str | Path | None = None
              ) -> Reproduction:
    """Re-train a complete run and compare its metrics and loss curve with the recorded ones.

    Warnings (one line each) name the package versions, device settings and git commit that differ from the
    manifest. The comparison is also written to reproduction.json in the new run directory.
    """
    recorded = load_run(run_dir)
    with recorded_threads(recorded.manifest.get("device", {})):
        warnings, environment_differs = environment_warnings(recorded.manifest, current_environment())
        for line in warnings:
            logger.warning(line)
        tol, reason = choose_tolerance(recorded.manifest, environment_differs, tolerance)
        out_root = Path(out_dir) if out_dir else reproduction_root(recorded.path)
        new_dir = retrain(recorded, out_root)
    result = compare_runs(recorded, Run.load(new_dir), tol, reason, warnings)
    runs.write_json(new_dir / runs.REPRODUCTION_FILE, result.to_dict())
    return result
