"""Levers on MiniLM's CPU training step, each measured alone against the same baseline (issue 20, point 0).

    .venv/bin/python benchmarks/bench_levers.py [--steps 20] [--batches 8] [--levers baseline,fused]

One training step is forward, backward and AdamW on a batch of 32 real fortunes texts, tokenised with MiniLM's
tokenizer and padded to the batch's longest (no padding beyond it). The same batches, in the same order, go through
every lever. The script prints examples per second and model FLOP utilisation for each lever: the FLOPs of the
lever's own forward and backward pass, counted by torch's FlopCounterMode on unpadded texts (about 3x the forward
pass; less with frozen layers, which have no backward), over a 2048x2048 matmul peak measured in the same process.
Levers:
- baseline: torch.optim.AdamW with its CPU default (a for-loop over the parameters);
- foreach: AdamW(foreach=True), one kernel per group of tensors;
- fused: AdamW(fused=True), one fused kernel on CPU;
- compile: torch.compile of the model (dynamic shapes), compile time reported apart;
- 1 thread: torch.set_num_threads(1), to see what the second core gives;
- no dropout: every dropout probability 0 (hf_project's --dropout 0), fused AdamW;
- frozen embeddings / frozen embeddings + 2 layers: hf_project's --freeze_layers 0 (embeddings only) / 2, fused AdamW;
- no dropout + frozen embeddings + 2 layers: the demo's recipe.
Like every benchmark, it asserts nothing; BENCHMARKS.md records its numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_train import matmul_peak_gflops  # noqa: E402

from hf_project.data.builtin import load_builtin  # noqa: E402
from hf_project.device import cpu_supports_bf16  # noqa: E402
from hf_project.models.registry import resolve  # noqa: E402

NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
FROZEN = {
    "frozen embeddings": ("bert.embeddings.",),
    "frozen embeddings + 2 layers": ("bert.embeddings.", "bert.encoder.layer.0.", "bert.encoder.layer.1."),
}
BATCH = 32
MAX_LENGTH = 64
LEARNING_RATE = 2e-4


def batches(tokenizer: Any, texts: list[str], labels: list[int], count: int) -> list[dict[str, torch.Tensor]]:
    out = []
    for k in range(count):
        chunk = slice(k * BATCH, (k + 1) * BATCH)
        enc = tokenizer(texts[chunk], truncation=True, max_length=MAX_LENGTH, padding="longest", return_tensors="pt")
        enc["labels"] = torch.tensor(labels[chunk])
        out.append(dict(enc))
    return out


def training_flops(model: Any, data: list[dict[str, torch.Tensor]], count: int = 16) -> float:
    """Forward + backward FLOPs of one training example, counted by FlopCounterMode on `count` texts cut to their real
    tokens: the work the step must do. With frozen layers there is no backward through them, so this is less than 3x
    the forward pass; the parameters' gradients are zeroed after."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    batch = data[0]
    with counter:
        for i in range(count):
            real = int(batch["attention_mask"][i].sum())
            model(input_ids=batch["input_ids"][i:i + 1, :real], attention_mask=batch["attention_mask"][i:i + 1, :real],
                  labels=batch["labels"][i:i + 1]).loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / count


def measure(name: str, make_model: Any, data: list[dict[str, torch.Tensor]], steps: int, optimizer: dict[str, Any],
            compile_model: bool = False, threads: int | None = None, model_kwargs: dict[str, Any] | None = None,
            frozen: tuple[str, ...] = ()) -> dict[str, Any]:
    torch.manual_seed(2023)
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    model = make_model(**(model_kwargs or {}))
    model.train()
    for pname, param in model.named_parameters():
        if any(pname.startswith(prefix) for prefix in frozen):
            param.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    step_flops = training_flops(model, data)  # what this lever's step has to compute, frozen layers left out
    opt = torch.optim.AdamW(trainable, lr=LEARNING_RATE, weight_decay=0.01, **optimizer)
    step_model = torch.compile(model, dynamic=True) if compile_model else model
    started = time.perf_counter()
    for batch in data[:2]:  # warm-up (and the compilation, when compiling)
        step_model(**batch).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    warmup = time.perf_counter() - started
    examples, started = 0, time.perf_counter()
    losses = []
    for k in range(steps):
        batch = data[k % len(data)]
        loss = step_model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss))
        examples += batch["input_ids"].shape[0]
    seconds = time.perf_counter() - started
    torch.set_num_threads(previous)
    result = {"lever": name, "examples_per_s": examples / seconds, "warmup_s": warmup, "last_loss": losses[-1],
              "train_gflop_per_example": step_flops / 1e9}
    print(f"[levers] {name}: {result['examples_per_s']:.1f} examples/s (warm-up {warmup:.1f} s)", file=sys.stderr,
          flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--levers", default="baseline,foreach,fused,compile,1 thread")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" /
                                                f"{time.strftime('%Y-%m-%d')}-levers.json"))
    opts = parser.parse_args(argv)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = resolve("minilm").checkpoint
    tokenizer = AutoTokenizer.from_pretrained(path)
    train = load_builtin("fortunes")["train"].shuffle(seed=2023)
    names = train.features["label"].names
    texts, labels = list(train["text"][: BATCH * opts.batches]), list(train["label"][: BATCH * opts.batches])
    data = batches(tokenizer, texts, labels, opts.batches)

    def make_model(**kwargs: Any) -> Any:
        return AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(names), **kwargs)

    peak = matmul_peak_gflops("no")
    known = {"baseline": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}
    results = []
    for lever in [x.strip() for x in opts.levers.split(",") if x.strip()]:
        if lever == "compile":
            results.append(measure(lever, make_model, data, opts.steps, {}, compile_model=True))
        elif lever == "no dropout":
            results.append(measure(lever, make_model, data, opts.steps, {"fused": True}, model_kwargs=NO_DROPOUT))
        elif lever in FROZEN:
            results.append(measure(lever, make_model, data, opts.steps, {"fused": True}, frozen=FROZEN[lever]))
        elif lever == "no dropout + frozen embeddings + 2 layers":
            results.append(measure(lever, make_model, data, opts.steps, {"fused": True}, model_kwargs=NO_DROPOUT,
                                   frozen=FROZEN["frozen embeddings + 2 layers"]))
        elif lever == "1 thread":
            results.append(measure(lever, make_model, data, opts.steps, {}, threads=1))
        else:
            results.append(measure(lever, make_model, data, opts.steps, known[lever]))
    base = results[0]["examples_per_s"]
    for r in results:
        r["mfu"] = r["examples_per_s"] * r["train_gflop_per_example"] / peak
        r["vs_baseline"] = r["examples_per_s"] / base
    print("| lever | examples/s | vs baseline | GFLOP per example | MFU (fp32) | warm-up s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['lever']} | {r['examples_per_s']:.1f} | {r['vs_baseline']:.2f}x | "
              f"{r['train_gflop_per_example']:.2f} | {r['mfu']:.0%} | {r['warmup_s']:.1f} |")
    Path(opts.output).write_text(json.dumps({
        "command": " ".join(sys.argv), "matmul_peak_gflops": peak,
        "threads": torch.get_num_threads(), "cpu_bf16": cpu_supports_bf16(), "torch": torch.__version__,
        "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
