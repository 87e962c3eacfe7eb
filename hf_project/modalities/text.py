"""Text stage: raw text -> token ids, with a content-keyed cache so a second run skips tokenisation."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datasets import DatasetDict, load_from_disk
from transformers import AutoTokenizer, DataCollatorWithPadding, PreTrainedTokenizerBase

from hf_project.models.lstm import train_lstm_tokenizer
from hf_project.models.registry import ModelSpec, hub_error

if TYPE_CHECKING:
    from hf_project.config import ExperimentConfig
    from hf_project.data import PreparedData

logger = logging.getLogger(__name__)

CACHE_VERSION = "1"  # bump when the tokenised layout changes


def default_cache_dir() -> Path:
    return Path(os.environ.get("HF_PROJECT_CACHE", Path.home() / ".cache" / "hf_project"))


def tokenizer_hash(tokenizer: PreTrainedTokenizerBase) -> str:
    """Identifies what the tokenizer does, not where it came from."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # Calling the tokenizer with truncation/padding mutates these two entries; they are per-call settings.
        state = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
        content = json.dumps(state, sort_keys=True)
    else:
        content = repr(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256((type(tokenizer).__name__ + content).encode()).hexdigest()[:16]


def tokenize(
    splits: DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    data_key: str,
    cache_dir: str | Path | None = None,
) -> DatasetDict:
    """Token ids, attention mask, label and length per example; no padding (the collator pads per batch).

    `data_key` must identify the split content (the split hash covers the data fingerprint and indices).
    """
    key = hashlib.sha256(f"{CACHE_VERSION}|{data_key}|{tokenizer_hash(tokenizer)}|{max_length}".encode())
    target = Path(cache_dir or default_cache_dir()) / "tokenized" / key.hexdigest()[:24]
    if (target / "dataset_dict.json").is_file():
        logger.info("tokenised data loaded from cache %s", target)
        return load_from_disk(str(target))

    def encode(batch: dict) -> dict:
        enc = tokenizer(batch["text"], truncation=True, max_length=max_length)
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        return enc

    logger.info("tokenising (max_length %d) into cache %s", max_length, target)
    tokenized = splits.map(encode, batched=True, remove_columns=["text"], desc="tokenising")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    try:
        tokenized.save_to_disk(str(tmp))
        if target.exists():  # another process won the race; its copy is identical
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return load_from_disk(str(target))


TRAINER_OPTIONS = {"train_sampling_strategy": "group_by_length", "length_column_name": "length"}


def load_processor(spec: ModelSpec, data: PreparedData, cfg: ExperimentConfig) -> PreTrainedTokenizerBase:
    """The checkpoint's tokenizer, or for the LSTM a new vocabulary learnt from the training split only."""
    if spec.from_scratch:
        tokenizer = train_lstm_tokenizer(list(data.splits["train"]["text"]), vocab_size=cfg.model.lstm_vocab_size)
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(spec.checkpoint)
        except (OSError, ValueError) as err:
            raise hub_error(spec.checkpoint, err) from None
    # Saved with the model (tokenizer_config.json): inference from weights/ truncates where training did.
    tokenizer.model_max_length = cfg.data.max_length
    return tokenizer


def prepare(data: PreparedData, tokenizer: PreTrainedTokenizerBase, cfg: ExperimentConfig) -> DatasetDict:
    return tokenize(data.splits, tokenizer, cfg.data.max_length, data.split["hash"], cfg.data.cache_dir)


def collator(tokenizer: PreTrainedTokenizerBase) -> DataCollatorWithPadding:
    return DataCollatorWithPadding(tokenizer)


def lstm_inputs(tokenizer: PreTrainedTokenizerBase, cfg: ExperimentConfig) -> dict[str, Any]:
    return {"input_type": "tokens", "vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}
