"""Image stage: decoded images -> pixel tensors, with train-time augmentation applied on the fly.

Pretrained checkpoints get their own image processor (resize, rescale, normalise). The from-scratch LSTM reads
an image as a sequence of pixel rows: greyscale, resized to `lstm_image_size` squared, standardised with the
training split's pixel mean/std (`RowImageProcessor`, described in the model config's `frontend`).

Augmentation -- a random resized crop and a horizontal flip -- runs only on train, every time an example is
read (datasets' `with_transform`), and draws from torch's RNG, which the Trainer seeds: the same seed gives the
same augmented tensors. Validation and test go through the deterministic processor alone.

Implements hf_project.modalities.ModalityStage through its top-level names.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datasets
import numpy as np
import torch
from datasets import Dataset, DatasetDict
from PIL import Image, ImageOps
from tqdm.auto import tqdm

from hf_project.config import with_augmentation_defaults
from hf_project.errors import UserError, first_line
from hf_project.modalities import files
from hf_project.models.registry import ModelSpec, hub_error

if TYPE_CHECKING:
    from hf_project.config import ExperimentConfig
    from hf_project.data import PreparedData

logger = logging.getLogger(__name__)

# set_transform builds pixel_values/input_features from the "image" column: the Trainer must not drop it first
SPLITS_BATCHES = False  # every image has the processor's size: nothing to pad
PIPELINE_TAG = "image-classification"  # the Hugging Face task of an image classifier: model cards
TRAINER_OPTIONS = {"remove_unused_columns": False}
INPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
FEATURE = datasets.Image
CROP_RATIO = (3 / 4, 4 / 3)  # aspect ratios of the random resized crop (torchvision's defaults)
STATS_SAMPLE = 512  # training images read to estimate the LSTM's pixel mean/std (plenty for two numbers)
_CHECKED: set[str] = set()  # split hashes whose images all passed check_images in this process


@dataclass
class RowImageProcessor:
    """The LSTM's front-end: an image becomes `size` rows of `size` standardised grey pixels.

    A modalities.Frontend: its parameters are stored in the model config's `frontend` (`to_frontend`), so
    inference rebuilds it with `RowImageProcessor.from_frontend(model.config.frontend)`; nothing else needs saving.
    """

    size: int
    mean: float = 0.0
    std: float = 1.0
    resample: int = int(Image.Resampling.BILINEAR)

    @property
    def output_size(self) -> tuple[int, int]:
        return self.size, self.size

    def _grey(self, image: Image.Image) -> np.ndarray:
        image = image.convert("L")
        if image.size != (self.size, self.size):
            image = image.resize((self.size, self.size), Image.Resampling(self.resample))
        return np.asarray(image, dtype=np.float32) / 255.0  # (size, size) in [0, 1]

    def fit(self, images: list[Image.Image]) -> RowImageProcessor:
        """Pixel mean/std from (training) images; a constant set of pixels keeps std 1."""
        pixels = np.stack([self._grey(img) for img in images])
        std = float(pixels.std())
        self.mean, self.std = float(pixels.mean()), std if std > 1e-6 else 1.0
        return self

    def __call__(self, images: list[Image.Image], **_: Any) -> dict[str, torch.Tensor]:
        rows = np.stack([(self._grey(img) - self.mean) / self.std for img in images])
        return {"input_features": torch.from_numpy(rows)}  # (B, rows, row width)

    def to_frontend(self) -> dict[str, Any]:
        return {
            "modality": "image", "layout": "rows", "image_size": self.size, "color_mode": "L",
            "resample": Image.Resampling(self.resample).name.lower(), "rescale_factor": 1 / 255,
            "mean": self.mean, "std": self.std,
        }

    @classmethod
    def from_frontend(cls, frontend: Mapping[str, Any]) -> RowImageProcessor:
        resample = int(Image.Resampling[frontend.get("resample", "bilinear").upper()])
        return cls(int(frontend["image_size"]), float(frontend["mean"]), float(frontend["std"]), resample)


def load_folder(root: Path, split_dirs: Mapping[str, Path]) -> DatasetDict:
    """datasets' imagefolder builder (which finds the split folders itself)."""
    try:
        return datasets.load_dataset("imagefolder", data_dir=str(root))
    except Exception as err:
        message = first_line(err)
        raise UserError(f"could not read imagefolder {root}: {message}") from None


def split_inputs(rows: Dataset, column: str, split: str) -> Dataset:
    return files.split_inputs(rows, column, "image", FEATURE)


def load_processor(spec: ModelSpec, data: PreparedData, cfg: ExperimentConfig) -> Any:
    """The checkpoint's image processor, or for the LSTM a row processor fitted on the training split only."""
    if spec.from_scratch:
        check_images(data)  # fitting decodes training images: a broken file must get the clear error first
        train = data.splits["train"]
        sample = train.select(range(min(len(train), STATS_SAMPLE)))  # the split order is already a seeded shuffle
        processor = RowImageProcessor(cfg.data.lstm_image_size).fit(list(sample["image"]))
        logger.info("LSTM image rows: %dx%d grey, pixel mean %.3f std %.3f",
                    processor.size, processor.size, processor.mean, processor.std)
        return processor
    from transformers import AutoImageProcessor

    try:
        processor = AutoImageProcessor.from_pretrained(spec.checkpoint)
    except (OSError, ValueError) as err:
        raise hub_error(spec.checkpoint, err) from None
    if cfg.data.image_size:
        resize_to(processor, cfg.data.image_size)
    return processor


