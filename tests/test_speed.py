"""The speed paths keep the results: length-sorted evaluation and inference, the default precision, the benchmark."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import Trainer
from transformers.trainer_utils import EvalLoopOutput

from hf_project import device, training
from hf_project.config import DataArguments, parse_args
from hf_project.data import prepare_data
from hf_project.errors import UserError
from hf_project.inference import Predictor
from hf_project.modalities import text
from hf_project.models import build_model
from hf_project.models.registry import resolve

ROOT = Path(__file__).resolve().parents[1]


def tiny_bert_trainer(fortunes_csv: Path, tiny_bert: Path, tmp_path: Path, cls: type = training.ClassificationTrainer):
    cfg = parse_args(["--dataset", str(fortunes_csv), "--model", str(tiny_bert), "--per_device_eval_batch_size", "8",
                      "--max_length", "64", "--cache_dir", str(tmp_path / "cache"), "--runs_dir", str(tmp_path)])
    data = prepare_data(cfg.data, cfg.data.split_seed)
    spec = resolve(str(tiny_bert))
    tokenizer = text.load_processor(spec, data, cfg)
    prepared = text.prepare(data, tokenizer, cfg)
    args = training.training_arguments(cfg, spec, tmp_path / "ckpt", text.TRAINER_OPTIONS)
    torch.manual_seed(0)
    model = build_model(spec, data.label_names, "text", text.lstm_inputs(tokenizer, cfg), cfg.model)
    padded = []

    def collate(features):
        batch = text.collator(tokenizer)(features)
        padded.append(batch["input_ids"].shape)
        return batch

    trainer = cls(model=model, args=args, train_dataset=prepared["train"], eval_dataset=prepared["validation"],
                  data_collator=collate)
    return trainer, prepared, padded


def test_evaluation_runs_longest_first_and_returns_rows_in_dataset_order(fortunes_csv, tiny_bert, tmp_path):
    ours, prepared, padded = tiny_bert_trainer(fortunes_csv, tiny_bert, tmp_path)
    test = prepared["test"]
    got = ours.predict(test)
    widths = [shape[1] for shape in padded]
    assert widths == sorted(widths, reverse=True) and len(widths) > 2  # batches from longest to shortest

    class Sequential(Trainer):  # the plain Trainer evaluates in dataset order
        def _get_eval_sampler(self, eval_dataset):
            return torch.utils.data.SequentialSampler(eval_dataset)

    plain, _, plain_padded = tiny_bert_trainer(fortunes_csv, tiny_bert, tmp_path, cls=Sequential)
    expected = plain.predict(test)
    assert sum(b * w for b, w in padded) < sum(b * w for b, w in plain_padded)  # less padding
    np.testing.assert_array_equal(got.label_ids, np.asarray(test["label"]))
    np.testing.assert_allclose(got.predictions, expected.predictions, atol=1e-5)
    assert got.metrics["test_loss"] == pytest.approx(expected.metrics["test_loss"], abs=1e-5)


def test_reordering_restores_nested_predictions():
    order = [2, 0, 1]
    output = EvalLoopOutput(predictions=(np.array([[2.0], [0.0], [1.0]]), np.array([20, 0, 10])),
                            label_ids=np.array([2, 0, 1]), metrics={}, num_samples=3)
    restore = np.argsort(order)
    restored = output._replace(predictions=training._take(output.predictions, restore),
                               label_ids=training._take(output.label_ids, restore))
    np.testing.assert_array_equal(restored.predictions[0].ravel(), [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(restored.predictions[1], [0, 10, 20])
    np.testing.assert_array_equal(restored.label_ids, [0, 1, 2])


def test_length_order_is_longest_first_and_stable():
    from datasets import Dataset

    ds = Dataset.from_dict({"input_ids": [[1], [1, 2, 3], [1, 2], [4, 5, 6]], "length": [1, 3, 2, 3]})
    assert training.length_order(ds) == [1, 3, 2, 0]
    assert training.length_order(Dataset.from_dict({"pixel_values": [[0.0]]})) is None


def test_longest_first_reads_a_datasets_column_as_it_reads_a_list():
    from datasets import Dataset

    lengths = np.random.default_rng(0).integers(1, 6, 300).tolist()  # many ties: their order must be kept
    column = Dataset.from_dict({"length": lengths})["length"]
    expected = np.argsort(-np.asarray(lengths), kind="stable").tolist()
    assert text.longest_first(column) == text.longest_first(lengths) == expected


def test_predictor_sorts_texts_by_length_but_answers_in_input_order(fortunes_csv, tiny_bert):
    data = prepare_data(DataArguments(dataset=str(fortunes_csv)), seed=2023)
    spec = resolve(str(tiny_bert))
    cfg = parse_args(["--max_length", "64"])
    tokenizer = text.load_processor(spec, data, cfg)
    torch.manual_seed(0)
    model = build_model(spec, data.label_names, "text", {}, cfg.model).eval()
    predictor = Predictor(model, tokenizer, "text", tiny_bert, max_length=64)
    texts = list(data.splits["test"]["text"][:23])
    one_by_one = np.concatenate([predictor.probabilities([t], batch_size=1) for t in texts])
    batched = predictor.probabilities(texts, batch_size=4)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert len({len(t) for t in texts}) > 5  # the texts really differ in length


@pytest.mark.parametrize(("cuda", "bf16", "expected"), [(False, False, "no"), (True, True, "bf16"),
                                                        (True, False, "fp16")])
def test_auto_precision_is_mixed_on_gpus_only(monkeypatch, cuda, bf16, expected):
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    monkeypatch.setattr(device, "use_cpu", lambda: not cuda)
    t = parse_args([]).train
    assert t.mixed_precision == "auto"
    assert training.resolve_mixed_precision(t) == expected
    assert training.resolve_mixed_precision(parse_args(["--mixed_precision", "no"]).train) == "no"  # asked: fp32
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")  # `accelerate launch --mixed_precision bf16`
    assert training.resolve_mixed_precision(t) == "bf16"
    with pytest.raises(UserError, match="contradicts"):
        training.resolve_mixed_precision(parse_args(["--mixed_precision", "no"]).train)


def test_benchmark_script_runs_on_tiny_settings(tmp_path):
    """Only that it runs and reports every figure: benchmarks are not tests, and no timing is asserted.

    bf16 is asked for explicitly, so the bf16 row is there whatever this CPU's flags (emulated without avx512_bf16)."""
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), "--tiny", "--threads", "1",
                           "--cases", "minilm,lstm,image,audio", "--precisions", "no,bf16", "--output", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert {(r["case"], r["precision"]) for r in report["rows"]} == {
        ("minilm", "no"), ("minilm", "bf16"), ("lstm", "no"), ("image", "no"), ("audio", "no")}
    for row in report["rows"]:
        for key in ("ours_train_samples_per_s", "ref_train_samples_per_s", "ours_time_to_first_step_s",
                    "ours_eval_samples_per_s", "ours_peak_rss_mb", "ours_val_macro_f1", "ref_val_macro_f1",
                    "ours_train_mfu", "ref_train_mfu", "ours_eval_mfu", "ours_matmul_peak_gflops"):
            assert row[key] is not None and row[key] >= 0, (row["case"], row["precision"], key)
        # Inference is measured once per model, in fp32 (the Predictor's precision); a bf16 row says so with "-".
        if row["precision"] == "no":
            assert row["inference_samples_per_s"] > 0, row["case"]
        else:
            assert row["inference_samples_per_s"] is None and row["inference_vs_eval"] is None
    bf16 = next(r for r in report["results"] if r["precision"] == "bf16")
    assert bf16["mixed_precision"] == "bf16"
    text_rows = [r for r in report["rows"] if r["case"] in ("minilm", "lstm") and r["precision"] == "no"]
    assert all(r["second_run_tokenised"] is False for r in text_rows)  # the second run read the cache
    first_runs = [r for r in report["results"] if r["case"] in ("minilm", "lstm") and r["impl"] == "ours"
                  and r["precision"] == "no" and r["run"] == 1]
    assert first_runs and all(r["tokenised"] is True for r in first_runs)
    for r in report["results"]:  # model FLOP utilisation: useful FLOPs per second over the measured matmul peak
        if r.get("train_mfu") is not None:
            assert r["train_mfu"] == pytest.approx(3 * r["forward_gflop_per_example"] * r["train_samples_per_s"]
                                                   / r["matmul_peak_gflops"], rel=0.02, abs=1e-4)
    assert "| minilm | fp32 |" in proc.stdout and "| minilm | bf16 |" in proc.stdout and report["machine"]["cores"] >= 1
    assert "None" not in proc.stdout


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_train", ROOT / "benchmarks" / "bench_train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("flags", ["fpu sse avx2 avx512f", "fpu sse avx2 avx512f avx512_bf16", "fpu amx_bf16 amx_tile"])
def test_benchmark_measures_bf16_by_default_only_where_the_cpu_has_it(monkeypatch, flags):
    """Both kinds of CPU our machines have, whatever this one is: the flags are faked."""
    bench = _bench_module()
    cpuinfo = f"processor\t: 0\nmodel name\t: Fake CPU\nflags\t\t: {flags}\n"
    native = "bf16" in flags
    assert bench.cpu_supports_bf16(cpuinfo) is native
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(bench, "cpu_supports_bf16", lambda cpuinfo=None: native)
    assert bench.job_precisions("auto") == (["no", "bf16"] if native else ["no"])
    assert bench.job_precisions("no") == ["no"]
    assert bench.job_precisions("no,bf16") == ["no", "bf16"]  # asked for: on any CPU
    row = {"case": "minilm", "precision": "bf16", "ours_train_samples_per_s": 2.0, "ref_train_samples_per_s": 1.0,
           "train_speedup": 2.0, "ours_time_to_first_step_s": 1.0, "ref_time_to_first_step_s": 1.0,
           "ours_eval_samples_per_s": 3.0, "ref_eval_samples_per_s": 1.0, "eval_speedup": 3.0,
           "inference_samples_per_s": None, "inference_vs_eval": None, "ours_peak_rss_mb": 1.0, "ref_peak_rss_mb": 1.0,
           "ours_val_macro_f1": 0.5, "ref_val_macro_f1": 0.5, "macro_f1_diff": 0.0}
    table = bench.markdown([row])
    assert "| - |" in table and "None" not in table


