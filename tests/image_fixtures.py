"""Synthetic image data and tiny random-init image checkpoints for the image tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

CLASSES = ("blob", "horizontal", "vertical")


def pattern(kind: str, rng: np.random.Generator) -> Image.Image:
    """One image whose class is visible at any crop: stripes of either orientation, or a round blob.

    Sizes vary (non-square too), every third image is greyscale, the others have random colours.
    """
    height, width = (int(v) for v in rng.integers(20, 33, size=2))
    y, x = np.mgrid[0:height, 0:width]
    half = int(rng.integers(2, 4))  # stripe half-period in pixels
    if kind == "horizontal":
        mask = ((y + rng.integers(0, 2 * half)) // half) % 2 == 0
    elif kind == "vertical":
        mask = ((x + rng.integers(0, 2 * half)) // half) % 2 == 0
    else:
        cy, cx = rng.uniform(0.35, 0.65) * height, rng.uniform(0.35, 0.65) * width
        radius = rng.uniform(0.2, 0.35) * min(height, width)
        mask = (y - cy) ** 2 + (x - cx) ** 2 < radius**2
    level = np.where(mask, 0.85, 0.15) + rng.normal(0, 0.05, mask.shape)  # (H, W) in ~[0, 1]
    if rng.integers(0, 3) == 0:
        return Image.fromarray((level.clip(0, 1) * 255).astype(np.uint8), mode="L")
    fg, bg = rng.uniform(0.5, 1.0, 3), rng.uniform(0.0, 0.4, 3)
    rgb = level[..., None] * fg + (1 - level[..., None]) * bg  # (H, W, 3)
    return Image.fromarray((rgb.clip(0, 1) * 255).astype(np.uint8), mode="RGB")


def make_image_folder(root: Path, per_class: int = 20, seed: int = 0, split: str | None = None) -> Path:
    """root/[split/]<class>/<class>_<i>.png for the three CLASSES."""
    rng = np.random.default_rng(seed)
    base = root / split if split else root
    for kind in CLASSES:
        (base / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pattern(kind, rng).save(base / kind / f"{kind}_{i:03d}.png")
    return root


def save_tiny_checkpoint(kind: str, path: Path) -> Path:
    """A 2-layer / 2-stage random-init classifier for 32x32 images, saved with its image processor."""
    import transformers as tf

    torch.manual_seed(0)
    if kind == "vit":
        config = tf.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64)
        model, processor = tf.ViTForImageClassification(config), tf.ViTImageProcessor(size={"height": 32, "width": 32})
    elif kind == "convnext":
        config = tf.ConvNextConfig(hidden_sizes=[16, 32], depths=[1, 1], num_stages=2, patch_size=4, image_size=32)
        model = tf.ConvNextForImageClassification(config)
        processor = tf.ConvNextImageProcessor(size={"shortest_edge": 32})  # resize to 36, centre crop 32
    elif kind == "resnet":
        config = tf.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic")
        model = tf.ResNetForImageClassification(config)
        processor = tf.ConvNextImageProcessor(size={"shortest_edge": 32}, image_mean=[0.485, 0.456, 0.406],
                                              image_std=[0.229, 0.224, 0.225])
    else:
        raise ValueError(kind)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
