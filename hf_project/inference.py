"""Predict with a saved model: the same inputs the evaluation built, for text, images or audio.

    predictor = Predictor.load("weights/fortunes/minilm")        # or a run directory, runs/<dataset>/<model>,
    predictor.predict(["Beam me up, Scotty."])                    # or a hub id (the only case that may download)

A model is found in `weights/<dataset>/<model>/` (a saved model folder), a run directory (its `model/`, with the
run's `config.yaml` giving max_length / max_duration_s), `runs/<dataset>/<model>/` (its newest complete run) or a
hub id. Inputs go through the modality stage's evaluation path: the tokenizer truncating to the run's max_length,
the image processor without augmentation (or the LSTM's RowImageProcessor), audio centre-cropped to the training
length then the feature extractor (or the LSTM's log-mel front-end).
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image, ImageOps
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding

from hf_project import runs
from hf_project.errors import UserError, first_line
from hf_project.modalities import audio, image
from hf_project.modalities.text import longest_first
from hf_project.models import load_model, modality_of

logger = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 128  # DataArguments.max_length: what a run used unless told otherwise
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus")
TABLE_SUFFIXES = (".csv", ".json", ".jsonl", ".txt")
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


@dataclass
class Prediction:
    input: str
    label: str
    score: float
    probabilities: dict[str, float]

    def row(self) -> dict[str, Any]:
        """One CSV row in the layout of a run's predictions_test.csv (input, predicted, score, p_<class>...)."""
        return {"input": self.input, "predicted": self.label, "score": self.score,
                **{f"p_{name}": p for name, p in self.probabilities.items()}}


