"""Resume and faults: a killed run continues from its latest good checkpoint to the very numbers of an uninterrupted
run; half-written checkpoints are skipped; a killed run never counts; a full disk is a one-line error."""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT
from safetensors.torch import load_file
from transformers import TrainerCallback

from hf_project import cli, resume, runs, training
from hf_project.compare import select_runs
from hf_project.config import parse_args
from hf_project.errors import UserError
from hf_project.training import run_experiment

# 9 steps per epoch. Without dropout-free settings the numbers would still be exact (RNG states are restored), but
# these are the smallest that learn, stop early and keep two checkpoints (the best and the latest).
TINY = ["--per_device_train_batch_size", "16", "--max_length", "32", "--lstm_embedding_dim", "16",
        "--lstm_hidden_size", "16", "--lstm_learning_rate", "0.01", "--lstm_dropout", "0", "--logging_steps", "3"]
# Stops early: evaluations at steps 9..45, best at 27, no improvement at 36 and 45 (patience 2).
EARLY_STOP = [*TINY, "--num_train_epochs", "10", "--early_stopping_patience", "2"]
# Checkpoints every 6 steps, inside epochs; dropout on, so the restored RNG state matters.
MID_EPOCH = [*TINY, "--num_train_epochs", "4", "--eval_strategy", "steps", "--eval_steps", "6",
             "--early_stopping_patience", "0", "--lstm_dropout", "0.2"]
STATE_FILES = ("trainer_state.json", "model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth")
_references: dict[tuple[str, ...], Path] = {}


class Killed(Exception):
    pass


