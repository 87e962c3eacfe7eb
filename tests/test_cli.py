"""scripts/finetune.py through its command line: the run-directory contract, and bad input."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO_ROOT, write_csv

from hf_project import cli
from hf_project.config import parse_args
from hf_project.runs import find_runs, read_status
from hf_project.training import run_experiment

CONTRACT = (
    "status", "config.yaml", "manifest.json", "split.json", "class_balance.csv", "log_history.json", "metrics.json",
    "predictions_test.csv", "classification_report.csv", "figures/loss.png", "figures/confusion_matrix.png",
    "model/config.json", "model/model.safetensors", "model/tokenizer.json",
)
TINY = ["--num_train_epochs", "2", "--per_device_train_batch_size", "16", "--max_length", "32",
        "--lstm_embedding_dim", "16", "--lstm_hidden_size", "16", "--logging_steps", "2"]


def finetune(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "finetune.py"), *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=600)


def test_end_to_end_run_directory_contract(fortunes_csv, tiny_bert, tmp_path):
    proc = finetune(["--dataset", str(fortunes_csv), "--model", f"{tiny_bert},lstm", *TINY], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dirs = find_runs(tmp_path / "runs")
    assert sorted(p.parent.name for p in run_dirs) == sorted([tiny_bert.name, "lstm"])
    for run_dir in run_dirs:
        for name in CONTRACT:
            assert (run_dir / name).is_file() and (run_dir / name).stat().st_size > 0, f"{run_dir}/{name}"
        assert read_status(run_dir) == "complete"
        assert not (run_dir / "checkpoints").exists()
        check_run_files(run_dir)
    # Both models saw the same split.
    hashes = {json.loads((d / "split.json").read_text())["hash"] for d in run_dirs}
    manifests = [json.loads((d / "manifest.json").read_text()) for d in run_dirs]
    assert len(hashes) == 1 and {m["split_hash"] for m in manifests} == hashes
    check_weights(tmp_path / "weights" / "sample", tiny_bert.name)


def check_run_files(run_dir: Path) -> None:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    for key in ("command", "seed", "versions", "git", "device", "dataset", "split_hash", "label_names",
                "parameters", "model_size_mb", "wall_time_s", "train_samples_per_second", "peak_memory_mb"):
        assert manifest[key] is not None, key
    assert manifest["label_names"] == ["food", "law", "startrek"]
    assert 0 < manifest["parameters"]["trainable"] <= manifest["parameters"]["total"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["selection_metric"] == "macro_f1" and metrics["validation"]["best_step"] > 0
    split = json.loads((run_dir / "split.json").read_text())
    with open(run_dir / "predictions_test.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["source_row"]) for r in rows] == split["test"]["indices"]  # every test row, once, in order
    accuracy = sum(r["label"] == r["predicted"] for r in rows) / len(rows)
    assert accuracy == pytest.approx(metrics["test"]["accuracy"])
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["seed"] == 2023 and "," not in config["model"]
    with open(run_dir / "class_balance.csv") as f:
        balance = list(csv.DictReader(f))
    assert sum(int(r["test"]) for r in balance) == len(rows)


def check_weights(weights: Path, bert_name: str) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hf_project.models import load_model

    model = AutoModelForSequenceClassification.from_pretrained(weights / bert_name).eval()
    tokenizer = AutoTokenizer.from_pretrained(weights / bert_name)
    lstm, lstm_tokenizer = load_model(weights / "lstm")
    for net, tok in ((model, tokenizer), (lstm, lstm_tokenizer)):
        batch = tok(["Beam me up, Scotty.", "The court finds the defendant guilty."], padding=True,
                    return_tensors="pt")
        with torch.no_grad():
            probs = net(**batch).logits.softmax(-1)
        assert probs.shape == (2, 3) and torch.allclose(probs.sum(-1), torch.ones(2))
    assert model.config.id2label[2] == "startrek"


def test_rerunning_saved_config_reproduces_the_run(fortunes_csv, tmp_path):
    base = ["--runs_dir", str(tmp_path / "runs"), "--weights_dir", str(tmp_path / "w")]
    run_experiment(parse_args(["--dataset", str(fortunes_csv), "--model", "lstm", *TINY, *base]))
    (first,) = find_runs(tmp_path / "runs")
    run_experiment(parse_args(["--config", str(first / "config.yaml")]))
    second = [d for d in find_runs(tmp_path / "runs") if d != first][0]
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (first, second))
    assert a == b
    def losses(run_dir: Path) -> list[dict]:
        history = json.loads((run_dir / "log_history.json").read_text())
        return [{k: v for k, v in e.items() if "runtime" not in k and "per_second" not in k} for e in history]

    assert losses(first) == losses(second)


def bad_run(argv: list[str], capsys) -> str:
    assert cli.run(lambda: run_experiment(parse_args(argv))) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ")
    return err[-1]


@pytest.fixture
def bad_input_dir(tmp_path):
    rows = [{"text": f"text {i}", "label": ["a", "b"][i % 2]} for i in range(20)]
    write_csv(tmp_path / "ok.csv", rows)
    write_csv(tmp_path / "one_class.csv", [{"text": f"t{i}", "label": "a"} for i in range(20)])
    write_csv(tmp_path / "test_only_label.csv", [{"text": "t", "label": "zebra"}])
    (tmp_path / "empty.csv").write_text("text,label\n")
    (tmp_path / "zero_bytes.csv").write_bytes(b"")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "truncated.parquet").write_bytes(b"PAR1 and then nothing a parquet reader can use")
    (tmp_path / "latin1.csv").write_bytes(b"text,label\n" + "".join(
        f"caf\u00e9 cr\u00e8me {i},{'ab'[i % 2]}\n" for i in range(20)).encode("latin-1"))
    (tmp_path / "binary.csv").write_bytes(random.Random(0).randbytes(4096))
    with open(tmp_path / "label_lists.jsonl", "w") as f:
        f.writelines(json.dumps({"text": f"t{i}", "label": [["a"], ["a", "b"], ["b"]][i % 3]}) + "\n"
                     for i in range(30))
    write_csv(tmp_path / "float_labels.csv", [{"text": f"t{i}", "label": round(1 + i * 0.037, 2)} for i in range(60)])
    (tmp_path / "typo.yaml").write_text("modle: lstm\n")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "{d}/ok.csv", "--text_column", "body"], "text column 'body' not found"),
        (["--dataset", "{d}/ok.csv", "--label_column", "y"], "label column 'y' not found"),
        (["--dataset", "{d}/empty.csv"], "empty.csv has a header but no rows"),
        (["--dataset", "{d}/zero_bytes.csv"], "zero_bytes.csv is empty: it has no rows"),
        (["--dataset", "{d}/latin1.csv"], "latin1.csv is not UTF-8 text (byte 0xe9 at offset 14, line 2)"),
        (["--dataset", "{d}/binary.csv"], "binary.csv looks like a binary file, not a csv"),
        (["--dataset", "{d}/label_lists.jsonl", "--task", "single_label"], "holds lists: pass --task multi_label"),
        (["--dataset", "{d}/float_labels.csv"], "label column 'label' looks continuous (60 distinct numeric values"),
        (["--dataset", "{d}/one_class.csv"], "single class"),
        (["--train_file", "{d}/ok.csv", "--test_file", "{d}/test_only_label.csv"], "zebra in the test split never"),
        (["--dataset", "{d}/missing.csv"], "does not exist"),
        (["--dataset", "{d}/broken.parquet"], "broken.parquet is not a parquet file"),
        (["--dataset", "{d}/truncated.parquet"], "could not parse"),
        (["--dataset", "{d}/ok.csv", "--model", "bertt"], "valid aliases are distilbert, bert, roberta"),
        (["--dataset", "{d}/ok.csv", "--model", "no-such-org/no-such-model"], "cannot load model"),
        (["--config", "{d}/typo.yaml"], "unknown key"),
        (["--dataset", "{d}/ok.csv", "--num_train_epoch", "1"], "not used by the HfArgumentParser"),
    ],
)
def test_bad_input_one_line_error_and_no_complete_run(bad_input_dir, capsys, args, message):
    runs = bad_input_dir / "runs"
    argv = [a.format(d=bad_input_dir) for a in args] + ["--model", "lstm"] * ("--model" not in args)
    line = bad_run([*argv, *TINY, "--runs_dir", str(runs), "--weights_dir", str(bad_input_dir / "w")], capsys)
    assert message in line
    assert not any(runs.rglob("metrics.json")) and all(p.read_text().strip() == "failed" for p in runs.rglob("status"))
    assert find_runs(runs) == []
    assert not (bad_input_dir / "w").exists() or not any((bad_input_dir / "w").rglob("*.safetensors"))


def test_bad_input_exit_status_through_the_script(tmp_path):
    proc = finetune(["--dataset", str(tmp_path / "nope.csv"), "--model", "lstm"], cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in proc.stderr
