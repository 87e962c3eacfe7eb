#!/usr/bin/env bash
# GPU check on a machine without network (how BENCHMARKS.md's GPU rows were made):
#   - default precision on a GPU is mixed (bf16 where supported), recorded in config.yaml and manifest.json;
#   - the finetune path trains minilm and lstm end to end on the GPU;
#   - bench_train.py's minilm and lstm cases, ours against the reference, fp32 and bf16.
# Set-up (wheels, fortunes, MiniLM) in gpu_setup.sh. Results go to $OUT (default ./gpu-out).
set -euo pipefail
source "$(dirname "$0")/gpu_setup.sh"
nvidia-smi -L
python3 scripts/finetune.py --dataset fortunes --model minilm,lstm --max_length 64 --num_train_epochs 1 \
  --learning_rate 2e-4 --lstm_num_train_epochs 3 --runs_dir "$OUT/runs" --weights_dir /tmp/weights 2>&1 | tail -n 5
python3 - "$OUT/runs" <<'EOF'
import json, pathlib, sys, yaml
for manifest in sorted(pathlib.Path(sys.argv[1]).glob("*/*/*/manifest.json")):
    m, run = json.loads(manifest.read_text()), manifest.parent
    cfg, metrics = yaml.safe_load((run / "config.yaml").read_text()), json.loads((run / "metrics.json").read_text())
    print(run.parent.name, "manifest mixed_precision", m["mixed_precision"], "config", cfg["mixed_precision"],
          "device", m["device"], "samples/s", m["train_samples_per_second"],
          "test macro-F1", round(metrics["test"]["macro_f1"], 4), "status", (run / "status").read_text().strip())
EOF
python3 benchmarks/bench_train.py --cases minilm,lstm --epochs 2 --output "$OUT/bench-gpu.json" 2>&1 | grep -v Writing
