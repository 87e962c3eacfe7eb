"""Several processes (accelerate launch, gloo on CPUs) and mixed precision."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT

from hf_project import cli, runs
from hf_project.config import parse_args
from hf_project.training import run_experiment

TINY = ["--model", "lstm", "--num_train_epochs", "2", "--max_length", "32", "--lstm_embedding_dim", "16",
        "--lstm_hidden_size", "16", "--lstm_learning_rate", "0.01", "--lstm_dropout", "0", "--logging_steps", "2",
        "--per_device_eval_batch_size", "4"]  # 15 validation and 36 test rows: uneven last batches on 2 processes


def accelerate_launch(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    accelerate = Path(sys.executable).parent / "accelerate"
    return subprocess.run([str(accelerate), "launch", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_cpu_processes_over_gloo(fortunes_csv, tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_PROJECT_CACHE": str(cache)}
    env.pop("ACCELERATE_USE_CPU", None)  # the plain command, nothing else set
    outputs = ["--runs_dir", str(tmp_path / "runs"), "--weights_dir", str(tmp_path / "weights")]
    proc = accelerate_launch(["--multi_gpu", "--num_processes", "2", "--main_process_port", str(free_port()),
                              str(REPO_ROOT / "scripts" / "finetune.py"), "--dataset", str(fortunes_csv),
                              *TINY, "--per_device_train_batch_size", "16", *outputs], tmp_path, env)
    assert proc.returncode == 0, proc.stderr[-4000:]

    (run_dir,) = runs.find_runs(tmp_path / "runs", complete_only=False)  # one run directory for both ranks
    assert runs.read_status(run_dir) == runs.STATUS_COMPLETE
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["device"]["num_processes"] == 2 and manifest["device"]["distributed_type"].endswith("MULTI_CPU")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    # 129 training rows, 16 per process and step: 5 steps per epoch on two processes (9 on one).
    assert metrics["global_steps"] == 10

    split = json.loads((run_dir / "split.json").read_text())
    with open(run_dir / "predictions_test.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["source_row"]) for r in rows] == split["test"]["indices"]  # every test row once, in order
    assert metrics["test"]["num_examples"] == 36
    assert sum(r["label"] == r["predicted"] for r in rows) / 36 == pytest.approx(metrics["test"]["accuracy"])
    history = json.loads((run_dir / "log_history.json").read_text())
    for e in (e for e in history if "eval_accuracy" in e):  # k/15: no padded duplicate in the 15 validation rows
        assert round(e["eval_accuracy"] * 15, 6) == round(e["eval_accuracy"] * 15)

    # Only the main process logs and writes; the tokenised data was built once.
    assert proc.stderr.count("run complete:") == 1 and "Traceback" not in proc.stderr
    assert sorted(p.name for p in (tmp_path / "weights" / "sample").iterdir()) == ["lstm"]
    assert len(list((cache / "tokenized").iterdir())) == 1

    # Two processes of 16 see the same 32 rows per step as one process of 32, in another order: close numbers.
    single = run_experiment(parse_args(["--dataset", str(fortunes_csv), *TINY, "--per_device_train_batch_size", "32",
                                        "--runs_dir", str(tmp_path / "single"), "--weights_dir", str(tmp_path / "w1")]))
    one = single["lstm"]
    assert one["global_steps"] == metrics["global_steps"]
    assert abs(one["validation"]["loss"] - metrics["validation"]["loss"]) < 0.1
    assert abs(one["test"]["loss"] - metrics["test"]["loss"]) < 0.1


def one_line_error(argv: list[str], capsys) -> str:
    assert cli.run(lambda: run_experiment(parse_args(argv))) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ")
    return err[-1]


@pytest.mark.parametrize("how", ["flag", "accelerate"])
def test_fp16_on_a_cpu_is_refused(fortunes_csv, tmp_path, capsys, monkeypatch, how):
    argv = ["--dataset", str(fortunes_csv), *TINY, "--runs_dir", str(tmp_path / "runs"),
            "--weights_dir", str(tmp_path / "w")]
    if how == "flag":
        argv += ["--mixed_precision", "fp16"]
    else:  # what `accelerate launch --mixed_precision fp16` (or its config file) sets
        monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    assert "fp16 needs a GPU" in one_line_error(argv, capsys)
    assert not (tmp_path / "runs").exists() or runs.find_runs(tmp_path / "runs", complete_only=False) == []


def test_contradicting_precisions_are_refused(fortunes_csv, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    argv = ["--dataset", str(fortunes_csv), *TINY, "--mixed_precision", "bf16", "--runs_dir", str(tmp_path / "r")]
    assert "contradicts accelerate's mixed precision fp16" in one_line_error(argv, capsys)


def test_bf16_trains_on_a_cpu_and_is_recorded(fortunes_csv, tmp_path, monkeypatch):
    def train(name: str, *extra: str) -> tuple[dict, Path]:
        argv = ["--dataset", str(fortunes_csv), *TINY, "--per_device_train_batch_size", "16", *extra,
                "--runs_dir", str(tmp_path / name), "--weights_dir", str(tmp_path / "w")]
        metrics = run_experiment(parse_args(argv))["lstm"]
        (run_dir,) = runs.find_runs(tmp_path / name)
        return metrics, run_dir

    full, full_dir = train("fp32")
    flag, flag_dir = train("flag", "--mixed_precision", "bf16")
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")  # what `accelerate launch --mixed_precision bf16` sets
    launched, launched_dir = train("accelerate")

    assert json.loads((full_dir / "manifest.json").read_text())["mixed_precision"] == "no"
    for run_dir in (flag_dir, launched_dir):
        assert json.loads((run_dir / "manifest.json").read_text())["mixed_precision"] == "bf16"
        # config.yaml records it, so a rerun from it or a resume keeps it whatever launched it.
        assert yaml.safe_load((run_dir / "config.yaml").read_text())["mixed_precision"] == "bf16"
        losses = [e["loss"] for e in json.loads((run_dir / "log_history.json").read_text()) if "loss" in e]
        assert all(0 < x < 5 for x in losses)
    assert flag == launched  # the same bf16 training, however it was asked for
    assert flag["validation"]["loss"] != full["validation"]["loss"]  # and autocast really ran
    assert abs(flag["validation"]["loss"] - full["validation"]["loss"]) < 0.1
