"""scripts/reproduce.py: a run re-trained from its own files gives the same numbers, or a clear failure.

That two runs with the same seed give bit-identical losses and metrics is
tests/test_training.py::test_same_seed_same_numbers_other_seed_other_numbers; here the rerun starts from a
run directory, and what differs is reported quantity by quantity.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO_ROOT, write_csv
from test_cli import TINY

from hf_project import cli
from hf_project.compare import Run
from hf_project.config import parse_args
from hf_project.reproduce import DEFAULT_TOLERANCE, REPRODUCE_DIR, compare_runs, reproduce
from hf_project.runs import find_runs, set_status
from hf_project.training import run_experiment

SCRIPT = REPO_ROOT / "scripts" / "reproduce.py"


def train(fortunes_csv: Path, root: Path, *extra: str) -> Path:
    dirs = ["--runs_dir", str(root / "runs"), "--weights_dir", str(root / "weights")]
    run_experiment(parse_args(["--dataset", str(fortunes_csv), "--model", "lstm", *TINY, *dirs, *extra]))
    (run_dir,) = find_runs(root / "runs")
    return run_dir


@pytest.fixture(scope="module")
def recorded(fortunes_csv, tmp_path_factory) -> Path:
    return train(fortunes_csv, tmp_path_factory.mktemp("recorded"))


def copy_run(run_dir: Path, root: Path) -> Path:
    """The run under root/runs/<dataset>/<model>/<name>, so its reproduction lands under root/runs/_reproduce."""
    copy = root / "runs" / Path(*run_dir.parts[-3:])
    shutil.copytree(run_dir, copy)
    return copy


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def script_main(argv: list[str]):
    spec = importlib.util.spec_from_file_location("reproduce_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def run_script(argv: list[str], capsys) -> tuple[int, str, str]:
    status = cli.run(lambda: script_main(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def last_error(err: str) -> str:
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: ") and "Traceback" not in err
    return line


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_reproduces_exactly_through_the_command_line(recorded, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), str(recorded), "--out_dir", str(tmp_path / "repro")],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout[proc.stdout.index("quantity"):]
    assert table.split()[:4] == ["quantity", "recorded", "reproduced", "difference"]
    for quantity in ("validation loss", "validation best_step", "test accuracy", "test macro_f1", "loss curve"):
        assert quantity in table
    assert "tolerance 0 (same package versions and device): reproduced" in table
    assert "warning:" not in table
    (new,) = find_runs(tmp_path / "repro")
    assert json.loads((new / "reproduction.json").read_text())["passed"] is True


def test_reproduces_exactly_through_the_library(recorded):
    runs_root, weights = recorded.parents[2], recorded.parents[3] / "weights"
    before = snapshot(weights)
    result = reproduce(recorded)
    assert result.passed and result.tolerance == 0 and result.warnings == []
    assert len(result.rows) == 9 and all(row.difference == 0 for row in result.rows)
    assert result.curve.max_difference == 0 and result.curve.recorded_points == result.curve.reproduced_points > 5
    # Out of the way of the user's results: under _reproduce, which find_runs (compare, paper) does not scan ...
    assert result.reproduced.is_relative_to(runs_root / REPRODUCE_DIR)
    assert find_runs(runs_root) == [recorded]
    # ... and the weights went to a throwaway folder that is gone, not to weights/.
    assert snapshot(weights) == before
    reproduced_config = yaml.safe_load((result.reproduced / "config.yaml").read_text())
    assert not Path(reproduced_config["weights_dir"]).exists()
    assert json.loads((result.reproduced / "reproduction.json").read_text())["failures"] == []


@pytest.mark.parametrize(
    ("file", "tamper", "quantity"),
    [
        ("metrics.json", lambda m: m["test"].update(accuracy=m["test"]["accuracy"] + 0.01), "test accuracy"),
        ("log_history.json", lambda h: [e for e in h if "loss" in e][3].update(loss=[e for e in h if "loss" in e][3]
                                                                                 ["loss"] + 1e-4), "loss curve"),
    ],
)
def test_tampered_run_fails_naming_the_quantity(recorded, tmp_path, capsys, file, tamper, quantity):
    copy = copy_run(recorded, tmp_path)
    edit_json(copy / file, tamper)
    status, out, err = run_script([str(copy)], capsys)
    assert status == 1
    line = last_error(err)
    assert quantity in line and "tolerance 0" in line and "NOT reproduced" in out
    if quantity == "loss curve":
        assert "training loss at step" in line and "test accuracy" not in line


def test_other_torch_version_warns_and_uses_the_tolerance(recorded, tmp_path, capsys, caplog):
    copy = copy_run(recorded, tmp_path)
    edit_json(copy / "manifest.json", lambda m: m["versions"].update(torch="2.0.0"))
    half = DEFAULT_TOLERANCE / 2
    edit_json(copy / "metrics.json", lambda m: m["test"].update(accuracy=m["test"]["accuracy"] + half))
    status, out, err = run_script([str(copy)], capsys)
    assert status == 0, err[-2000:]
    assert f"warning: torch 2.0.0 recorded, {torch.__version__.split('+')[0]}" in out
    assert any("torch 2.0.0 recorded" in r.getMessage() for r in caplog.records)  # logged before training
    assert f"tolerance {DEFAULT_TOLERANCE:g} (package versions or device differ): reproduced" in out
    status, _, err = run_script([str(copy), "--tolerance", "0"], capsys)
    assert status == 1 and "test accuracy" in last_error(err)


def test_best_step_must_match_whatever_the_tolerance(recorded, tmp_path):
    copy = copy_run(recorded, tmp_path)
    edit_json(copy / "metrics.json", lambda m: m["validation"].update(best_step=m["validation"]["best_step"] - 1))
    result = compare_runs(Run.load(copy), Run.load(recorded), tolerance=0.5)
    assert [f.split(" (")[0] for f in result.failures] == ["validation best_step"]


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda d: set_status(d, "running"), "is 'running', not complete"),
        (lambda d: set_status(d, "failed"), "is 'failed', not complete"),
        (lambda d: (d / "metrics.json").unlink(), "lacks metrics.json"),
        (lambda d: edit_json(d / "split.json", lambda s: s.update(hash="0" * 16)), "the split differs"),
    ],
)
def test_incomplete_or_inconsistent_run_is_a_one_line_error(recorded, tmp_path, capsys, break_it, message):
    copy = copy_run(recorded, tmp_path)
    break_it(copy)
    status, _, err = run_script([str(copy)], capsys)
    assert status == 1 and message in last_error(err)
    assert find_runs(tmp_path / "runs" / REPRODUCE_DIR, complete_only=False) == []  # nothing trained


@pytest.mark.parametrize("where", ["runs root", "missing", "file"])
def test_not_a_run_directory_is_a_one_line_error(recorded, capsys, where):
    path = {"runs root": recorded.parents[2], "missing": recorded / "nope", "file": recorded / "metrics.json"}[where]
    status, _, err = run_script([str(path)], capsys)
    assert status == 1 and "is not a run directory" in last_error(err)


def test_changed_data_is_refused_before_training(recorded, tmp_path, capsys):
    copy = copy_run(recorded, tmp_path)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    with open(config["dataset"], newline="") as f:
        rows = list(csv.DictReader(f))
    rows[0]["text"] += " (edited)"
    changed = write_csv(tmp_path / "sample.csv", rows)  # same file name, so the same dataset name
    config["dataset"] = str(changed)
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    status, _, err = run_script([str(copy)], capsys)
    assert status == 1 and "the data changed since the run: dataset fingerprint" in last_error(err)
    assert find_runs(tmp_path / "runs" / REPRODUCE_DIR, complete_only=False) == []


@pytest.fixture
def restore_determinism():
    yield
    torch.use_deterministic_algorithms(False)  # enable_full_determinism sets it process-wide


def test_full_determinism_is_recorded_and_reproduces_exactly(fortunes_csv, tmp_path, restore_determinism):
    run_dir = train(fortunes_csv, tmp_path, "--full_determinism")
    assert torch.are_deterministic_algorithms_enabled()  # the Trainer turned them on
    assert json.loads((run_dir / "manifest.json").read_text())["full_determinism"] is True
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["full_determinism"] is True
    torch.use_deterministic_algorithms(False)
    result = reproduce(run_dir)
    assert torch.are_deterministic_algorithms_enabled()  # from the saved config, not a flag given again
    assert result.passed and result.tolerance == 0
    assert all(row.difference == 0 for row in result.rows) and result.curve.max_difference == 0


def test_manifest_records_full_determinism_off_by_default(recorded):
    assert json.loads((recorded / "manifest.json").read_text())["full_determinism"] is False