@dataclass
class Predictor:
    model: Any
    processor: Any
    modality: str
    source: Path | str
    run_dir: Path | None = None
    max_length: int | None = None  # text
    max_duration_s: float | None = None  # audio
    label_names: list[str] = field(init=False)
    device: torch.device = field(init=False)

    def __post_init__(self) -> None:
        id2label = self.model.config.id2label
        self.label_names = [id2label[i] for i in range(len(id2label))]
        # On the GPU when there is one, as the evaluation loop runs
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        """From a saved model folder, a run directory, runs/<dataset>/<model>/ or a hub id."""
        model_dir, run_dir = resolve_model_dir(path)
        run_config = read_run_config(run_dir) if run_dir else {}
        model, processor = load_model(model_dir) if isinstance(model_dir, Path) else _load_hub(model_dir)
        modality = model_modality(model.config)
        if modality is None:
            raise UserError(f"{model_dir} holds a {model.config.model_type} model, which classifies none of text, "
                            "image or audio")
        predictor = cls(model, processor, modality, model_dir, run_dir)
        if modality == "text":
            predictor.max_length = run_config.get("max_length") or default_max_length(model, processor)
        elif modality == "image" and getattr(model.config, "frontend", None):
            predictor.processor = image.RowImageProcessor.from_frontend(model.config.frontend)
        elif modality == "audio":
            predictor.processor = audio.frontend_of(model.config, processor)
            predictor.max_duration_s = (run_config.get("max_duration_s")
                                        or getattr(predictor.processor, "max_duration_s", None))
            if predictor.max_duration_s is None:
                raise UserError(f"{model_dir} does not record the clip length it was trained on: load it from its run "
                                "directory (runs/<dataset>/<model>/<run>), whose config.yaml has max_duration_s")
        if modality in ("image", "text") and predictor.processor is None:
            raise UserError(f"{model_dir} has no saved {'tokenizer' if modality == 'text' else 'image processor'}")
        logger.info("loaded %s (%s, %d classes) from %s", type(model).__name__, modality, len(predictor.label_names),
                    model_dir)
        return predictor

    def inputs_for(self, batch: Sequence[Any]) -> dict[str, torch.Tensor]:
        """Model inputs of one batch, built as the evaluation built them."""
        if self.modality == "text":
            return DataCollatorWithPadding(self.processor)(self._encode_texts(batch))
        if self.modality == "image":
            return image.inputs_for([open_image(x) for x in batch], self.processor)
        return audio.inputs_for(list(batch), self.processor, self.max_duration_s)

    def _encode_texts(self, texts: Sequence[str]) -> list[dict[str, list[int]]]:
        encoded = self.processor(list(texts), truncation=True, max_length=self.max_length)
        return [{k: v[i] for k, v in encoded.items()} for i in range(len(texts))]

    @torch.inference_mode()
    def probabilities(self, inputs: Sequence[Any], batch_size: int = 32, progress: bool | None = None) -> np.ndarray:
        """(N, classes) softmax probabilities, computed in batches; a bar appears past a few batches.

        Texts are tokenised together and batched longest first, so a batch pads only to about its own length; the
        rows come back in input order."""
        check_inputs(inputs, self.modality)
        if self.modality == "text":
            features = self._encode_texts(inputs)
            order = longest_first([len(f["input_ids"]) for f in features])
            collate = DataCollatorWithPadding(self.processor)

            def make_inputs(batch: Sequence[int]) -> dict[str, torch.Tensor]:
                return collate([features[i] for i in batch])

            items: Sequence[Any] = order
        else:
            order, items, make_inputs = None, inputs, self.inputs_for
        out = []
        disable = progress is False or (progress is None and len(inputs) <= 4 * batch_size)
        for batch in tqdm(list(batches(items, batch_size)), desc="predicting", unit="batch", disable=disable):
            inputs_on_device = {k: v.to(self.device) for k, v in make_inputs(batch).items()}
            logits = self.model(**inputs_on_device).logits.float()
            out.append(torch.softmax(logits, -1).cpu().numpy())
        probs = np.concatenate(out)
        return probs if order is None else probs[np.argsort(order)]  # row order[k] was predicted k-th

    def predict(self, inputs: Sequence[Any], batch_size: int = 32, progress: bool | None = None) -> list[Prediction]:
        """Label, score and every class probability for each input (texts, image or audio files)."""
        probs = self.probabilities(inputs, batch_size, progress)
        predictions = []
        for x, p in zip(inputs, probs, strict=True):
            k = int(p.argmax())
            predictions.append(Prediction(describe(x), self.label_names[k], float(p[k]),
                                          {name: float(v) for name, v in zip(self.label_names, p, strict=True)}))
        return predictions


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def describe(x: Any) -> str:
    if isinstance(x, dict):
        return str(x.get("path") or "<in memory>")
    if isinstance(x, Image.Image):
        return getattr(x, "filename", "") or "<image>"
    return str(x)


def check_inputs(inputs: Sequence[Any], modality: str) -> None:
    if len(inputs) == 0:
        raise UserError("no inputs to predict on: the input is empty")
    if modality == "text":
        bad = next((x for x in inputs if not isinstance(x, str)), None)
        if bad is not None:
            raise UserError(f"a text model needs strings, got {type(bad).__name__} ({str(bad)[:60]!r})")
        return
    for x in inputs:
        if isinstance(x, str | Path) and not Path(x).is_file():
            raise UserError(f"{modality} file {x} does not exist")


def open_image(x: Any) -> Image.Image:
    """A path, {"bytes", "path"} dict or PIL image, decoded like datasets' Image feature (EXIF orientation)."""
    if isinstance(x, Image.Image):
        return x
    import io

    source = io.BytesIO(x["bytes"]) if isinstance(x, dict) and x.get("bytes") else (
        x.get("path") if isinstance(x, dict) else x)
    try:
        img = Image.open(source)
        img.load()
    except Exception as err:  # PIL raises many types for a broken file
        reason = first_line(err)
        raise UserError(f"image file {describe(x)} cannot be decoded ({reason}): fix or remove it") from None
    if img.getexif().get(Image.ExifTags.Base.Orientation) is not None:
        img = ImageOps.exif_transpose(img)
    return img


# ---------------------------------------------------------------------------------------------------------------
# finding the model


