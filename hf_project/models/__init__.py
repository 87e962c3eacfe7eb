"""Models from an alias, a hub id or a local folder; the LSTM is built from scratch for any modality."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForAudioClassification,
    AutoModelForImageClassification,
    AutoModelForSequenceClassification,
    PreTrainedModel,
)
from transformers.utils import CONFIG_NAME, FEATURE_EXTRACTOR_NAME

from hf_project.errors import UserError
from hf_project.models import lstm  # noqa: F401  (registers the LSTM with the Auto classes)
from hf_project.models.lstm import LSTMConfig, LSTMForSequenceClassification
from hf_project.models.registry import ModelSpec, aliases_for, hub_error

logger = logging.getLogger(__name__)

# Whisper's front-end makes 100 log-mel frames a second (16 kHz, hop 160) and its encoder's second convolution
# (stride 2) halves them: one encoder position per 20 ms.
WHISPER_POSITIONS_PER_S = 50

AUTO_CLASSES = {
    "text": AutoModelForSequenceClassification,
    "image": AutoModelForImageClassification,
    "audio": AutoModelForAudioClassification,
}


def supports(modality: str, config: Any) -> bool:
    """Whether transformers has a classification head of `modality` data for this config's architecture."""
    # _model_mapping is private, but it is the only exact answer (the Auto class itself raises only on loading)
    return type(config) in AUTO_CLASSES[modality]._model_mapping


def modality_of(config: Any, prefer: str | None = None) -> str | None:
    """Which data a model classifies (None: none of ours).

    The LSTM records it in its config; one saved before it did is named by its front-end, else its token inputs make
    it a text model. A pretrained architecture classifies what an Auto class has a head for: `prefer` when it is
    among several, else the first of AUTO_CLASSES.
    """
    if isinstance(config, LSTMConfig):
        frontend = getattr(config, "frontend", None) or {}
        recorded = getattr(config, "modality", None) or frontend.get("modality")
        return recorded or ("text" if getattr(config, "input_type", "tokens") == "tokens" else None)
    if prefer is not None and supports(prefer, config):
        return prefer
    return next((modality for modality in AUTO_CLASSES if supports(modality, config)), None)


def pretrained_config(checkpoint: str, modality: str) -> Any:
    """The checkpoint's config; a checkpoint that cannot classify `modality` data is refused with the aliases that
    can, before any weights or processor load."""
    try:
        config = AutoConfig.from_pretrained(checkpoint)
    except (OSError, ValueError) as err:
        raise hub_error(checkpoint, err) from None
    if not supports(modality, config):
        article = "an" if modality[0] in "aeiou" else "a"
        raise UserError(
            f"model {checkpoint!r} ({config.model_type}) cannot classify {modality} data: "
            f"pick {article} {modality} checkpoint ({', '.join(aliases_for(modality))})"
        )
    return config


def whisper_positions(config: Any, max_duration_s: float | None, checkpoint: str) -> int | None:
    """Encoder positions a Whisper checkpoint needs for clips of `max_duration_s` (None: not Whisper, or no length).

    transformers' WhisperEncoder takes exactly max_source_positions * 2 mel frames, so short clips would pay for
    30 s of padding; the positional table is cut to the clip length instead, never lengthened.
    """
    if max_duration_s is None or getattr(config, "model_type", None) != "whisper":
        return None
    positions = math.ceil(round(max_duration_s * WHISPER_POSITIONS_PER_S, 6))  # round: 1.1 * 50 is 55.00000000000001
    full = config.max_source_positions
    if positions > full:
        limit = full / WHISPER_POSITIONS_PER_S
        raise UserError(
            f"--max_duration_s {max_duration_s:g} needs {positions} encoder positions, but the positional table of "
            f"Whisper model {checkpoint!r} has {full} ({limit:g} s): use --max_duration_s {limit:g} or less"
        )
    return positions


