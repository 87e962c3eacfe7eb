"""Our finetune path against the plain Hugging Face recipe: speed, memory and accuracy on the same data.

    .venv/bin/python benchmarks/bench_train.py                     # every case, full size (see BENCHMARKS.md)
    .venv/bin/python benchmarks/bench_train.py --cases minilm --max_train_samples 2000
    .venv/bin/python benchmarks/bench_train.py --tiny              # seconds: only checks that everything runs

Each measurement runs in its own child process (so peak RSS is its own) on the same split, seed and
hyperparameters; only the data pipeline differs:

  reference  written the way transformers' text-classification example (run_glue.py) does it by default:
             tokenised with `padding="max_length"` to 128 tokens inside `datasets.map` (no cache reused),
             `default_data_collator`, random batches; images and audio likewise after the image- and
             audio-classification examples (torchvision-style transforms / feature extractor on the fly).
  ours       hf_project's finetune code path: hf_project.data -> modality stage (cached tokenisation,
             length-grouped batches, padding per batch) -> build_model -> training.build_trainer.

Measured per model: time to first optimiser step (tokenisation and model loading included), training
samples/s, evaluation samples/s on validation, peak RSS, final validation accuracy and macro-F1; for ours
also a second run on the same data (the cached tokenisation must make it skip tokenising) and inference
through hf_project.inference on the validation inputs (fp32: a bf16 row measures training and evaluation only).
Mixed precision bf16 runs for minilm where the device supports it (a GPU, or a CPU with avx512_bf16 / amx_bf16);
`--precisions no,bf16` asks for it on any device, `--precisions no` never.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hf_project.config import DEFAULT_SEED
from hf_project.device import cpu_supports_bf16

ROOT = Path(__file__).resolve().parents[1]

TEXT_CASES = ("minilm", "lstm")
CASES = (*TEXT_CASES, "image", "audio")
REFERENCE_MAX_LENGTH = 128  # run_glue.py's default --max_seq_length

# Full size: the real fortunes data; synthetic images and clips of realistic size (photo-sized JPEGs, 4 s at 16 kHz).
FULL = {"image_per_class": 160, "image_size": (320, 240), "audio_per_class": 60, "audio_seconds": 4.0,
        "image_model": "resnet18", "audio_model": "wav2vec2-small"}
TINY = {"image_per_class": 8, "image_size": (48, 40), "audio_per_class": 6, "audio_seconds": 0.5,
        "image_model": "tiny", "audio_model": "tiny", "text_per_class": 30}


# ----------------------------------------------------------------------------------------------------------- child


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def first_step_timer(t0: float) -> Any:
    from transformers import TrainerCallback

    class FirstStep(TrainerCallback):
        seconds: float | None = None

        def on_step_end(self, args, state, control, **kwargs):
            if self.seconds is None:
                self.seconds = time.perf_counter() - t0

    return FirstStep()


def build_data(job: dict[str, Any]) -> Any:
    """The split every implementation shares (hf_project's, so both see identical rows)."""
    from hf_project.config import config_from_dict
    from hf_project.data import prepare_data

    cfg = config_from_dict(experiment_values(job))
    data = prepare_data(cfg.data, cfg.data.split_seed)
    if job.get("max_eval_samples"):
        n = min(job["max_eval_samples"], len(data.splits["validation"]))
        data.splits["validation"] = data.splits["validation"].select(range(n))
        data.split = {**data.split, "hash": f"{data.split['hash']}-val{n}"}
    return cfg, data


def experiment_values(job: dict[str, Any]) -> dict[str, Any]:
    values = {
        "dataset": job["dataset"], "model": job["model"], "seed": job.get("seed", DEFAULT_SEED),
        "num_train_epochs": job["epochs"],
        "lstm_num_train_epochs": job["epochs"], "learning_rate": job["learning_rate"],
        "lstm_learning_rate": job["lstm_learning_rate"], "per_device_train_batch_size": job["batch_size"],
        "per_device_eval_batch_size": 64, "max_length": REFERENCE_MAX_LENGTH, "early_stopping_patience": None,
        "max_train_samples": job.get("max_train_samples"), "cache_dir": job["cache_dir"],
        "runs_dir": str(Path(job["workdir"]) / "runs"), "weights_dir": str(Path(job["workdir"]) / "weights"),
        "mixed_precision": job["precision"], "logging_steps": 50, "max_steps": job.get("max_steps", -1),
        "batching": job.get("batching", "split"),
    }
    if job["case"] == "image":
        values.update(random_resized_crop=True, crop_scale_min=0.08)  # the image example's RandomResizedCrop
    if job["case"] == "audio":
        values["max_duration_s"] = job["audio_seconds"]
    values.update(job.get("extra", {}))  # benchmarks/bench_models.py: the case's own settings
    return values


def no_periodic_eval(args: Any) -> Any:
    """Both sides train without evaluating or checkpointing, then evaluate once: the loops compare alone."""
    return dataclasses.replace(args, eval_strategy="no", save_strategy="no", load_best_model_at_end=False,
                               logging_first_step=False)


def run_ours(job: dict[str, Any], out: dict[str, Any]) -> None:
    from transformers import set_seed

    from hf_project.models.registry import resolve
    from hf_project.training import ModelInputs, build_trainer, new_model, prepare_inputs

    cfg, data = build_data(job)
    t0 = time.perf_counter()
    spec = resolve(cfg.model.model)
    tokenised: list[str] = []
    text_logger = logging.getLogger("hf_project.modalities.text")
    text_logger.setLevel(logging.INFO)
    text_logger.addHandler(_RecordMessages(tokenised, "tokenising"))
    inputs = prepare_inputs(cfg, spec, data, Path(job["workdir"]) / "ckpt")
    inputs = ModelInputs(inputs.stage, inputs.processor, no_periodic_eval(inputs.args), inputs.prepared)
    out["prepare_s"] = round(time.perf_counter() - t0, 3)
    out["tokenised"] = bool(tokenised) if data.modality == "text" else None
    set_seed(cfg.train.seed)
    model = new_model(cfg, spec, data, inputs)
    trainer = build_trainer(cfg, data, inputs, model=model)
    measure(trainer, t0, out, job.get("peak_seconds", 2.0))
    if job.get("inference") and job.get("max_steps", -1) < 0:
        inference_speed(trainer, data, Path(job["workdir"]) / "model", out, job.get("audio_seconds"))


class _RecordMessages(logging.Handler):
    def __init__(self, sink: list, needle: str) -> None:
        super().__init__(logging.INFO)
        self.sink, self.needle = sink, needle

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.sink.append(record.getMessage())


def measure(trainer: Any, t0: float, out: dict[str, Any], peak_seconds: float = 2.0) -> None:
    timer = first_step_timer(t0)
    trainer.add_callback(timer)
    train = trainer.train()
    out["time_to_first_step_s"] = round(timer.seconds, 3) if timer.seconds is not None else None
    out["train_runtime_s"] = train.metrics["train_runtime"]
    out["train_samples_per_s"] = train.metrics["train_samples_per_second"]
    out["train_loss"] = train.metrics.get("train_loss")
    out["num_train"] = len(trainer.train_dataset)
    if trainer.args.max_steps > 0:
        return
    metrics = trainer.evaluate()
    out["eval_samples_per_s"] = metrics["eval_samples_per_second"]
    out["val_accuracy"] = metrics["eval_accuracy"]
    out["val_macro_f1"] = metrics["eval_macro_f1"]
    out["mixed_precision"] = trainer.accelerator.mixed_precision
    utilisation(trainer, out, peak_seconds)


MFU_EXAMPLES = 64  # training examples whose forward FLOPs are counted, one at a time (no padding: useful work only)
PEAK_SIZE = 2048  # the square matmul whose speed is the peak


def matmul_peak_gflops(precision: str, seconds: float = 2.0) -> float:
    """GFLOP/s of a PEAK_SIZE x PEAK_SIZE matmul in the training precision (bf16 or fp32), on this device, now."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16 if precision == "fp16" else torch.float32
    a, b = (torch.randn(PEAK_SIZE, PEAK_SIZE, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        n += 1
        if device == "cuda" and n % 50:
            continue
        sync()
    sync()
    return 2 * PEAK_SIZE ** 3 * n / (time.perf_counter() - started) / 1e9


def useful_flops_per_example(trainer: Any) -> float:
    """Forward FLOPs of one training example (torch's FLOP counter, matmuls and convolutions), averaged over the first
    MFU_EXAMPLES examples fed one at a time: no padding, so only useful work counts."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = trainer.model
    dataset = trainer.train_dataset
    examples = [unpadded(dataset[i]) for i in range(min(MFU_EXAMPLES, len(dataset)))]
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        for example in examples:
            batch = trainer.data_collator([example])
            batch = {k: v.to(model.device) for k, v in batch.items() if hasattr(v, "to") and k != "labels"}
            model(**batch)
    model.train(was_training)
    return counter.get_total_flops() / max(len(examples), 1)


def unpadded(example: dict[str, Any]) -> dict[str, Any]:
    """A tokenised example cut to its real tokens (the reference pads every example to 128 inside datasets.map)."""
    mask = example.get("attention_mask")
    if mask is None:
        return example
    n = int(sum(int(v) for v in mask))
    sequences = ("input_ids", "attention_mask", "token_type_ids")
    return {k: (v[:n] if k in sequences else v) for k, v in example.items()}


def utilisation(trainer: Any, out: dict[str, Any], peak_seconds: float = 2.0) -> None:
    """Model FLOP utilisation: useful FLOPs per second (training = 3x the forward: forward and backward) over the
    matmul peak measured in the same process and precision."""
    forward = useful_flops_per_example(trainer)
    peak = matmul_peak_gflops(out["mixed_precision"], peak_seconds)
    out["forward_gflop_per_example"] = float(f"{forward / 1e9:.6g}")
    out["matmul_peak_gflops"] = float(f"{peak:.6g}")
    out["train_mfu"] = float(f"{3 * forward * out['train_samples_per_s'] / (peak * 1e9):.4g}")
    out["eval_mfu"] = float(f"{forward * out['eval_samples_per_s'] / (peak * 1e9):.4g}")


def inference_speed(trainer: Any, data: Any, model_dir: Path, out: dict[str, Any], seconds: float | None) -> None:
    """hf_project.inference on the validation inputs (raw text, image or audio files), with its own preprocessing."""
    import numpy as np
    from datasets import Audio, Image

    from hf_project.inference import Predictor

    trainer.save_model(str(model_dir))
    ds = data.splits["validation"]
    if data.modality == "text":
        inputs = list(ds["text"])
    else:
        column = data.modality
        ds = ds.cast_column(column, Image(decode=False) if column == "image" else Audio(decode=False))
        inputs = [x["path"] or x for x in ds[column]]  # files, or the stored bytes of images held in the dataset
    predictor = Predictor.load(model_dir)
    predictor.max_duration_s = seconds or predictor.max_duration_s  # a run directory's config.yaml would give it
    started = time.perf_counter()
    probs = predictor.probabilities(inputs, batch_size=trainer.args.per_device_eval_batch_size, progress=False)
    out["inference_samples_per_s"] = round(len(inputs) / (time.perf_counter() - started), 3)
    out["inference_accuracy"] = float(np.mean(probs.argmax(-1) == np.asarray(ds["label"])))


def run_reference(job: dict[str, Any], out: dict[str, Any]) -> None:
    from transformers import Trainer, TrainingArguments, default_data_collator, set_seed

    from hf_project.metrics import compute_metrics
    from hf_project.training import use_cpu

    cfg, data = build_data(job)
    t0 = time.perf_counter()
    set_seed(cfg.train.seed)
    train_ds, eval_ds, model, collate = REFERENCE_PIPELINES[job["case"]](job, cfg, data)
    out["prepare_s"] = round(time.perf_counter() - t0, 3)
    t = cfg.train
    args = TrainingArguments(
        output_dir=str(Path(job["workdir"]) / "ckpt"), seed=t.seed, num_train_epochs=job["epochs"],
        max_steps=job.get("max_steps", -1),
        learning_rate=t.lstm_learning_rate if job["case"] == "lstm" else t.learning_rate,
        per_device_train_batch_size=t.per_device_train_batch_size, per_device_eval_batch_size=64,
        weight_decay=t.weight_decay, warmup_steps=t.warmup_ratio,  # the same optimiser settings as ours
        eval_strategy="no", save_strategy="no", logging_steps=50, report_to="none", use_cpu=use_cpu(),
        bf16=job["precision"] == "bf16", fp16=job["precision"] == "fp16",
        remove_unused_columns=job["case"] not in ("image", "audio"),
    )
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                      data_collator=collate or default_data_collator, compute_metrics=compute_metrics)
    measure(trainer, t0, out, job.get("peak_seconds", 2.0))


def reference_text(job: dict[str, Any], cfg: Any, data: Any) -> tuple:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hf_project.models import build_model
    from hf_project.models.lstm import train_lstm_tokenizer
    from hf_project.models.registry import resolve

    spec = resolve(cfg.model.model)
    if spec.from_scratch:  # no HF recipe exists for an LSTM: the same recipe around our LSTM and its tokenizer
        tokenizer = train_lstm_tokenizer(list(data.splits["train"]["text"]), vocab_size=cfg.model.lstm_vocab_size)
        lstm = {"input_type": "tokens", "vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}
    else:
        tokenizer = AutoTokenizer.from_pretrained(spec.checkpoint)

    def preprocess(batch: dict) -> dict:
        return tokenizer(batch["text"], padding="max_length", max_length=REFERENCE_MAX_LENGTH, truncation=True)

    splits = {name: data.splits[name].map(preprocess, batched=True, load_from_cache_file=False,
                                           remove_columns=["text"], desc="tokenising")
              for name in ("train", "validation")}
    if spec.from_scratch:
        model = build_model(spec, data.label_names, "text", lstm, cfg.model)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            spec.checkpoint, num_labels=data.num_labels, id2label=dict(enumerate(data.label_names)),
            label2id={n: i for i, n in enumerate(data.label_names)}, ignore_mismatched_sizes=True)
    return splits["train"], splits["validation"], model, None


def reference_image(job: dict[str, Any], cfg: Any, data: Any) -> tuple:
    """run_image_classification.py: RandomResizedCrop + flip + ToTensor + Normalize per access (set_transform);
    validation Resize + CenterCrop. torchvision is not a dependency, so the same transforms are written with PIL."""
    import math
    import random

    import numpy as np
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    processor = AutoImageProcessor.from_pretrained(cfg.model.model)
    size = processor.size.get("shortest_edge") or processor.size["height"]
    mean = np.asarray(processor.image_mean, dtype=np.float32)[:, None, None]
    std = np.asarray(processor.image_std, dtype=np.float32)[:, None, None]

    def to_tensor(image: Image.Image) -> torch.Tensor:
        return torch.from_numpy((np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0 - mean) / std)

    def random_resized_crop(image: Image.Image) -> Image.Image:
        w, h = image.size
        for _ in range(10):  # torchvision's sampling: scale (0.08, 1), log-uniform ratio (3/4, 4/3)
            area = w * h * random.uniform(0.08, 1.0)
            ratio = math.exp(random.uniform(math.log(3 / 4), math.log(4 / 3)))
            cw, ch = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
            if 0 < cw <= w and 0 < ch <= h:
                x, y = random.randint(0, w - cw), random.randint(0, h - ch)
                return image.resize((size, size), Image.Resampling.BILINEAR, box=(x, y, x + cw, y + ch))
        return image.resize((size, size), Image.Resampling.BILINEAR)

    def train_transform(batch: dict) -> dict:
        images = [random_resized_crop(im.convert("RGB")) for im in batch["image"]]
        images = [im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if random.random() < 0.5 else im for im in images]
        return {"pixel_values": [to_tensor(im) for im in images], "labels": batch["label"]}

    def eval_transform(batch: dict) -> dict:
        out = []
        for im in batch["image"]:
            im = im.convert("RGB")
            w, h = im.size
            scale = size / min(w, h)
            im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BILINEAR)
            left, top = (im.size[0] - size) // 2, (im.size[1] - size) // 2
            out.append(to_tensor(im.crop((left, top, left + size, top + size))))
        return {"pixel_values": out, "labels": batch["label"]}

    def collate(examples: list[dict]) -> dict:
        return {"pixel_values": torch.stack([e["pixel_values"] for e in examples]),
                "labels": torch.tensor([e["labels"] for e in examples])}

    model = AutoModelForImageClassification.from_pretrained(
        cfg.model.model, num_labels=data.num_labels, ignore_mismatched_sizes=True)
    return (data.splits["train"].with_transform(train_transform),
            data.splits["validation"].with_transform(eval_transform), model, collate)