def newest_complete_run(folder: Path) -> Path | None:
    """The newest complete run directly under runs/<dataset>/<model>/, if any."""
    found = [p for p in folder.iterdir() if p.is_dir() and runs.read_status(p) == runs.STATUS_COMPLETE]
    return max(found, key=lambda p: p.name) if found else None


def resolve_model_dir(path: str | Path) -> tuple[Path | str, Path | None]:
    """(model folder or hub id, run directory or None)."""
    p = Path(path)
    if not p.exists():
        if isinstance(path, str) and HUB_ID.match(path) and not path.startswith((".", "/")):
            return path, None
        raise UserError(f"model {path} does not exist: give weights/<dataset>/<model>, a run directory or a hub id")
    if not p.is_dir():
        raise UserError(f"{p} is not a model folder: give weights/<dataset>/<model> or a run directory")
    if (p / "config.json").is_file():
        # weights/ and a run's model/ are the same files; a run's model/ also has the run's config.yaml above it
        run_dir = p.parent if p.name == "model" and (p.parent / "config.yaml").is_file() else None
        return p, run_dir
    if (p / "status").is_file():
        status = runs.read_status(p)
        if not (p / "model" / "config.json").is_file():
            raise UserError(f"run {p} has no saved model (status: {status}): pick a complete run")
        if status != runs.STATUS_COMPLETE:
            logger.warning("run %s is %s, not complete", p, status)
        return p / "model", p
    run = newest_complete_run(p)
    if run is not None:
        logger.info("newest complete run under %s: %s", p, run.name)
        return p / run.name / "model", p / run.name
    raise UserError(f"{p} is not a model folder (no config.json) nor a run directory: point at "
                    "weights/<dataset>/<model> or runs/<dataset>/<model>/<run>")


def read_run_config(run_dir: Path) -> dict[str, Any]:
    try:
        return yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        logger.warning("cannot read %s/config.yaml (%s): using the model's own limits", run_dir, err)
        return {}


def default_max_length(model: Any, tokenizer: Any) -> int:
    """Without a run: the tokenizer's recorded limit, else the model's positions, else the training default."""
    limits = [getattr(tokenizer, "model_max_length", None), getattr(model.config, "max_position_embeddings", None)]
    limits = [int(v) for v in limits if isinstance(v, int | float) and 0 < v < 1_000_000]
    if not limits:
        logger.info("no length limit recorded with the model: truncating to %d tokens", DEFAULT_MAX_LENGTH)
        return DEFAULT_MAX_LENGTH
    return min(limits)


def _load_hub(model_id: str) -> tuple[Any, Any]:
    """A hub model, downloaded (or from the cache): only ever when the user names a hub id."""
    from huggingface_hub import snapshot_download

    from hf_project.models.registry import hub_error

    try:
        local = snapshot_download(model_id)
    except Exception as err:  # offline, unknown repo, gated: one message with the fix
        raise hub_error(model_id, err) from None
    return load_model(local)


# ---------------------------------------------------------------------------------------------------------------
# reading inputs (scripts/predict.py)


def read_table(path: Path, column: str) -> list[str]:
    """The texts of a CSV, JSON (list of objects or {column: [...]}), JSON Lines or plain text file (one per line)."""
    try:
        if path.suffix == ".txt":
            return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if path.suffix == ".csv":
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                rows = list(reader)
                columns = reader.fieldnames or []
        elif path.suffix == ".jsonl":
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            columns = sorted({k for r in rows for k in r})
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                data = [dict(zip(data, values, strict=True)) for values in zip(*data.values(), strict=True)]
            rows, columns = data, sorted({k for r in data for k in r})
    except (OSError, UnicodeDecodeError, ValueError, csv.Error, AttributeError, TypeError) as err:
        raise UserError(f"cannot read {path} ({str(err).splitlines()[0] if str(err) else type(err).__name__}): "
                        "give a CSV, JSON, JSON Lines or text file") from None
    if not rows:
        raise UserError(f"{path} is empty: no inputs to predict on")
    if column not in columns:
        raise UserError(f"text column {column!r} not found in {path} (columns: {', '.join(map(str, columns))}): "
                        "pass --text_column")
    return ["" if r.get(column) is None else str(r[column]) for r in rows]