def cut_positions(model: PreTrainedModel, positions: int) -> None:
    """Keep the first `positions` rows of a Whisper encoder's positional table (a slice, not a new initialisation);
    the config follows, so the saved model loads with the cut table."""
    encoder = model.encoder
    table = torch.nn.Embedding(positions, encoder.embed_positions.embedding_dim)
    table.weight.data.copy_(encoder.embed_positions.weight.data[:positions])
    table.requires_grad_(False)  # Whisper's table is fixed, as WhisperEncoder.__init__ leaves it
    encoder.embed_positions = table
    encoder.max_source_positions = positions
    model.config.max_source_positions = positions  # the encoder shares this config object


def build_model(
    spec: ModelSpec, label_names: list[str], modality: str, lstm_inputs: dict[str, Any], model_args: Any,
    max_duration_s: float | None = None, task: Any = None,
) -> PreTrainedModel:
    """A classifier with a new head sized for these labels and `task` (hf_project.tasks: one output per class or
    label, or a single one for a regression, whose config records what inference needs); `lstm_inputs` comes from
    the modality stage.

    `max_duration_s` (the audio clip length) cuts a Whisper encoder's positional table to that length.
    """
    id2label = dict(enumerate(label_names))
    label2id = {name: i for i, name in id2label.items()}
    num_labels = task.num_outputs(label_names) if task is not None else len(label_names)
    settings = task.model_settings() if task is not None else {}
    if spec.from_scratch:
        config = LSTMConfig(
            embedding_dim=model_args.lstm_embedding_dim,
            hidden_size=model_args.lstm_hidden_size,
            num_layers=model_args.lstm_num_layers,
            bidirectional=model_args.lstm_bidirectional,
            dropout=model_args.lstm_dropout,
            pooling=model_args.lstm_pooling,
            num_labels=num_labels,
            id2label=id2label,
            label2id=label2id,
            modality=modality,
            **settings,
            **lstm_inputs,
        )
        return LSTMForSequenceClassification(config)
    config = pretrained_config(spec.checkpoint, modality)
    positions = whisper_positions(config, max_duration_s, spec.checkpoint)
    try:
        # The classification head is new (or resized): its size follows this dataset's labels.
        model = AUTO_CLASSES[modality].from_pretrained(
            spec.checkpoint, num_labels=num_labels, id2label=id2label, label2id=label2id,
            ignore_mismatched_sizes=True, problem_type=settings.pop("problem_type", None),
            **dropout_settings(config, model_args.dropout),
        )
    except OSError as err:
        raise hub_error(spec.checkpoint, err) from None
    freeze_lower(model, model_args.freeze_layers, spec.name)
    model.config.update(settings)  # the threshold or the target's statistics, which from_pretrained would refuse
    if positions is not None and positions < config.max_source_positions:
        logger.info("Whisper positional table cut from %d to %d positions (%.2f s): --max_duration_s %g",
                    config.max_source_positions, positions, positions / WHISPER_POSITIONS_PER_S, max_duration_s)
        cut_positions(model, positions)
    torch_batchnorm_momentum(model)
    return channels_last(model)


def dropout_settings(config: Any, probability: float | None) -> dict[str, float]:
    """Config overrides that set every dropout probability of a checkpoint's config (BERT's hidden_dropout_prob and
    attention_probs_dropout_prob, Whisper's dropout, attention_dropout and activation_dropout, a classifier_dropout
    left unset ...) to `probability`; None keeps the checkpoint's own."""
    if probability is None:
        return {}
    names = [k for k in config.to_dict() if k.endswith(("dropout", "dropout_prob", "dropout_rate"))]
    return {name: float(probability) for name in names}


def blocks_of(model: PreTrainedModel) -> tuple[str, torch.nn.ModuleList] | None:
    """The base model's stack of blocks (BERT's encoder.layer, Whisper's encoder.layers, ...): its longest ModuleList,
    with its qualified name; None when it has none."""
    lists = [(name, m) for name, m in model.named_modules() if isinstance(m, torch.nn.ModuleList) and len(m)]
    if not lists:
        return None
    return max(lists, key=lambda item: len(item[1]))  # max keeps the first of equal lengths: the lowest in the model


