"""Predict with a saved model: the same inputs the evaluation built, for text, images or audio.

    predictor = Predictor.load("weights/fortunes/minilm")        # or a run directory, runs/<dataset>/<model>,
    predictor.predict(["Beam me up, Scotty."])                    # or a hub id (the only case that may download)

A model is found in `weights/<dataset>/<model>/` (a saved model folder), a run directory (its `model/`, with the
run's `config.yaml` giving max_length / max_duration_s), `runs/<dataset>/<model>/` (its newest complete run) or a
hub id. Inputs go through the modality stage's evaluation path (hf_project.modalities.ModalityStage): the tokenizer
truncating to the run's max_length, the image processor without augmentation (or the LSTM's RowImageProcessor),
audio centre-cropped to the training length then the feature extractor (or the LSTM's log-mel front-end).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm
from transformers.utils import CONFIG_NAME

from hf_project import runs
from hf_project.errors import UserError
from hf_project.modalities import MODALITIES, ModalityStage, get_stage
from hf_project.models import load_model, modality_of
from hf_project.models.linear import LinearTextModel, is_linear_model
from hf_project.models.registry import is_hub_id
from hf_project.tasks import LABEL_SET_SEPARATOR, Regression, Task, task_of_model

logger = logging.getLogger(__name__)


@dataclass
class Prediction:
    input: str
    label: str  # the class; multi-label: the predicted labels joined by "|" (maybe none); regression: the value
    score: float | None  # the class's probability (single-label); None for the other tasks
    probabilities: dict[str, float]  # of each class (softmax) or label (sigmoid); empty for a regression
    value: float | None = None  # regression: the predicted value, in the target's units
    # the task's prediction columns, as predictions_test.csv has them (hf_project.tasks)
    fields: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def labels(self) -> list[str]:
        """Multi-label: the predicted labels (the class alone for single-label)."""
        return [x for x in self.label.split(LABEL_SET_SEPARATOR) if x] if self.value is None else []

    def row(self) -> dict[str, Any]:
        """One CSV row in the layout of a run's predictions_test.csv: input, then the task's prediction columns
        (single-label: predicted, score, p_<class>...; multi-label: predicted, p_<label>...; regression:
        predicted)."""
        return {"input": self.input, **self.fields}


@dataclass(init=False)
class Predictor:
    model: Any
    processor: Any  # the stage's saved_processor: what turns raw inputs into this model's inputs
    modality: str
    source: Path | str
    run_dir: Path | None
    # The stage's input_settings, shared with training (max_length for text, max_duration_s for audio)
    settings: dict[str, Any]
    label_names: list[str]
    device: torch.device
    stage: ModalityStage = field(repr=False)
    task: Task  # what the outputs mean: hf_project.tasks, from the model's config

    def __init__(self, model: Any, processor: Any, modality: str, source: Path | str, run_dir: Path | None = None,
                 max_length: int | None = None, max_duration_s: float | None = None,
                 settings: dict[str, Any] | None = None) -> None:
        """`max_length` / `max_duration_s` are the two settings most often given directly; `settings` the stage's
        input_settings, all of them."""
        self.model, self.processor, self.modality = model, processor, modality
        self.source, self.run_dir = source, run_dir
        self.settings = dict(settings or {})
        for key, value in (("max_length", max_length), ("max_duration_s", max_duration_s)):
            if value is not None:
                self.settings[key] = value
        self.stage = get_stage(self.modality)
        self.task = task_of_model(self.model.config)
        id2label = self.model.config.id2label
        self.label_names = [id2label[i] for i in range(len(id2label))]
        # On the GPU when there is one, as the evaluation loop runs
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()

    # The two settings callers read and override most, as attributes (None where the modality has no such setting)
    @property
    def max_length(self) -> int | None:
        return self.settings.get("max_length")

    @max_length.setter
    def max_length(self, value: int | None) -> None:
        self.settings["max_length"] = value

    @property
    def max_duration_s(self) -> float | None:
        return self.settings.get("max_duration_s")

    @max_duration_s.setter
    def max_duration_s(self, value: float | None) -> None:
        self.settings["max_duration_s"] = value

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        """From a saved model folder, a run directory, runs/<dataset>/<model>/ or a hub id."""
        model_dir, run_dir = resolve_model_dir(path)
        if isinstance(model_dir, Path) and is_linear_model(model_dir):
            return LinearPredictor.load_linear(model_dir, run_dir)
        run_config = read_run_config(run_dir) if run_dir else {}
        model, processor = load_model(model_dir) if isinstance(model_dir, Path) else _load_hub(model_dir)
        modality = modality_of(model.config)
        if modality is None:
            raise UserError(f"{model_dir} holds a {model.config.model_type} model, which classifies none of "
                            f"{', '.join(MODALITIES[:-1])} or {MODALITIES[-1]}")
        stage = get_stage(modality)
        processor = stage.saved_processor(model.config, processor, str(model_dir))
        settings = stage.input_settings(run_config, model.config, processor, str(model_dir))
        predictor = cls(model, processor, modality, model_dir, run_dir, settings=settings)
        logger.info("loaded %s (%s, %d classes) from %s", type(model).__name__, modality, len(predictor.label_names),
                    model_dir)
        return predictor

    def inputs_for(self, batch: Sequence[Any]) -> dict[str, torch.Tensor]:
        """Model inputs of one batch, built as the evaluation built them."""
        encoded = self.stage.encode_inputs(batch, self.processor, self.settings)
        return self.stage.collate_inputs(encoded, self.processor, self.settings)

    @torch.inference_mode()
    def probabilities(self, inputs: Sequence[Any], batch_size: int = 32, progress: bool | None = None) -> np.ndarray:
        """The task's outputs, computed in batches; a bar appears past a few batches: (N, classes) softmax
        probabilities, (N, labels) sigmoid probabilities for multi-label, (N,) values for a regression.

        Inputs the stage can order (texts, tokenised together) are batched longest first, so a batch pads only to
        about its own length; the rows come back in input order."""
        check_inputs(inputs, self.modality)
        encoded = self.stage.encode_inputs(inputs, self.processor, self.settings)
        order = self.stage.batch_order(encoded)
        items = encoded if order is None else [encoded[i] for i in order]
        out = []
        disable = progress is False or (progress is None and len(inputs) <= 4 * batch_size)
        for batch in tqdm(list(batches(items, batch_size)), desc="predicting", unit="batch", disable=disable):
            model_inputs = self.stage.collate_inputs(batch, self.processor, self.settings)
            inputs_on_device = {k: v.to(self.device) for k, v in model_inputs.items()}
            out.append(self.task.outputs(self.model(**inputs_on_device).logits.float().cpu().numpy()))
        outputs = np.concatenate(out)
        return outputs if order is None else outputs[np.argsort(order)]  # row order[k] was predicted k-th

    def predict(self, inputs: Sequence[Any], batch_size: int = 32, progress: bool | None = None) -> list[Prediction]:
        """The prediction for each input (texts, image or audio files): the class with its score and every class's
        probability; the labels above the threshold and every label's probability (multi-label); the value
        (regression)."""
        outputs = self.probabilities(inputs, batch_size, progress)
        predictions = []
        for x, output in zip(inputs, outputs, strict=True):
            fields = self.task.predicted(output, self.label_names)
            probabilities = {k.removeprefix("p_"): v for k, v in fields.items() if k.startswith("p_")}
            value = float(output) if isinstance(self.task, Regression) else None
            label = f"{value:.6g}" if value is not None else fields["predicted"]
            predictions.append(Prediction(self.stage.describe_input(x), label, fields.get("score"), probabilities,
                                          value, fields))
        return predictions


class LinearPredictor(Predictor):
    """A saved TF-IDF linear model (--model tfidf_lr, hf_project.models.linear): texts -> its logits -> the same task
    outputs and prediction columns as a neural text classifier. It reads whole texts (no max_length) on the CPU."""

    def __init__(self, model: LinearTextModel, source: Path, run_dir: Path | None = None) -> None:
        self.model, self.processor, self.modality = model, None, "text"
        self.source, self.run_dir = source, run_dir
        self.settings = {}
        self.stage = get_stage(self.modality)
        self.task = model.task
        self.label_names = list(model.label_names)
        self.device = torch.device("cpu")

    @classmethod
    def load_linear(cls, model_dir: Path, run_dir: Path | None = None) -> LinearPredictor:
        predictor = cls(LinearTextModel.load(model_dir), model_dir, run_dir)
        logger.info("loaded a TF-IDF linear model (%d features, %d outputs) from %s", predictor.model.num_features,
                    len(predictor.model.intercept), model_dir)
        return predictor

    def inputs_for(self, batch: Sequence[Any]) -> dict[str, torch.Tensor]:
        raise UserError("a TF-IDF linear model takes texts, not tensors: call predict() or probabilities()")

    def probabilities(self, inputs: Sequence[Any], batch_size: int = 32, progress: bool | None = None) -> np.ndarray:
        check_inputs(inputs, self.modality)
        if any(not isinstance(x, str) for x in inputs):
            raise UserError("a TF-IDF linear model reads one text per input, not sentence pairs: give plain texts")
        return self.task.outputs(self.model.logits(list(inputs)))


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def check_inputs(inputs: Sequence[Any], modality: str) -> None:
    if len(inputs) == 0:
        raise UserError("no inputs to predict on: the input is empty")
    get_stage(modality).check_inputs(inputs)


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
        if isinstance(path, str) and is_hub_id(path):
            return path, None
        raise UserError(f"model {path} does not exist: give weights/<dataset>/<model>, a run directory or a hub id")
    if not p.is_dir():
        raise UserError(f"{p} is not a model folder: give weights/<dataset>/<model> or a run directory")
    if (p / CONFIG_NAME).is_file() or is_linear_model(p):
        # weights/ and a run's model/ are the same files; a run's model/ also has the run's config.yaml above it
        run_dir = p.parent if p.name == runs.MODEL_DIR and (p.parent / runs.CONFIG_FILE).is_file() else None
        return p, run_dir
    if (p / runs.STATUS_FILE).is_file():
        status = runs.read_status(p)
        if not ((p / runs.MODEL_DIR / CONFIG_NAME).is_file() or is_linear_model(p / runs.MODEL_DIR)):
            raise UserError(f"run {p} has no saved model (status: {status}): pick a complete run")
        if status != runs.STATUS_COMPLETE:
            logger.warning("run %s is %s, not complete", p, status)
        return p / runs.MODEL_DIR, p
    run = newest_complete_run(p)
    if run is not None:
        logger.info("newest complete run under %s: %s", p, run.name)
        return run / runs.MODEL_DIR, run
    raise UserError(f"{p} is not a model folder (no config.json) nor a run directory: point at "
                    "weights/<dataset>/<model> or runs/<dataset>/<model>/<run>")


def read_run_config(run_dir: Path) -> dict[str, Any]:
    try:
        return runs.read_config(run_dir)
    except (OSError, yaml.YAMLError, ValueError) as err:
        logger.warning("cannot read %s/%s (%s): using the model's own limits", run_dir, runs.CONFIG_FILE, err)
        return {}


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


def collect_inputs(paths: Sequence[str | Path], modality: str, text_column: str = "text",
                   text_pair_column: str | None = None) -> list[Any]:
    """The inputs of files and folders, as the modality reads them: texts (or sentence pairs, from two columns) from
    table files, or image/audio files from folders and file names."""
    stage = get_stage(modality)
    items: list[Any] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise UserError(f"input {p} does not exist")
        items += stage.read_inputs(p, (text_column, text_pair_column) if text_pair_column else text_column)
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
        score = "" if p.score is None else f"{p.score:.3f}"
        lines.append(f"{text:<{width}}  {p.label:<20} {score:>6}")
    if len(predictions) > limit:
        lines.append(f"... and {len(predictions) - limit} more")
    return "\n".join(lines)


def predict_files(model: str | Path, inputs: Sequence[str | Path], output: str | Path, text_column: str = "text",
                  batch_size: int = 32, text_pair_column: str | None = None) -> list[Prediction]:
    """Load `model`, predict on `inputs` and write `output` (CSV); what scripts/predict.py runs."""
    predictor = Predictor.load(model)
    items = collect_inputs(inputs, predictor.modality, text_column, text_pair_column)
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
    with open(run_dir / runs.PREDICTIONS_FILE, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:limit]
    modality = modality_of_run(run_dir)
    column = "input" if rows and "input" in rows[0] else modality  # early runs named the column after the modality
    values = [r[column] for r in rows]
    run_config = read_run_config(run_dir)
    # The file holds inputs that are not files (texts) themselves, and single-file inputs by their path; a pair is
    # one string there, so pairs come from the rebuilt split
    if not run_config.get("text_pair_column") and (not get_stage(modality).INPUT_SUFFIXES
                                                   or all(Path(v).is_file() for v in values)):
        return values, rows
    from hf_project.config import config_from_dict
    from hf_project.data import prepare_data

    cfg = config_from_dict(run_config)
    data = prepare_data(cfg.data, cfg.data.split_seed)
    test = data.splits["test"].select(range(len(rows)))
    return get_stage(data.modality).raw_inputs(test), rows


def modality_of_run(run_dir: str | Path) -> str:
    """What the run's saved model classifies (models.modality_of)."""
    from transformers import AutoConfig

    if is_linear_model(Path(run_dir) / runs.MODEL_DIR):
        return "text"
    return modality_of(AutoConfig.from_pretrained(Path(run_dir) / runs.MODEL_DIR)) or "text"