def reference_audio(job: dict[str, Any], cfg: Any, data: Any) -> tuple:
    """run_audio_classification.py: decode on access, random subsample to max_length_seconds on train, the feature
    extractor on the fly (set_transform). datasets' own decoder needs torchcodec; soundfile decodes instead."""
    import random

    import numpy as np
    import soundfile as sf
    import torch
    from datasets import Audio
    from scipy.signal import resample_poly
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    extractor = AutoFeatureExtractor.from_pretrained(cfg.model.model)
    rate, seconds = extractor.sampling_rate, cfg.data.max_duration_s

    def decode(audio: dict) -> np.ndarray:
        wave, sr = sf.read(audio["path"], dtype="float32", always_2d=True)
        wave = wave.mean(axis=1)
        return wave if sr == rate else resample_poly(wave, rate, sr).astype(np.float32)

    def subsample(wave: np.ndarray, train: bool) -> np.ndarray:
        n = int(round(seconds * rate))
        if len(wave) <= n:
            return wave
        start = random.randint(0, len(wave) - n) if train else 0
        return wave[start : start + n]

    def transform(train: bool):
        def apply(batch: dict) -> dict:
            waves = [subsample(decode(a), train) for a in batch["audio"]]
            inputs = extractor(waves, sampling_rate=rate, return_tensors="np", padding=True)
            return {"input_values": list(inputs["input_values"]), "labels": batch["label"]}

        return apply

    def collate(examples: list[dict]) -> dict:
        return {"input_values": torch.as_tensor(np.stack([e["input_values"] for e in examples])),
                "labels": torch.tensor([e["labels"] for e in examples])}

    model = AutoModelForAudioClassification.from_pretrained(
        cfg.model.model, num_labels=data.num_labels, ignore_mismatched_sizes=True)
    splits = [data.splits[s].cast_column("audio", Audio(decode=False)) for s in ("train", "validation")]
    return splits[0].with_transform(transform(True)), splits[1].with_transform(transform(False)), model, collate


