"""Models from an alias, a hub id or a local folder; the LSTM is built from scratch for any modality."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from transformers import (
    AutoConfig,
    AutoModelForAudioClassification,
    AutoModelForImageClassification,
    AutoModelForSequenceClassification,
    PreTrainedModel,
)

from hf_project.errors import UserError
from hf_project.models import lstm  # noqa: F401  (registers the LSTM with the Auto classes)
from hf_project.models.lstm import LSTMConfig, LSTMForSequenceClassification
from hf_project.models.registry import ModelSpec, hub_error

logger = logging.getLogger(__name__)

AUTO_CLASSES = {
    "text": AutoModelForSequenceClassification,
    "image": AutoModelForImageClassification,
    "audio": AutoModelForAudioClassification,
}


def modality_of(config: Any) -> str | None:
    """Which data a checkpoint's architecture classifies, from the Auto mappings (None: none of ours)."""
    if isinstance(config, LSTMConfig):
        return getattr(config, "modality", None)
    for modality, auto in AUTO_CLASSES.items():
        if type(config) in auto._model_mapping:
            return modality
    return None


def _pretrained_config(spec: ModelSpec, modality: str) -> Any:
    try:
        config = AutoConfig.from_pretrained(spec.checkpoint)
    except (OSError, ValueError) as err:
        raise hub_error(spec.checkpoint, err) from None
    if type(config) not in AUTO_CLASSES[modality]._model_mapping:
        raise UserError(
            f"model {spec.checkpoint!r} ({config.model_type}) cannot classify {modality} data: "
            f"pick a {modality} checkpoint"
        )
    return config


def build_model(
    spec: ModelSpec, label_names: list[str], modality: str, lstm_inputs: dict[str, Any], model_args: Any
) -> PreTrainedModel:
    """A classifier with a new head sized for these labels; `lstm_inputs` comes from the modality stage."""
    id2label = dict(enumerate(label_names))
    label2id = {name: i for i, name in id2label.items()}
    if spec.from_scratch:
        config = LSTMConfig(
            embedding_dim=model_args.lstm_embedding_dim,
            hidden_size=model_args.lstm_hidden_size,
            num_layers=model_args.lstm_num_layers,
            bidirectional=model_args.lstm_bidirectional,
            dropout=model_args.lstm_dropout,
            pooling=model_args.lstm_pooling,
            num_labels=len(label_names),
            id2label=id2label,
            label2id=label2id,
            modality=modality,
            **lstm_inputs,
        )
        return LSTMForSequenceClassification(config)
    _pretrained_config(spec, modality)
    try:
        # The classification head is new (or resized): its size follows this dataset's labels.
        return AUTO_CLASSES[modality].from_pretrained(
            spec.checkpoint, num_labels=len(label_names), id2label=id2label, label2id=label2id,
            ignore_mismatched_sizes=True,
        )
    except OSError as err:
        raise hub_error(spec.checkpoint, err) from None


def load_model(path: str | Path) -> tuple[PreTrainedModel, Any]:
    """A saved model folder (weights/<dataset>/<model>/ or a run's model/) and its processor, if it has one."""
    from transformers import AutoFeatureExtractor, AutoProcessor

    path = Path(path)
    if not (path / "config.json").is_file():
        raise UserError(f"{path} is not a saved model folder (no config.json): point at weights/<dataset>/<model>")
    config = AutoConfig.from_pretrained(path)
    # The LSTM is registered as a sequence classifier whatever data it reads.
    lstm_model = isinstance(config, LSTMConfig)
    auto = AutoModelForSequenceClassification if lstm_model else AUTO_CLASSES[modality_of(config) or "text"]
    model = auto.from_pretrained(path)
    processor = None
    try:
        processor = AutoProcessor.from_pretrained(path)
    except (OSError, ValueError, TypeError):  # TypeError: wav2vec2/HuBERT's Processor also wants a tokenizer
        if (path / "preprocessor_config.json").is_file():
            processor = AutoFeatureExtractor.from_pretrained(path)
        else:
            logger.info("%s has no saved processor: its inputs are built from the config's front-end", path)
    return model.eval(), processor