def collect_inputs(paths: Sequence[str | Path], modality: str, text_column: str = "text") -> list[str]:
    """Texts from a table file, or image/audio files from folders and file names."""
    suffixes = IMAGE_SUFFIXES if modality == "image" else AUDIO_SUFFIXES
    items: list[str] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise UserError(f"input {p} does not exist")
        if modality == "text":
            if p.is_dir() or p.suffix.lower() not in TABLE_SUFFIXES:
                raise UserError(f"{p} is not a CSV/JSON/JSONL/TXT file: a text model reads texts from such a file")
            items += read_table(p, text_column)
        elif p.is_dir():
            found = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
            if not found:
                raise UserError(f"folder {p} holds no {modality} files ({', '.join(suffixes)})")
            items += found
        else:
            items.append(str(p))
    if not items:
        raise UserError("no inputs to predict on: the input is empty")
    return items


def prediction_table(predictions: Sequence[Prediction], limit: int = 10, width: int = 50) -> str:
    """A short plain-text table of the first `limit` predictions."""
    lines = [f"{'input':<{width}}  {'predicted':<20} {'score':>6}"]
    for p in predictions[:limit]:
        text = p.input.replace("\n", " ")
        if len(text) > width:  # keep a file's name, a text's start
            text = "..." + text[3 - width:] if Path(text).is_file() else text[: width - 3] + "..."
        lines.append(f"{text:<{width}}  {p.label:<20} {p.score:>6.3f}")
    if len(predictions) > limit:
        lines.append(f"... and {len(predictions) - limit} more")
    return "\n".join(lines)


def predict_files(model: str | Path, inputs: Sequence[str | Path], output: str | Path, text_column: str = "text",
                  batch_size: int = 32) -> list[Prediction]:
    """Load `model`, predict on `inputs` and write `output` (CSV); what scripts/predict.py runs."""
    predictor = Predictor.load(model)
    items = collect_inputs(inputs, predictor.modality, text_column)
    predictions = predictor.predict(items, batch_size=batch_size)
    runs.write_csv(output, [p.row() for p in predictions])
    return predictions


# ---------------------------------------------------------------------------------------------------------------
# a run's test examples (notebooks)


def run_test_examples(run_dir: str | Path, limit: int | None = None) -> tuple[list[Any], list[dict[str, str]]]:
    """(inputs, rows of predictions_test.csv) for a run's first `limit` test examples.

    Texts come from the predictions file itself; images and audio from the files it names, or, for data that has
    no files (hub or builtin sets), from the test split rebuilt from the run's config.yaml (same seed, same split).
    """
    run_dir = Path(run_dir)
    with open(run_dir / "predictions_test.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:limit]
    column = "input" if rows and "input" in rows[0] else "text"  # early runs named the column after the modality
    values = [r[column] for r in rows]
    if modality_of_run(run_dir) == "text" or all(Path(v).is_file() for v in values):
        return values, rows
    from hf_project.config import config_from_dict
    from hf_project.data import prepare_data

    cfg = config_from_dict(read_run_config(run_dir))
    data = prepare_data(cfg.data, cfg.data.split_seed)
    test = data.splits["test"].select(range(len(rows)))
    return list(test[data.modality]), rows


def modality_of_run(run_dir: str | Path) -> str:
    from transformers import AutoConfig

    return model_modality(AutoConfig.from_pretrained(Path(run_dir) / "model")) or "text"


def model_modality(config: Any) -> str | None:
    """modality_of, plus LSTMs saved before their config recorded it: the front-end says, else tokens are text."""
    modality = modality_of(config)
    if modality is None and config.model_type == "hf_project_lstm":
        frontend = getattr(config, "frontend", None) or {}
        modality = frontend.get("modality") or ("text" if getattr(config, "input_type", "tokens") == "tokens" else None)
    return modality