REFERENCE_PIPELINES = {"minilm": reference_text, "lstm": reference_text, "image": reference_image,
                       "audio": reference_audio}


def child(job: dict[str, Any]) -> None:
    import torch

    torch.set_num_threads(job.get("threads") or torch.get_num_threads())
    out: dict[str, Any] = {"case": job["case"], "impl": job["impl"], "precision": job["precision"],
                           "run": job.get("run", 1), "batching": job.get("batching", "split")}
    (run_ours if job["impl"] == "ours" else run_reference)(job, out)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print("RESULT " + json.dumps(out), flush=True)


# ---------------------------------------------------------------------------------------------------------- parent


def make_image_folder(root: Path, per_class: int, size: tuple[int, int]) -> Path:
    """Three classes of photo-sized JPEGs: noisy colour fields with a class-specific shape."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    for c, kind in enumerate(("disc", "bar", "cross")):
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.normal(128, 40, (size[1], size[0], 3)).clip(0, 255).astype("uint8")
            image = Image.fromarray(pixels)
            draw = ImageDraw.Draw(image)
            w, h = size
            cx, cy, r = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h, rng.uniform(0.15, 0.3) * min(w, h)
            colour = tuple(int(v) for v in rng.integers(0, 255, 3))
            if c == 0:
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
            elif c == 1:
                draw.rectangle((cx - 2 * r, cy - r / 3, cx + 2 * r, cy + r / 3), fill=colour)
            else:
                draw.rectangle((cx - r, cy - r / 4, cx + r, cy + r / 4), fill=colour)
                draw.rectangle((cx - r / 4, cy - r, cx + r / 4, cy + r), fill=colour)
            image.save(folder / f"{kind}_{i:04d}.jpg", quality=90)
    return root


def make_audio_folder(root: Path, per_class: int, seconds: float) -> Path:
    """Four classes of 16 kHz WAV clips: noisy tones around a class frequency, lengths around `seconds`."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    rate = 16000
    for name, freq in (("low", 220.0), ("mid", 440.0), ("high", 880.0), ("top", 1760.0)):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            t = np.arange(int(rate * seconds * rng.uniform(0.8, 1.2))) / rate
            wave = 0.4 * np.sin(2 * np.pi * freq * rng.uniform(0.97, 1.03) * t) + 0.05 * rng.standard_normal(len(t))
            sf.write(folder / f"{name}_{i:04d}.wav", wave.astype(np.float32), rate, subtype="PCM_16")
    return root