def test_split_points_cut_only_where_padding_outweighs_a_pass():
    assert text.split_points([20] * 8, overhead=128) == [0, 8]  # equal lengths: nothing to save
    assert text.split_points([128, 128, 10, 10, 10, 10, 10, 10], overhead=0) == [0, 2, 8]
    assert text.split_points([128, 128, 10, 10, 10, 10, 10, 10], overhead=1e9) == [0, 8]
    cuts = text.split_points(sorted([5, 90, 12, 40, 7, 128, 33, 64, 18, 9], reverse=True), overhead=64)
    assert cuts[0] == 0 and cuts[-1] == 10 and cuts == sorted(set(cuts))


def test_micro_batches_give_the_gradient_of_the_whole_batch(fortunes_csv, tiny_bert, tmp_path):
    trainer, prepared, _ = tiny_bert_trainer(fortunes_csv, tiny_bert, tmp_path)
    model = trainer.model.eval()  # no dropout: the two paths must agree to rounding
    rows = prepared["train"].remove_columns([c for c in prepared["train"].column_names
                                             if c not in ("input_ids", "attention_mask", "token_type_ids", "label")])
    features = [rows[i] for i in range(24)]
    assert len({len(f["input_ids"]) for f in features}) > 5
    tokenizer = trainer.processing_class or text.load_processor(resolve(str(tiny_bert)), None, parse_args([]))
    whole = text.collator(tokenizer)(features)
    split = text.MicroBatchCollator(text.collator(tokenizer), overhead=0)(features)
    assert len(split["micro_batches"]) > 1 and split["labels"].tolist() == whole["labels"].tolist()
    assert sum(b["input_ids"].numel() for b in split["micro_batches"]) < whole["input_ids"].numel()

    def loss_and_grads(inputs):
        model.zero_grad()
        loss, outputs = trainer.compute_loss(model, dict(inputs), return_outputs=True)
        loss.backward()
        return loss.item(), outputs.logits.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    loss_a, logits_a, grads_a = loss_and_grads(whole)
    loss_b, logits_b, grads_b = loss_and_grads(split)
    assert loss_b == pytest.approx(loss_a, abs=1e-5)
    torch.testing.assert_close(logits_b, logits_a, atol=1e-5, rtol=1e-4)  # in batch order
    assert len(grads_a) == len(grads_b)
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(("batching", "micro", "sampling"), [("split", True, "random"), ("pad", False, "random"),
                                                             ("group", False, "group_by_length")])
