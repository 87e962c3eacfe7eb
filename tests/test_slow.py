"""End-to-end on the real pretrained MiniLM checkpoint (make test-slow)."""

from __future__ import annotations

import json

import pytest

from hf_project.config import parse_args
from hf_project.runs import find_runs
from hf_project.training import run_experiment

pytestmark = pytest.mark.slow


def test_minilm_learns_real_categories(fortunes_csv, out_dirs):
    argv = ["--dataset", str(fortunes_csv), "--model", "minilm", "--num_train_epochs", "3", "--max_length", "64",
            "--per_device_train_batch_size", "16", "--learning_rate", "0.0001", "--logging_steps", "3", *out_dirs]
    metrics = run_experiment(parse_args(argv))["minilm"]
    (run_dir,) = find_runs(out_dirs[1])
    losses = [e["loss"] for e in json.loads((run_dir / "log_history.json").read_text()) if "loss" in e]
    assert losses[-1] < losses[0] - 0.3
    # Three categories, chance 1/3: a pretrained encoder separates Star Trek, law and food within 3 epochs.
    assert metrics["test"]["accuracy"] > 0.7