def make_fortunes_csv(path: Path, per_class: int) -> Path:
    import csv

    from hf_project.data.builtin import load_fortunes

    rows = load_fortunes()["train"]
    names = rows.features["label"].names
    wanted = {names.index(n): n for n in ("computers", "science", "food")}
    picked: dict[int, list[str]] = {k: [] for k in wanted}
    for text, label in zip(rows["text"], rows["label"], strict=True):
        if label in picked and len(picked[label]) < per_class:
            picked[label].append(text)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, ["text", "label"])
        writer.writeheader()
        writer.writerows({"text": t, "label": wanted[k]} for k, texts in picked.items() for t in texts)
    return path


def save_text_model(path: Path) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from hf_project.models.registry import resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve("minilm").checkpoint)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=REFERENCE_MAX_LENGTH)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def save_image_model(path: Path, kind: str) -> Path:
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetForImageClassification

    if kind == "resnet18":  # ResNet-18's shape (microsoft/resnet-18), random init: the speed is what counts here
        config = ResNetConfig(embedding_size=64, hidden_sizes=[64, 128, 256, 512], depths=[2, 2, 2, 2],
                              layer_type="basic", num_labels=3)
        size = 224
    else:
        config = ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic",
                              num_labels=3)
        size = 32
    ResNetForImageClassification(config).save_pretrained(path)
    ConvNextImageProcessor(size={"shortest_edge": size}, crop_pct=0.875, image_mean=[0.485, 0.456, 0.406],
                           image_std=[0.229, 0.224, 0.225]).save_pretrained(path)
    return path


