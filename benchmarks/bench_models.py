"""Training and inference speed of the offline pretrained models (and the LSTM beside them) on their builtin sets,
through hf_project's own path; each case in a child process of its own, fp32, on all CPU threads.

    .venv/bin/python benchmarks/bench_models.py             # a few minutes on 2 CPU cores
    .venv/bin/python benchmarks/bench_models.py --tiny      # seconds: checks that it runs

Measured per case: training samples/s over one epoch of `train` examples (no periodic evaluation), evaluation
samples/s on validation, and inference samples/s of hf_project.inference.Predictor on the validation inputs
(raw images or audio files, its own preprocessing included). Writes benchmarks/results/<date>-cpu-models.json
and prints a Markdown table (BENCHMARKS.md, "Offline pretrained models").
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_train  # noqa: E402  (its child process, timing and inference helpers)

# (case name, dataset, model, extra experiment values) -- the demos' settings (configs/demo_*.yaml)
CASES = (
    ("mobilenet_v2 112px", "fashion_mnist", "mobilenet_v2", {"image_size": 112}),
    ("mobilenet_v2 224px", "fashion_mnist", "mobilenet_v2", {}),
    ("lstm (image rows)", "fashion_mnist", "lstm", {}),
    ("whisper_tiny 1.2 s", "spoken_words", "whisper_tiny", {"max_duration_s": 1.2}),
    ("lstm (log-mel)", "spoken_words", "lstm", {"max_duration_s": 1.2}),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=640, help="training examples (one epoch)")
    parser.add_argument("--eval", type=int, default=320, help="validation examples (evaluation and inference)")
    parser.add_argument("--tiny", action="store_true", help="64 / 32 examples: only checks that it runs")
    today = time.strftime("%Y-%m-%d")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / f"{today}-cpu-models.json"),
                        help="where the raw numbers go")
    args = parser.parse_args()
    n_train, n_eval = (64, 32) if args.tiny else (args.train, args.eval)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "log.txt", "w") as log:
        for name, dataset, model, extra in CASES:
            job = {"case": name.replace(" ", "_"), "impl": "ours", "precision": "no", "dataset": dataset,
                   "model": model, "epochs": 1, "learning_rate": 5e-4, "lstm_learning_rate": 2e-3, "batch_size": 32,
                   "max_train_samples": n_train, "cache_dir": None, "inference": True,
                   "audio_seconds": extra.get("max_duration_s"), "extra": {**extra, "max_eval_samples": n_eval}}
            result = bench_train.run_job(job, Path(tmp), log)
            rows.append({"case": name, **result})
    Path(args.out).write_text(json.dumps({"cpu": platform.processor() or platform.machine(), "rows": rows},
                                         indent=1) + "\n")
    print("| model | data | train samples/s | eval samples/s | inference samples/s | peak RSS MB |")
    print("|---|---|---:|---:|---:|---:|")
    for (name, dataset, _, _), r in zip(CASES, rows, strict=True):
        print(f"| {name} | {dataset} | {r['train_samples_per_s']:.1f} | {r['eval_samples_per_s']:.1f} | "
              f"{r['inference_samples_per_s']:.1f} | {r['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