def freeze_lower(model: PreTrainedModel, count: int, name: str) -> None:
    """Freeze the embeddings (every parameter registered before the first block) and the `count` lowest blocks of a
    pretrained model: no gradient, no optimiser state. The head and the blocks above keep training."""
    if count <= 0:
        return
    found = blocks_of(model)
    if found is None:
        raise UserError(f"--freeze_layers {count}: {name} has no stack of blocks to freeze; leave --freeze_layers out")
    prefix, blocks = found
    if count > len(blocks):
        raise UserError(f"--freeze_layers {count}, but {name} has {len(blocks)} blocks: use at most {len(blocks)}")
    params = list(model.named_parameters())  # in registration order: embeddings, blocks, what comes after
    first_block = next(i for i, (pname, _) in enumerate(params) if pname.startswith(f"{prefix}."))
    frozen = [p for _, p in params[:first_block]] + list(blocks[:count].parameters())
    for param in frozen:  # the blocks above, the final norm, the pooler and the head keep training
        param.requires_grad_(False)
    logger.info("%s: the embeddings and the %d lowest of %d blocks frozen (%s parameters)", name, count, len(blocks),
                f"{sum(p.numel() for p in frozen):,}")


def set_output_bias(model: PreTrainedModel, bias: list[float]) -> None:
    """Set the biases of the classification head's output layer: the last linear layer with one output per label
    (`classifier`, `score`, RoBERTa's `classifier.out_proj`, ...)."""
    outputs = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == len(bias)
               and m.bias is not None]
    if not outputs:
        raise ValueError(f"{type(model).__name__} has no linear output layer of {len(bias)} outputs with a bias")
    with torch.no_grad():
        outputs[-1].bias.copy_(torch.tensor(bias, dtype=outputs[-1].bias.dtype))


def channels_last(model: PreTrainedModel) -> PreTrainedModel:
    """Convolutional image models in channels-last layout: oneDNN's (and cuDNN's) fast path; on 2 CPU cores
    MobileNetV2 trains 1.5x faster (BENCHMARKS.md). Saved weights are the same tensors."""
    if any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        model = model.to(memory_format=torch.channels_last)
    return model


def torch_batchnorm_momentum(model: torch.nn.Module) -> None:
    """BatchNorm layers ported from TensorFlow with its decay as PyTorch's momentum (transformers' MobileNetV2
    uses momentum=0.997) would let each training batch replace ~all of the running statistics, so evaluation would
    normalise with the last batch's. They get PyTorch's (and torchvision's) 0.1 instead."""
    fixed = 0
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and (module.momentum or 0) > 0.5:
            module.momentum = 0.1
            fixed += 1
    if fixed:
        logger.info("%d BatchNorm layers: momentum set to 0.1 (the checkpoint's class uses TensorFlow's decay)", fixed)


def load_model(path: str | Path) -> tuple[PreTrainedModel, Any]:
    """A saved model folder (weights/<dataset>/<model>/ or a run's model/) and its processor, if it has one."""
    from transformers import AutoFeatureExtractor, AutoProcessor

    path = Path(path)
    if not (path / CONFIG_NAME).is_file():
        raise UserError(f"{path} is not a saved model folder (no config.json): point at weights/<dataset>/<model>")
    config = AutoConfig.from_pretrained(path)
    # The LSTM is registered as a sequence classifier whatever data it reads.
    lstm_model = isinstance(config, LSTMConfig)
    auto = AutoModelForSequenceClassification if lstm_model else AUTO_CLASSES[modality_of(config) or "text"]
    model = channels_last(auto.from_pretrained(path))  # as in training, so predictions match its evaluation
    processor = None
    try:
        processor = AutoProcessor.from_pretrained(path)
    except (OSError, ValueError, TypeError):  # TypeError: wav2vec2/HuBERT's Processor also wants a tokenizer
        if (path / FEATURE_EXTRACTOR_NAME).is_file():
            processor = AutoFeatureExtractor.from_pretrained(path)
        else:
            logger.info("%s has no saved processor: its inputs are built from the config's front-end", path)
    return model.eval(), processor