def save_audio_model(path: Path, kind: str) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    if kind == "wav2vec2-small":  # wav2vec2-base's feature encoder, a 4-layer 256-wide transformer
        config = Wav2Vec2Config(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
                                num_labels=4, mask_time_prob=0.0)
    else:
        config = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                conv_dim=(32, 32), conv_stride=(5, 16), conv_kernel=(10, 16),
                                num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, num_labels=4,
                                mask_time_prob=0.0)
    Wav2Vec2ForSequenceClassification(config).save_pretrained(path)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=False).save_pretrained(path)
    return path


def jobs_for(opts: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    size = TINY if opts.tiny else FULL
    common = {"epochs": opts.epochs, "learning_rate": opts.learning_rate, "lstm_learning_rate": opts.lstm_learning_rate,
              "batch_size": opts.batch_size, "cache_dir": str(workdir / "cache"), "threads": opts.threads,
              "seed": opts.seed, "peak_seconds": 0.2 if opts.tiny else 2.0,
              "max_train_samples": opts.max_train_samples or size.get("max_train_samples"),
              "max_eval_samples": opts.max_eval_samples or size.get("max_eval_samples")}
    precisions = job_precisions(opts.precisions)
    jobs: list[dict[str, Any]] = []
    for case in opts.cases:
        base = {**common, "case": case}
        if case in TEXT_CASES and opts.tiny:  # 3 fortune categories and a 2-layer BERT with MiniLM's vocabulary
            base.update(dataset=str(make_fortunes_csv(workdir / "fortunes.csv", size["text_per_class"])),
                        model=str(save_text_model(workdir / "text-model")) if case == "minilm" else case)
        elif case in TEXT_CASES:
            base.update(dataset="fortunes", model=case)
        elif case == "image":
            base.update(dataset=str(make_image_folder(workdir / "images", size["image_per_class"], size["image_size"])),
                        model=str(save_image_model(workdir / "image-model", size["image_model"])))
        else:
            base.update(dataset=str(make_audio_folder(workdir / "audio", size["audio_per_class"],
                                                      size["audio_seconds"])),
                        model=str(save_audio_model(workdir / "audio-model", size["audio_model"])),
                        audio_seconds=size["audio_seconds"])
        jobs.append({**base, "impl": "reference", "precision": "no"})
        for precision in precisions if case == "minilm" else ["no"]:
            jobs.append({**base, "impl": "ours", "precision": precision, "inference": precision == "no"})
        if case in TEXT_CASES:  # other --batching choices, for comparison
            jobs += [{**base, "impl": "ours", "precision": "no", "batching": b} for b in opts.other_batching]
        if case in TEXT_CASES and not opts.no_second_run:  # the same data again: the cache must skip tokenising
            jobs.append({**base, "impl": "ours", "precision": "no", "run": 2, "max_steps": 1})
    return jobs


def job_precisions(asked: str) -> list[str]:
    """fp32 always; bf16 too where asked, or at `auto` where the device runs it natively."""
    if asked == "auto":
        return ["no", "bf16"] if bf16_available() else ["no"]
    return ["no", *(p for p in asked.split(",") if p != "no")]


def bf16_available() -> bool:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_supports_bf16()


def run_job(job: dict[str, Any], workdir: Path, log) -> dict[str, Any]:
    label = f"{job['case']} {job['impl']} {job['precision']} {job.get('batching', 'split')} run {job.get('run', 1)}"
    job = {**job, "workdir": str(workdir / label.replace(" ", "-"))}
    result = run_child(__file__, job, label, log)
    print(f"[bench] {label}: {summary(result)}", file=sys.stderr, flush=True)
    return result


def run_child(script: str, job: dict[str, Any], label: str, log: Any,
              env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `script --child <job>` in a process of its own (offline, its peak RSS its own, its output in `log`) and
    return the last `RESULT {...}` line it printed, with its wall time; a failed job stops the benchmark with the
    tail of its stderr. Shared by the benchmarks that run one child per measurement."""
    print(f"[bench] {label} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, script, "--child", json.dumps(job)], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                               "TOKENIZERS_PARALLELISM": "false", **(env or {})})
    log.write(f"===== {label}\n{proc.stdout}\n{proc.stderr}\n")
    log.flush()
    results = [line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not results:
        tail = proc.stderr.strip().splitlines()[-8:]
        raise SystemExit(f"benchmark job {label} failed (exit {proc.returncode}):\n" + "\n".join(tail))
    result = json.loads(results[-1])
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result


def summary(r: dict[str, Any]) -> str:
    keys = ("time_to_first_step_s", "train_samples_per_s", "eval_samples_per_s", "inference_samples_per_s",
            "val_macro_f1", "peak_rss_mb", "tokenised", "train_mfu", "eval_mfu", "matmul_peak_gflops")
    return ", ".join(f"{k}={r[k]}" for k in keys if r.get(k) is not None)


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (case, precision) of ours, with the reference's numbers (fp32) and ours/reference."""
    rows = []
    for r in results:
        if r["impl"] != "ours" or r["run"] != 1:
            continue
        if r["batching"] != "split":
            r = {**r, "case": f"{r['case']} ({r['batching']})"}
        case = r["case"].split(" ")[0]
        ref = next(x for x in results if x["case"] == case and x["impl"] == "reference")
        second = (next((x for x in results if x["case"] == case and x["run"] == 2), None)
                  if r["batching"] == "split" and r["precision"] == "no" else None)
        row = {"case": r["case"], "precision": r["precision"]}
        for key in ("train_samples_per_s", "eval_samples_per_s", "time_to_first_step_s", "peak_rss_mb",
                    "val_macro_f1", "val_accuracy", "train_mfu", "eval_mfu", "matmul_peak_gflops"):
            row[f"ours_{key}"], row[f"ref_{key}"] = r.get(key), ref.get(key)
        row["train_speedup"] = _ratio(r.get("train_samples_per_s"), ref.get("train_samples_per_s"))
        row["eval_speedup"] = _ratio(r.get("eval_samples_per_s"), ref.get("eval_samples_per_s"))
        row["macro_f1_diff"] = _diff(r.get("val_macro_f1"), ref.get("val_macro_f1"))
        row["inference_samples_per_s"] = r.get("inference_samples_per_s")
        row["inference_vs_eval"] = _ratio(r.get("inference_samples_per_s"), r.get("eval_samples_per_s"))
        if second:
            row["second_run_first_step_s"] = second.get("time_to_first_step_s")
            row["second_run_tokenised"] = second.get("tokenised")
        rows.append(row)
    lstm = next((r for r in rows if r["case"] == "lstm"), None)
    minilm = next((r for r in rows if r["case"] == "minilm" and r["precision"] == "no"), None)
    if lstm and minilm:
        lstm["lstm_vs_minilm_per_epoch"] = _ratio(lstm["ours_train_samples_per_s"], minilm["ours_train_samples_per_s"])
    return rows


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def _diff(a: float | None, b: float | None) -> float | None:
    return round(a - b, 4) if a is not None and b is not None else None


def markdown(rows: list[dict[str, Any]]) -> str:
    header = ("| model | precision | train samples/s ours / ref (x) | first step s ours / ref | 2nd run first step s "
              "(tokenised?) | eval samples/s ours / ref | inference samples/s (vs eval) | peak RSS MB ours / ref | "
              "val macro-F1 ours / ref (diff) | MFU train, ours / ref | MFU eval, ours / ref | matmul peak GFLOP/s |")
    lines = [header, "|" + "---|" * 12]
    for r in rows:
        second = (f"{r['second_run_first_step_s']} ({'yes' if r['second_run_tokenised'] else 'no'})"
                  if "second_run_first_step_s" in r else "-")
        lines.append(
            f"| {r['case']} | {'fp32' if r['precision'] == 'no' else r['precision']} "
            f"| {_fmt(r['ours_train_samples_per_s'])} / {_fmt(r['ref_train_samples_per_s'])} ({r['train_speedup']}x) "
            f"| {_fmt(r['ours_time_to_first_step_s'])} / {_fmt(r['ref_time_to_first_step_s'])} | {second} "
            f"| {_fmt(r['ours_eval_samples_per_s'])} / {_fmt(r['ref_eval_samples_per_s'])} ({r['eval_speedup']}x) "
            f"| {_with_ratio(r['inference_samples_per_s'], r['inference_vs_eval'])} "
            f"| {_fmt(r['ours_peak_rss_mb'])} / {_fmt(r['ref_peak_rss_mb'])} "
            f"| {_fmt(r['ours_val_macro_f1'], 4)} / {_fmt(r['ref_val_macro_f1'], 4)} ({r['macro_f1_diff']}) "
            f"| {_pct(r.get('ours_train_mfu'))} / {_pct(r.get('ref_train_mfu'))} "
            f"| {_pct(r.get('ours_eval_mfu'))} / {_pct(r.get('ref_eval_mfu'))} "
            f"| {_fmt(r.get('ours_matmul_peak_gflops'))} |")
    lstm = next((r for r in rows if "lstm_vs_minilm_per_epoch" in r), None)
    if lstm:
        lines.append(f"\nLSTM trains {lstm['lstm_vs_minilm_per_epoch']}x faster than minilm per epoch (ours, fp32).")
    return "\n".join(lines)


def _with_ratio(x: float | None, ratio: float | None) -> str:
    """`12.3 (1.5x)`, or `-` for a figure not measured in that row (inference in a bf16 row)."""
    return "-" if x is None else f"{_fmt(x)} ({ratio}x)" if ratio is not None else _fmt(x)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _fmt(x: Any, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def machine() -> dict[str, Any]:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "cpu_bf16": cpu_supports_bf16(), "python": platform.python_version(), "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d")}


def _precisions(value: str) -> str:
    if value != "auto" and not set(value.split(",")) <= {"no", "bf16"}:
        raise argparse.ArgumentTypeError(f"{value!r}: use auto, no, or no,bf16")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--cases", type=lambda s: s.split(","), default=list(CASES),
                        help=f"comma-separated, from {','.join(CASES)}")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--learning_rate", type=float, default=2e-4)
    parser.add_argument("--lstm_learning_rate", type=float, default=2e-3)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"training seed (the split seed stays {DEFAULT_SEED})")
    parser.add_argument("--precisions", default="auto", type=_precisions,
                        help="auto (fp32, and bf16 for minilm where the device has it), no (fp32 only), or no,bf16 "
                             "(bf16 too, on any device: emulated on CPUs without avx512_bf16/AMX)")
    parser.add_argument("--fp32_only", dest="precisions", action="store_const", const="no",
                        help="the same as --precisions no")
    parser.add_argument("--no_second_run", action="store_true", help="skip the second (cached) run")
    parser.add_argument("--max_train_samples", type=int, default=None)
    parser.add_argument("--max_eval_samples", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads per job (default: torch's)")
    parser.add_argument("--other_batching", type=lambda s: [b for b in s.split(",") if b], default=[],
                        help="also measure ours with these --batching choices (group, pad)")
    parser.add_argument("--tiny", action="store_true", help="tiny models and data: checks that the script runs")
    parser.add_argument("--output", default=None, help="results JSON (default benchmarks/results/<date>.json)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.child:
        child(json.loads(opts.child))
        return 0
    unknown = sorted(set(opts.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}: choose from {', '.join(CASES)}")
    output = Path(opts.output or ROOT / "benchmarks" / "results" / f"{time.strftime('%Y-%m-%d')}.json")
    with tempfile.TemporaryDirectory(prefix="hfp-bench-") as tmp:
        workdir = Path(tmp)
        with open(workdir / "log.txt", "w") as log:
            results = [run_job(job, workdir, log) for job in jobs_for(opts, workdir)]
    rows = ratios(results)
    from hf_project.runs import atomic_write_text, git_state

    report = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine(), "git": git_state(),
              "settings": {k: v for k, v in vars(opts).items() if k != "child"}, "results": results, "rows": rows}
    atomic_write_text(output, json.dumps(report, indent=2))
    print(markdown(rows))
    print(f"\nresults: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