def resize_to(processor: Any, size: int) -> None:
    """Make the processor's output `size` pixels square, keeping its own recipe: a resize-then-centre-crop processor
    keeps its resize/crop ratio (256/224 for ImageNet models), a fixed-size one resizes to size x size. The
    processor is saved with the model, so inference resizes the same way."""
    current = dict(processor.size)
    crop = getattr(processor, "crop_size", None)
    if "shortest_edge" in current:
        if getattr(processor, "do_center_crop", False) and crop:
            ratio = current["shortest_edge"] / crop["height"]
            processor.size = {"shortest_edge": round(size * ratio)}
            processor.crop_size = {"height": size, "width": size}
        else:
            processor.size = {"shortest_edge": size}
    else:
        processor.size = {"height": size, "width": size}
        if crop:
            processor.crop_size = {"height": size, "width": size}
    logger.info("pretrained image inputs: %dx%d (--image_size)", size, size)


def stored_images(ds: Dataset) -> Iterator[dict[str, Any]]:
    """The stored {bytes, path} of each image, undecoded: the arrow format hands them over as they are."""
    for table in ds.select_columns(["image"]).with_format("arrow").iter(batch_size=256):
        yield from table["image"].to_pylist()


def check_images(data: PreparedData) -> None:
    """Every image of every split opens and passes PIL's verify (headers and, for PNG, chunk checksums).

    Reading only the file structure keeps this cheap, so a broken file fails the run before training starts
    rather than in the middle of an epoch. Done once per split content (the split hash covers it), not per model.
    """
    if data.split["hash"] in _CHECKED:
        return
    total = sum(len(ds) for ds in data.splits.values())
    with tqdm(total=total, desc="checking images", unit="img", disable=total < 5000) as bar:
        for split, ds in data.splits.items():
            origin = data.split[split]["source"]
            for row, value in zip(data.split[split]["indices"], stored_images(ds), strict=True):
                check_image(value, f"the image in row {row} of the dataset's {origin} split")
                bar.update()
    _CHECKED.add(data.split["hash"])


def check_image(value: dict[str, Any], where: str) -> None:
    path = value.get("path")
    try:
        with Image.open(io.BytesIO(value["bytes"]) if value.get("bytes") is not None else path) as img:
            img.verify()
    except Exception as err:  # PIL raises many types for a broken file
        reason = first_line(err)
        source = f"image file {path}" if path else where
        raise UserError(f"{source} cannot be decoded ({reason}): remove or replace it") from None


def input_size(processor: Any) -> tuple[int, int]:
    """(height, width) of the pixel tensors the processor produces for a square image."""
    if isinstance(processor, RowImageProcessor):
        return processor.output_size
    probe = processor(Image.new("RGB", (256, 256)), return_tensors="pt")["pixel_values"]
    return int(probe.shape[-2]), int(probe.shape[-1])


def crop_box(width: int, height: int, scale: tuple[float, float]) -> tuple[int, int, int, int]:
    """A random (left, top, right, bottom) box of `scale` area fraction and CROP_RATIO aspect, from torch's RNG.

    torchvision's RandomResizedCrop rule: ten tries at a box that fits, then a centre crop.
    """
    area = width * height
    log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    for _ in range(10):
        target = area * torch.empty(1).uniform_(scale[0], scale[1]).item()
        ratio = math.exp(torch.empty(1).uniform_(*log_ratio).item())
        w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,)).item())
            left = int(torch.randint(0, width - w + 1, (1,)).item())
            return left, top, left + w, top + h
    in_ratio = width / height
    w, h = width, height
    if in_ratio < CROP_RATIO[0]:
        h = round(w / CROP_RATIO[0])
    elif in_ratio > CROP_RATIO[1]:
        w = round(h * CROP_RATIO[1])
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def color_mode(processor: Any) -> str:
    """RGB for RGB checkpoints (greyscale, palette and RGBA images are converted), L for one-channel ones."""
    if isinstance(processor, RowImageProcessor):
        return "L"
    mean = getattr(processor, "image_mean", None)
    return "L" if isinstance(mean, list | tuple) and len(mean) == 1 else "RGB"


