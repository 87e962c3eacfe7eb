"""Models from an alias, a hub id or a local folder; the LSTM is built from scratch on the training split."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from hf_project.errors import UserError
from hf_project.models import lstm  # noqa: F401  (registers the LSTM with the Auto classes)
from hf_project.models.lstm import LSTMConfig, LSTMForSequenceClassification, train_lstm_tokenizer
from hf_project.models.registry import ModelSpec, hub_error

if TYPE_CHECKING:
    from hf_project.config import ModelArguments
    from hf_project.data import PreparedData

logger = logging.getLogger(__name__)


def load_tokenizer(spec: ModelSpec, data: PreparedData, args: ModelArguments) -> PreTrainedTokenizerBase:
    """The checkpoint's tokenizer, or for the LSTM a new vocabulary learnt from the training split only."""
    if spec.from_scratch:
        return train_lstm_tokenizer(list(data.splits["train"]["text"]), vocab_size=args.lstm_vocab_size)
    try:
        return AutoTokenizer.from_pretrained(spec.checkpoint)
    except (OSError, ValueError) as err:
        raise hub_error(spec.checkpoint, err) from None


def build_model(
    spec: ModelSpec, label_names: list[str], tokenizer: PreTrainedTokenizerBase, args: ModelArguments
) -> PreTrainedModel:
    id2label = dict(enumerate(label_names))
    label2id = {name: i for i, name in id2label.items()}
    if spec.from_scratch:
        config = LSTMConfig(
            vocab_size=len(tokenizer),
            embedding_dim=args.lstm_embedding_dim,
            hidden_size=args.lstm_hidden_size,
            num_layers=args.lstm_num_layers,
            bidirectional=args.lstm_bidirectional,
            dropout=args.lstm_dropout,
            pooling=args.lstm_pooling,
            pad_token_id=tokenizer.pad_token_id,
            num_labels=len(label_names),
            id2label=id2label,
            label2id=label2id,
        )
        return LSTMForSequenceClassification(config)
    try:
        # The classification head is new (or resized): its size follows this dataset's labels.
        return AutoModelForSequenceClassification.from_pretrained(
            spec.checkpoint, num_labels=len(label_names), id2label=id2label, label2id=label2id,
            ignore_mismatched_sizes=True,
        )
    except OSError as err:
        raise hub_error(spec.checkpoint, err) from None


def load_model(path: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A saved model folder (weights/<dataset>/<model>/ or a run's model/), transformer or LSTM alike."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise UserError(f"{path} is not a saved model folder (no config.json): point at weights/<dataset>/<model>")
    model = AutoModelForSequenceClassification.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model.eval(), tokenizer