def test_batching_option_chooses_collator_and_sampler(fortunes_csv, tiny_bert, tmp_path, batching, micro, sampling):
    cfg = parse_args(["--dataset", str(fortunes_csv), "--model", str(tiny_bert), "--batching", batching,
                      "--cache_dir", str(tmp_path / "cache")])
    data = prepare_data(cfg.data, cfg.data.split_seed)
    spec = resolve(str(tiny_bert))
    tokenizer = text.load_processor(spec, data, cfg)
    args = training.training_arguments(cfg, spec, tmp_path / "ckpt", text.TRAINER_OPTIONS)
    model = build_model(spec, data.label_names, "text", {}, cfg.model)
    inputs = training.ModelInputs(text, tokenizer, args, text.prepare(data, tokenizer, cfg))
    trainer = training.build_trainer(cfg, data, inputs, model=model)
    assert isinstance(trainer.data_collator, text.MicroBatchCollator) == micro
    assert str(getattr(args.train_sampling_strategy, "value", args.train_sampling_strategy)) == sampling


def test_unknown_batching_is_refused():
    with pytest.raises(UserError, match="--batching must be split, group or pad"):
        parse_args(["--batching", "sorted"])


@pytest.mark.parametrize("flags", ["fpu sse avx2 avx512f", "fpu sse avx2 avx512f avx512_bf16", "fpu amx_bf16 amx_tile"])
def test_auto_precision_stays_fp32_on_every_cpu_and_hints_where_bf16_is_native(monkeypatch, caplog, flags):
    """Both kinds of CPU our machines have, whatever this one is (the flags are faked): `auto` trains in fp32 on
    both, so the same command gives the same numbers; the bf16 CPU gets a one-line hint with the measured speed-up."""
    from hf_project import device
    from hf_project.config import TrainArguments

    cpuinfo = f"processor\t: 0\nmodel name\t: Fake CPU\nflags\t\t: {flags}\n"
    native = "bf16" in flags
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    monkeypatch.setattr(device, "cpu_supports_bf16", lambda cpuinfo_=None, real=device.cpu_supports_bf16:
                        real(cpuinfo))
    assert device.cpu_supports_bf16() is native
    with caplog.at_level("INFO", logger="hf_project.device"):
        assert device.resolve_mixed_precision(TrainArguments(mixed_precision="auto")) == "no"
    hints = [r.getMessage() for r in caplog.records if "native bf16" in r.getMessage()]
    assert len(hints) == (1 if native else 0)
    if native:
        assert "--mixed_precision bf16 trains about 1.3x" in hints[0] and "same numbers on every CPU" in hints[0]
    caplog.clear()
    with caplog.at_level("INFO", logger="hf_project.device"):  # asked for: bf16 on any CPU, and no hint
        assert device.resolve_mixed_precision(TrainArguments(mixed_precision="bf16")) == "bf16"
    assert not [r for r in caplog.records if "native bf16" in r.getMessage()]


@pytest.mark.slow
def test_scaling_benchmark_runs_on_tiny_settings(tmp_path):
    """Only that it runs and writes its results and figure (make test-slow): no timing is asserted."""
    out = tmp_path / "scaling.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_scaling.py"), "--tiny", "--output",
                           str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report and out.with_suffix(".png").exists()