def make_transform(processor: Any, cfg: ExperimentConfig, train: bool) -> Callable[[dict], dict]:
    """Batch transform for `with_transform`: {"image", "label"} -> model inputs + "labels"."""
    # for_run resolved unset crop/flip to the model family's defaults; a config used directly gets them here
    data_args = with_augmentation_defaults(cfg.data, from_scratch=isinstance(processor, RowImageProcessor))
    crop = train and data_args.random_resized_crop
    flip = train and data_args.horizontal_flip
    scale = (cfg.data.crop_scale_min, 1.0)
    height, width = input_size(processor) if crop else (0, 0)
    resample = Image.Resampling(int(getattr(processor, "resample", None) or Image.Resampling.BILINEAR))
    mode = color_mode(processor)

    def transform(batch: dict) -> dict:
        images = []
        for image in batch["image"]:
            image = image.convert(mode) if image.mode != mode else image
            if crop:  # crop and resize in one resampling step, straight to the model's input size
                image = image.resize((width, height), resample, box=crop_box(*image.size, scale))
            if flip and torch.rand(1).item() < 0.5:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            images.append(image)
        # The crop already produced the input size: the processor then only rescales and normalises
        # (as in transformers' image-classification example), no second resize or centre crop.
        options = {"do_resize": False, "do_center_crop": False} if crop else {}
        inputs = dict(processor(images, return_tensors="pt", **options))
        inputs["labels"] = files.label_tensor(batch["label"])
        return inputs

    return transform


def inputs_for(images: list[Image.Image], processor: Any) -> dict[str, Any]:
    """Model inputs of decoded images, built as evaluation builds them (no augmentation); used by inference."""
    mode = color_mode(processor)
    images = [img.convert(mode) if img.mode != mode else img for img in images]
    return dict(processor(images, return_tensors="pt"))


def prepare(data: PreparedData, processor: Any, cfg: ExperimentConfig) -> DatasetDict:
    """Lazily transformed splits: augmentation on train only; validation and test deterministic."""
    check_images(data)
    prepared: dict[str, Dataset] = {}
    for split, ds in data.splits.items():
        prepared[split] = ds.with_transform(make_transform(processor, cfg, train=split == "train"))
    return DatasetDict(prepared)


def input_facts(prepared: DatasetDict, cfg: ExperimentConfig) -> dict[str, Any]:
    return {}  # every image is resized to one size: no length facts


def collator(processor: Any) -> Callable[[list[dict]], dict[str, torch.Tensor]]:
    def collate(examples: list[dict]) -> dict[str, torch.Tensor]:
        return {key: torch.stack([torch.as_tensor(e[key]) for e in examples]) for key in examples[0]}

    return collate


def lstm_inputs(processor: Any, cfg: ExperimentConfig) -> dict[str, Any]:
    """LSTMConfig front-end arguments; a pretrained model's processor has none (build_model ignores them)."""
    if not isinstance(processor, RowImageProcessor):
        return {}
    return {"input_type": "features", "input_dim": processor.size, "frontend": processor.to_frontend()}


def describe_split(ds: Dataset) -> list[str]:
    return files.describe_split(ds, "image")


def raw_inputs(ds: Dataset) -> list[Any]:
    return list(ds["image"])


def display_values(values: list[Any]) -> list[Image.Image]:
    """Decoded images as they are; files and stored bytes decoded (open_image)."""
    return [open_image(v) for v in values]


# ---------------------------------------------------------------------------------------------------------------
# inference


def saved_processor(model_config: Any, processor: Any, where: str) -> Any:
    """The LSTM's RowImageProcessor rebuilt from the config's front-end, else the folder's image processor."""
    frontend = getattr(model_config, "frontend", None)
    if frontend:
        return RowImageProcessor.from_frontend(frontend)
    if processor is None:
        raise UserError(f"{where} has no saved image processor")
    return processor


def input_settings(run_config: Mapping[str, Any], model_config: Any, processor: Any, where: str) -> dict[str, Any]:
    return {}  # the saved processor records the size and normalisation


def read_inputs(path: Path, column: str) -> list[str]:
    return files.read_files(path, "image", INPUT_SUFFIXES)


def check_inputs(inputs: Sequence[Any]) -> None:
    files.check_files(inputs, "image")


def encode_inputs(inputs: Sequence[Any], processor: Any, settings: Mapping[str, Any]) -> list[Any]:
    return list(inputs)  # decoded a batch at a time (collate_inputs): memory stays bounded


def batch_order(encoded: Sequence[Any]) -> None:
    return None  # every image becomes one input size


def collate_inputs(images: Sequence[Any], processor: Any, settings: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    return inputs_for([open_image(x) for x in images], processor)


def describe_input(value: Any) -> str:
    if isinstance(value, Image.Image):
        return getattr(value, "filename", "") or "<image>"
    return files.describe_file(value)


def open_image(x: Any) -> Image.Image:
    """A path, {"bytes", "path"} dict or PIL image, decoded like datasets' Image feature (EXIF orientation)."""
    if isinstance(x, Image.Image):
        return x
    source = io.BytesIO(x["bytes"]) if isinstance(x, dict) and x.get("bytes") else (
        x.get("path") if isinstance(x, dict) else x)
    try:
        img = Image.open(source)
        img.load()
    except Exception as err:  # PIL raises many types for a broken file
        reason = first_line(err)
        raise UserError(f"image file {describe_input(x)} cannot be decoded ({reason}): fix or remove it") from None
    if img.getexif().get(Image.ExifTags.Base.Orientation) is not None:
        img = ImageOps.exif_transpose(img)
    return img