class KillAfterCheckpoint(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:  # the checkpoint is complete on disk: as if killed right after it
            raise Killed(f"killed after checkpoint-{self.step}")


def dirs(root: Path) -> list[str]:
    return ["--runs_dir", str(root / "runs"), "--weights_dir", str(root / "weights")]


def run_dir_of(root: Path) -> Path:
    (run_dir,) = runs.find_runs(root / "runs", complete_only=False)
    return run_dir


def reference(fortunes_csv: Path, tmp_path_factory, settings: list[str]) -> Path:
    """The uninterrupted run with these settings (one per module), as a run directory."""
    key = tuple(settings)
    if key not in _references:
        root = tmp_path_factory.mktemp("reference")
        run_experiment(parse_args(["--dataset", str(fortunes_csv), "--model", "lstm", *settings, *dirs(root)]))
        _references[key] = run_dir_of(root)
    return _references[key]


def interrupted(fortunes_csv: Path, root: Path, settings: list[str], step: int, monkeypatch) -> Path:
    """A run stopped by an exception right after checkpoint-<step> was written."""
    build = training.build_trainer

    def with_kill(*args, **kwargs):
        trainer = build(*args, **kwargs)
        trainer.add_callback(KillAfterCheckpoint(step))
        return trainer

    with monkeypatch.context() as patch:
        patch.setattr(training, "build_trainer", with_kill)
        with pytest.raises(Killed):
            run_experiment(parse_args(["--dataset", str(fortunes_csv), "--model", "lstm", *settings, *dirs(root)]))
    return run_dir_of(root)


def history(run_dir: Path) -> list[dict]:
    """Loss curves without timings (and without the end-of-training summary, whose mean covers one process)."""
    entries = json.loads((run_dir / "log_history.json").read_text())
    return [{k: v for k, v in e.items() if "runtime" not in k and "per_second" not in k}
            for e in entries if "train_runtime" not in e]


def assert_same_run(resumed: Path, expected: Path) -> None:
    assert runs.read_status(resumed) == runs.STATUS_COMPLETE
    assert json.loads((resumed / "metrics.json").read_text()) == json.loads((expected / "metrics.json").read_text())
    a, b = load_file(resumed / "model" / "model.safetensors"), load_file(expected / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert history(resumed) == history(expected)
    assert (resumed / "predictions_test.csv").read_text() == (expected / "predictions_test.csv").read_text()
    assert not (resumed / "checkpoints").exists()


def eval_steps(run_dir: Path) -> list[int]:
    return [e["step"] for e in json.loads((run_dir / "log_history.json").read_text()) if "eval_loss" in e]


@pytest.mark.parametrize("case", ["early-stopping", "mid-epoch", "after-last-step"])
def test_interrupted_run_resumes_to_the_uninterrupted_numbers(fortunes_csv, tmp_path_factory, tmp_path, monkeypatch,
                                                              case):
    settings = MID_EPOCH if case == "mid-epoch" else EARLY_STOP
    expected = reference(fortunes_csv, tmp_path_factory, settings)
    steps = eval_steps(expected)
    # early-stopping: the evaluation before the one that stopped training (patience counter 1 of 2);
    # mid-epoch: step 24 of 9-step epochs; after-last-step: killed while testing or writing results.
    step = {"early-stopping": steps[-2], "mid-epoch": 24, "after-last-step": steps[-1]}[case]
    run_dir = interrupted(fortunes_csv, tmp_path, settings, step, monkeypatch)

    assert runs.read_status(run_dir) == runs.STATUS_FAILED
    assert runs.find_runs(tmp_path / "runs") == [] and select_runs(tmp_path / "runs") == []
    checkpoint = run_dir / "checkpoints" / f"checkpoint-{step}"
    for name in STATE_FILES:  # not save_only_model: everything an exact continuation needs
        assert (checkpoint / name).is_file(), name
    assert resume.checkpoint_problem(checkpoint) is None

    metrics = resume.resume_run(str(run_dir))
    assert list(metrics) == ["lstm"]
    assert_same_run(run_dir, expected)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["resumed_from"] == f"checkpoint-{step}"


def test_resumed_twice_at_an_epoch_end_then_inside_an_epoch(fortunes_csv, tmp_path_factory, tmp_path, monkeypatch):
    expected = reference(fortunes_csv, tmp_path_factory, MID_EPOCH)
    run_dir = interrupted(fortunes_csv, tmp_path, MID_EPOCH, 18, monkeypatch)  # the last step of the 2nd epoch
    build = training.build_trainer

    def with_kill(*args, **kwargs):
        trainer = build(*args, **kwargs)
        trainer.add_callback(KillAfterCheckpoint(24))  # inside the epoch that the first resume began
        return trainer

    with monkeypatch.context() as patch:
        patch.setattr(training, "build_trainer", with_kill)
        with pytest.raises(Killed):
            resume.resume_run(str(run_dir))
    resume.resume_run(str(run_dir))
    assert_same_run(run_dir, expected)
    assert json.loads((run_dir / "manifest.json").read_text())["resumed_from"] == "checkpoint-24"


def test_early_stopping_state_survives_the_resume(fortunes_csv, tmp_path_factory, tmp_path, monkeypatch):
    expected = reference(fortunes_csv, tmp_path_factory, EARLY_STOP)
    metrics = json.loads((expected / "metrics.json").read_text())
    assert metrics["global_steps"] < 90, "the reference must stop early for this test to mean anything"
    step = eval_steps(expected)[-2]
    run_dir = interrupted(fortunes_csv, tmp_path, EARLY_STOP, step, monkeypatch)
    state = json.loads((run_dir / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").read_text())
    assert state["stateful_callbacks"]["EarlyStoppingCallback"]["attributes"]["early_stopping_patience_counter"] == 1
    best_step = metrics["validation"]["best_step"]
    assert state["best_model_checkpoint"].endswith(f"checkpoint-{best_step}")
    assert state["best_metric"] == pytest.approx(metrics["validation"]["macro_f1"])

    restored = {}
    load = training.ClassificationTrainer._load_callback_state

    def spy(trainer):
        load(trainer)
        for callback in trainer.callback_handler.callbacks:
            if type(callback).__name__ == "EarlyStoppingCallback":
                restored["counter"] = callback.early_stopping_patience_counter
        restored["best_metric"] = trainer.state.best_metric

    monkeypatch.setattr(training.ClassificationTrainer, "_load_callback_state", spy)
    resume.resume_run(str(run_dir))
    assert restored == {"counter": 1, "best_metric": state["best_metric"]}
    # One more evaluation without improvement reaches the patience, as in the uninterrupted run.
    assert json.loads((run_dir / "metrics.json").read_text())["global_steps"] == metrics["global_steps"]


def damage(path: Path, how: str) -> None:
    if how == "missing":
        path.unlink()
    else:  # cut short, as a kill during the write leaves it
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.fixture
def two_checkpoints(fortunes_csv, tmp_path_factory, monkeypatch) -> Path:
    """An interrupted run holding checkpoints of the best step (27) and of the latest one (36)."""
    key = ("two-checkpoints",)
    if key not in _references:
        expected = reference(fortunes_csv, tmp_path_factory, EARLY_STOP)
        root = tmp_path_factory.mktemp("two-checkpoints")
        _references[key] = interrupted(fortunes_csv, root, EARLY_STOP, eval_steps(expected)[-2], monkeypatch)
    return _references[key]


def copy_run(run_dir: Path, root: Path) -> Path:
    target = root / "runs" / run_dir.relative_to(run_dir.parents[2])
    shutil.copytree(run_dir, target)
    return target


@pytest.mark.parametrize(("name", "how"), [
    ("trainer_state.json", "cut"), ("trainer_state.json", "missing"), ("model.safetensors", "cut"),
    ("optimizer.pt", "cut"), ("scheduler.pt", "missing"), ("rng_state.pth", "cut"), ("config.json", "cut"),
])
def test_damaged_checkpoint_files_are_detected(two_checkpoints, tmp_path, name, how):
    run_dir = copy_run(two_checkpoints, tmp_path)
    latest = sorted((run_dir / "checkpoints").iterdir())[-1]
    assert resume.checkpoint_problem(latest) is None
    damage(latest / name, how)
    assert name in resume.checkpoint_problem(latest)


def test_half_written_latest_checkpoint_falls_back_to_the_previous_one(two_checkpoints, fortunes_csv,
                                                                       tmp_path_factory, tmp_path):
    expected = reference(fortunes_csv, tmp_path_factory, EARLY_STOP)
    run_dir = copy_run(two_checkpoints, tmp_path)  # in another folder: the best checkpoint's path is rewritten
    best, latest = sorted((run_dir / "checkpoints").iterdir(), key=lambda p: int(p.name.split("-")[1]))
    damage(latest / "optimizer.pt", "cut")
    # A newer checkpoint still being written: weights there, trainer_state.json (written last) not yet.
    being_written = run_dir / "checkpoints" / "checkpoint-45"
    being_written.mkdir()
    shutil.copy(latest / "model.safetensors", being_written / "model.safetensors")

    assert resume.choose_checkpoint(run_dir) == best
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [best.name]
    resume.resume_run(str(run_dir))
    assert_same_run(run_dir, expected)
    assert json.loads((run_dir / "manifest.json").read_text())["resumed_from"] == best.name


def test_without_a_good_checkpoint_the_run_starts_over(two_checkpoints, fortunes_csv, tmp_path_factory, tmp_path):
    expected = reference(fortunes_csv, tmp_path_factory, EARLY_STOP)
    run_dir = copy_run(two_checkpoints, tmp_path)
    for checkpoint in (run_dir / "checkpoints").iterdir():
        damage(checkpoint / "trainer_state.json", "cut")
    resume.resume_run(str(run_dir))
    assert_same_run(run_dir, expected)
    assert json.loads((run_dir / "manifest.json").read_text())["resumed_from"] is None


def script_env() -> dict[str, str]:
    # One intra-op thread, as in this process (conftest), so that the numbers can be compared exactly.
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("when", ["checkpoint folder appears", "checkpoint complete"])
def test_sigkill_then_resume_from_the_command_line(fortunes_csv, tmp_path_factory, tmp_path, when):
    expected = reference(fortunes_csv, tmp_path_factory, EARLY_STOP)
    # The Trainer writes trainer_state.json last: a kill as soon as the folder appears often cuts the write short.
    pattern = "checkpoint-*" if when == "checkpoint folder appears" else "checkpoint-*/trainer_state.json"
    script = str(REPO_ROOT / "scripts" / "finetune.py")
    proc = subprocess.Popen([sys.executable, script, "--dataset", str(fortunes_csv), "--model", "lstm", *EARLY_STOP,
                             *dirs(tmp_path)], cwd=tmp_path, env=script_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list((tmp_path / "runs").glob(f"*/*/*/checkpoints/{pattern}")):
        assert proc.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    run_dir = run_dir_of(tmp_path)
    assert runs.read_status(run_dir) == runs.STATUS_RUNNING  # never complete, and it never got to say failed
    assert runs.find_runs(tmp_path / "runs") == [] and select_runs(tmp_path / "runs") == []

    done = subprocess.run([sys.executable, script, "--resume", "last", "--runs_dir", str(tmp_path / "runs")],
                          cwd=tmp_path, env=script_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    if when == "checkpoint complete":
        assert f"resuming {run_dir} from checkpoint-" in done.stderr
    else:
        assert f"resuming {run_dir} from checkpoint-" in done.stderr or "the run starts over" in done.stderr
    assert_same_run(run_dir, expected)
    assert [p.name for p in runs.find_runs(tmp_path / "runs")] == [run_dir.name]


def finetune_main():
    spec = importlib.util.spec_from_file_location("finetune_script", REPO_ROOT / "scripts" / "finetune.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def one_line_error(argv: list[str], capsys) -> str:
    main = finetune_main()
    assert cli.run(lambda: main(argv)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ")
    return err[-1]


def test_resume_refusals(fortunes_csv, tmp_path_factory, tmp_path, capsys, monkeypatch):
    complete = reference(fortunes_csv, tmp_path_factory, EARLY_STOP)
    before = (complete / "metrics.json").read_text()
    assert "is complete: there is nothing to resume" in one_line_error(["--resume", str(complete)], capsys)
    assert (complete / "metrics.json").read_text() == before and runs.read_status(complete) == runs.STATUS_COMPLETE
    assert "no run to resume" in one_line_error(["--resume", "last", "--runs_dir", str(complete.parents[2])], capsys)
    assert "not a run directory" in one_line_error(["--resume", str(tmp_path)], capsys)
    line = one_line_error(["--resume", "last", "--seed", "7"], capsys)
    assert "--seed cannot go with --resume" in line
    # A run trained in full precision is not resumed in bf16 because accelerate asks for it now.
    killed = tmp_path / "runs" / "sample" / "lstm" / "20240101-000000-s2023"
    killed.mkdir(parents=True)
    shutil.copy(complete / "config.yaml", killed / "config.yaml")
    runs.set_status(killed, runs.STATUS_RUNNING)
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    assert "trains with mixed precision no, but accelerate asks for bf16" in one_line_error(
        ["--resume", str(killed)], capsys)


def test_resume_last_picks_the_newest_unfinished_run(tmp_path):
    made = {}
    for name, status in (("20240101-000000-s1", "failed"), ("20240102-000000-s1", "running"),
                         ("20240102-000000-1-s1", "running"), ("20240103-000000-s1", "complete")):
        made[name] = tmp_path / "data" / "m" / name
        made[name].mkdir(parents=True)
        (made[name] / "config.yaml").write_text("model: lstm\n")
        runs.set_status(made[name], status)
    assert resume.find_run("last", tmp_path) == made["20240102-000000-1-s1"]
    assert resume.find_run(str(made["20240101-000000-s1"]), tmp_path) == made["20240101-000000-s1"]
    # A `running` run whose process is alive holds its lock: never picked, never resumed under its feet.
    with runs.run_lock(made["20240102-000000-1-s1"]):
        assert resume.find_run("last", tmp_path) == made["20240102-000000-s1"]
        with pytest.raises(UserError, match="still being trained by another process"):
            resume.find_run(str(made["20240102-000000-1-s1"]), tmp_path)
    assert resume.find_run("last", tmp_path) == made["20240102-000000-1-s1"]  # released when its process ends


def test_unwritable_output_folder_is_a_one_line_error(fortunes_csv, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for flag in ("--runs_dir", "--weights_dir"):
        argv = ["--dataset", str(fortunes_csv), "--model", "lstm", *TINY, "--num_train_epochs", "1", *dirs(tmp_path),
                flag, str(blocker / "out")]
        line = one_line_error(argv, capsys)
        assert f"cannot create output folder {blocker / 'out'}" in line
    assert not (tmp_path / "runs").exists() or runs.find_runs(tmp_path / "runs", complete_only=False) == []


def test_disk_full_while_writing_results_keeps_earlier_results(fortunes_csv, tmp_path, monkeypatch, capsys):
    argv = ["--dataset", str(fortunes_csv), "--model", "lstm", *TINY, "--num_train_epochs", "2", *dirs(tmp_path)]
    run_experiment(parse_args(argv))
    (first,) = runs.find_runs(tmp_path / "runs")
    weights = tmp_path / "weights" / "sample" / "lstm"
    saved = {p.name: p.read_bytes() for p in weights.iterdir()}
    first_files = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    replace = os.replace

    def disk_full_when(full):
        def fake(src, dst, *args, **kwargs):
            if full(Path(src), Path(dst)):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
            return replace(src, dst, *args, **kwargs)
        return fake

    # Full while writing the run directory's metrics, then while moving the new weights into place (after the old
    # ones were moved aside).
    for full in (lambda src, dst: dst.name == "metrics.json",
                 lambda src, dst: dst == weights and src.name.startswith(".lstm.tmp-")):
        with monkeypatch.context() as patch:
            patch.setattr(os, "replace", disk_full_when(full))
            line = one_line_error([*argv, "--seed", "7"], capsys)
        assert "No space left on device" in line and "--resume" in line
        assert {p.name: p.read_bytes() for p in weights.iterdir()} == saved
        assert {p: p.read_bytes() for p in first.rglob("*") if p.is_file()} == first_files
        assert runs.find_runs(tmp_path / "runs") == [first]
    failed = [p for p in runs.find_runs(tmp_path / "runs", complete_only=False) if p != first]
    assert [runs.read_status(p) for p in failed] == [runs.STATUS_FAILED] * 2
    assert sorted(p.name for p in weights.parent.iterdir()) == ["lstm"]  # no temp or old copy left behind

    # Space freed: the failed run finishes from its checkpoint (saved after the last step: nothing to retrain).
    resume.resume_run(str(failed[-1]))
    assert runs.read_status(failed[-1]) == runs.STATUS_COMPLETE
    assert json.loads((failed[-1] / "manifest.json").read_text())["resumed_from"] is not None


class RecordSteps(TrainerCallback):
    def __init__(self, sink: list) -> None:
        self.sink = sink

    def on_train_begin(self, args, state, control, **kwargs):
        self.sink.append(("begin", state.global_step))

    def on_step_end(self, args, state, control, **kwargs):
        self.sink.append(("step", state.global_step))


def test_a_resume_continues_at_the_checkpoint_and_never_repeats_a_finished_step(fortunes_csv, tmp_path, monkeypatch):
    """Not a restart with the same seed (which would give the same numbers too): the steps themselves are checked."""
    run_dir = interrupted(fortunes_csv, tmp_path, MID_EPOCH, 24, monkeypatch)
    seen: list = []
    build = training.build_trainer

    def recording(*args, **kwargs):
        trainer = build(*args, **kwargs)
        trainer.add_callback(RecordSteps(seen))
        return trainer

    monkeypatch.setattr(training, "build_trainer", recording)
    resume.resume_run(str(run_dir))
    steps = [s for kind, s in seen if kind == "step"]
    assert seen[0] == ("begin", 24)  # the trainer itself started from the checkpoint's step
    assert steps[0] == 25 and steps == list(range(25, steps[-1] + 1))  # no finished step ran again
    logged = [e["step"] for e in json.loads((run_dir / "log_history.json").read_text()) if "loss" in e]
    assert len(logged) == len(set(logged))  # each training step logged once
    assert json.loads((run_dir / "manifest.json").read_text())["resumed_from"] == "checkpoint-24"
