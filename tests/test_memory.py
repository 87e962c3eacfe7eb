"""Each model's peak memory is its own: a window's peak, not the process's maximum so far."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from test_cli import TINY, finetune

from hf_project import memory
from hf_project.runs import find_runs

MB = 2**20


def hold(mb: int, seconds: float = 0.0) -> float:
    """Allocate and touch `mb` MB (so it is resident), keep it `seconds`, free it; returns the sum (unused)."""
    block = np.ones(mb * MB // 8)
    time.sleep(seconds)
    total = float(block[-1])
    del block
    return total


@pytest.mark.parametrize("exact", [True, False], ids=["high-water-mark", "sampled"])
def test_a_window_reports_its_own_peak_not_an_earlier_one(monkeypatch, exact):
    if not exact:  # where /proc/self/clear_refs is refused: a sampling thread
        monkeypatch.setattr(memory, "_reset_high_water", lambda: False)
    elif not memory._reset_high_water():
        pytest.skip("this kernel refuses to reset the high-water mark")
    with memory.PeakMemory() as big:
        hold(300, seconds=0.3)
        big_mb = big.mb
    with memory.PeakMemory() as small:
        hold(20, seconds=0.3)
        small_mb = small.mb
    assert big.kind == (memory.HWM_KIND if exact else memory.SAMPLED_KIND)
    assert big_mb - small_mb > 250  # the 300 MB block counts in the first window only
    assert small_mb > 20 and small.reading() == {"peak_memory_mb": round(small.mb, 1), "peak_memory_kind": small.kind}


def test_on_a_gpu_the_peak_is_torchs_max_allocated_since_the_window_began(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda *a: calls.append("reset"))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: 512 * MB)
    with memory.PeakMemory() as peak:
        assert calls == ["reset"]
    assert peak.reading() == {"peak_memory_mb": 512.0, "peak_memory_kind": memory.CUDA_KIND}


@pytest.fixture(scope="module")
def wide_bert(tmp_path_factory, tiny_bert):
    """A one-layer BERT with hidden size 512: ~16M parameters, a few hundred MB to train, against a tiny LSTM."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    path = tmp_path_factory.mktemp("wide-bert")
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=512, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=512, max_position_embeddings=64)
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_two_models_in_one_command_record_their_own_peaks(fortunes_csv, wide_bert, tmp_path):
    """The big model first, so the LSTM after it would inherit its peak if the figure were the process's."""
    def peaks(models: str, name: str) -> dict[str, float]:
        runs = tmp_path / name
        proc = finetune(["--dataset", str(fortunes_csv), "--model", models, *TINY, "--num_train_epochs", "1",
                         "--runs_dir", str(runs), "--weights_dir", str(tmp_path / f"w-{name}")], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        manifests = [json.loads((d / "manifest.json").read_text()) for d in find_runs(runs)]
        assert all(m["peak_memory_kind"] in (memory.HWM_KIND, memory.SAMPLED_KIND) for m in manifests)
        return {m["model"]["name"]: m["peak_memory_mb"] for m in manifests}

    together = peaks(f"{wide_bert},lstm", "together")
    alone = {**peaks(str(wide_bert), "bert-alone"), **peaks("lstm", "lstm-alone")}
    bert = wide_bert.name
    assert together[bert] - together["lstm"] > 100, together  # the LSTM does not report the BERT's peak
    for model, mb in together.items():
        assert mb == pytest.approx(alone[model], rel=0.10), (model, together, alone)


def test_isolated_runs_give_the_numbers_of_runs_in_one_process(fortunes_csv, tiny_bert, tmp_path, caplog):
    from hf_project.config import parse_args
    from hf_project.training import run_experiment

    def metrics(*extra: str) -> dict:
        root = tmp_path / "-".join(extra or ("isolated",))
        return run_experiment(parse_args(["--dataset", str(fortunes_csv), "--model", f"{tiny_bert},lstm", *TINY,
                                          "--runs_dir", str(root / "runs"), "--weights_dir", str(root / "w"), *extra]))

    with caplog.at_level("INFO", logger="hf_project.training"):
        isolated = metrics()
    assert sum("in a process of its own" in r.getMessage() for r in caplog.records) == 2
    caplog.clear()
    with caplog.at_level("INFO", logger="hf_project.training"):
        together = metrics("--no_isolate_runs")
    assert not any("in a process of its own" in r.getMessage() for r in caplog.records)
    assert isolated == together and len(isolated) == 2
