"""torchvision's ImageNet MobileNetV2 state dict -> a transformers MobileNetV2ForImageClassification folder.

transformers' MobileNetV2 holds torchvision's network exactly once its config undoes the TensorFlow defaults:
symmetric PyTorch padding instead of TF "same" padding, BatchNorm eps 1e-5 instead of 1e-3, dropout 0.2 instead of
0.8. Block for block the layouts agree (a stem of first conv + depthwise + projection, 16 inverted residuals with
the same channels and strides, a 1x1 conv to 1280, average pooling, a linear head), so every tensor, BatchNorm
running statistics included, is copied by an explicit name mapping; anything unmapped or mis-shaped is an error.

One difference no config can express: transformers builds its BatchNorm layers with momentum 0.997 (torchvision:
0.1), which only matters when the running statistics are updated, i.e. in training mode.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from transformers import MobileNetV2Config, MobileNetV2ForImageClassification, MobileNetV2ImageProcessorPil

logger = logging.getLogger(__name__)

VERSION = "1"  # part of the cache folder's name: bump it whenever the converted folder would differ

NUM_BLOCKS = 16  # inverted residuals after the stem: torchvision's features[2..17], transformers' layer[0..15]
CONV = ("weight",)
BATCH_NORM = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
# torchvision's ImageNet eval preprocessing (MobileNet_V2_Weights.IMAGENET1K_V1.transforms).
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def mobilenet_config() -> MobileNetV2Config:
    """The config under which transformers' MobileNetV2 computes exactly what torchvision's `mobilenet_v2()` does."""
    # ImageNet's class names ship with torchvision, which the project does not install (only a test-only reference
    # copy): the 1000 ImageNet classes are named by index. Fine-tuning replaces this head anyway.
    id2label = {i: f"imagenet_{i}" for i in range(1000)}
    return MobileNetV2Config(
        num_channels=3,
        image_size=224,
        depth_multiplier=1.0,
        depth_divisible_by=8,
        min_depth=8,
        expand_ratio=6,
        output_stride=32,  # no dilated convolutions
        first_layer_is_expansion=True,  # torchvision's first block (expand ratio 1) has no 1x1 expansion
        finegrained_output=True,  # 1280 output channels (any value agrees at depth multiplier 1)
        hidden_act="relu6",
        tf_padding=False,  # torchvision pads (k - 1) // 2 on every side; TF "same" padding is asymmetric
        layer_norm_eps=1e-5,  # used as the BatchNorm eps: torchvision's nn.BatchNorm2d default
        classifier_dropout_prob=0.2,  # torchvision's MobileNetV2(dropout=0.2)
        id2label=id2label,
        label2id={name: i for i, name in id2label.items()},
    )


def _layer(source: str, target: str, names: tuple[str, ...]) -> dict[str, str]:
    return {f"{source}.{name}": f"{target}.{name}" for name in names}


def _conv_bn(source_conv: str, source_bn: str, target: str) -> dict[str, str]:
    """One transformers MobileNetV2ConvLayer (convolution + normalization) from torchvision's conv and BN."""
    conv = _layer(source_conv, f"{target}.convolution", CONV)
    return {**conv, **_layer(source_bn, f"{target}.normalization", BATCH_NORM)}


def name_mapping() -> dict[str, str]:
    """Every torchvision `mobilenet_v2()` state-dict key -> its MobileNetV2ForImageClassification key."""
    base = "mobilenet_v2"
    mapping = {
        **_conv_bn("features.0.0", "features.0.1", f"{base}.conv_stem.first_conv"),
        # features[1]: expand ratio 1, so conv = [depthwise ConvBNReLU6, 1x1 conv, BN].
        **_conv_bn("features.1.conv.0.0", "features.1.conv.0.1", f"{base}.conv_stem.conv_3x3"),
        **_conv_bn("features.1.conv.1", "features.1.conv.2", f"{base}.conv_stem.reduce_1x1"),
    }
    for i in range(NUM_BLOCKS):
        # conv = [1x1 ConvBNReLU6, depthwise ConvBNReLU6, 1x1 conv, BN]
        source, target = f"features.{i + 2}.conv", f"{base}.layer.{i}"
        mapping.update(_conv_bn(f"{source}.0.0", f"{source}.0.1", f"{target}.expand_1x1"))
        mapping.update(_conv_bn(f"{source}.1.0", f"{source}.1.1", f"{target}.conv_3x3"))
        mapping.update(_conv_bn(f"{source}.2", f"{source}.3", f"{target}.reduce_1x1"))
    mapping.update(_conv_bn("features.18.0", "features.18.1", f"{base}.conv_1x1"))
    mapping.update(_layer("classifier.1", "classifier", ("weight", "bias")))  # classifier.0 is the dropout
    return mapping


def map_state_dict(source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`source` renamed to `target`'s keys; raises unless every key of both is used once with equal shape and dtype."""
    mapping = name_mapping()
    problems = []
    unused = sorted(set(source) - set(mapping))
    missing_source = sorted(set(mapping) - set(source))
    unset = sorted(set(target) - set(mapping.values()))
    unknown_target = sorted(set(mapping.values()) - set(target))
    for label, keys in (("source tensors not mapped", unused), ("mapped source tensors absent", missing_source),
                        ("target tensors left unset", unset), ("mapped to no target tensor", unknown_target)):
        if keys:
            problems.append(f"{label} ({len(keys)}): {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}")
    for src, dst in mapping.items():
        if src in source and dst in target:
            a, b = source[src], target[dst]
            if a.shape != b.shape or a.dtype != b.dtype:
                problems.append(f"{src} {tuple(a.shape)} {a.dtype} -> {dst} {tuple(b.shape)} {b.dtype}")
    if problems:
        raise ValueError("torchvision MobileNetV2 -> transformers conversion does not match: " + "; ".join(problems))
    return {mapping[key]: tensor for key, tensor in source.items()}


def convert(source: Path, target: Path) -> None:
    """Write a MobileNetV2ForImageClassification folder (weights, config, image processor) from torchvision's
    `mobilenet_v2-b0353104.pth`."""
    state = torch.load(source, weights_only=True, map_location="cpu")
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{source} is not a state dict of tensors (got {type(state).__name__})")
    model = MobileNetV2ForImageClassification(mobilenet_config())
    weights = map_state_dict(state, model.state_dict())
    model.load_state_dict(weights, strict=True)  # second check: raises on any missing or unexpected key
    model.eval().save_pretrained(target)  # transformers 5 always writes model.safetensors
    # torchvision's eval transform: resize the shorter side to 256 (bilinear, antialiased), centre crop 224,
    # scale to [0, 1], ImageNet mean/std. The PIL backend: the torchvision one needs torchvision in the venv.
    MobileNetV2ImageProcessorPil(
        do_resize=True, size={"shortest_edge": 256}, resample=2,  # PIL.Image.Resampling.BILINEAR
        do_center_crop=True, crop_size={"height": 224, "width": 224},
        do_rescale=True, rescale_factor=1 / 255, do_normalize=True, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD,
    ).save_pretrained(target)
    logger.info("converted %s: %d tensors into %s", source.name, len(weights), target)
