"""Text stage: raw text -> token ids, with a content-keyed cache so a second run skips tokenisation."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from datasets import DatasetDict, load_from_disk
from transformers import AutoTokenizer, DataCollatorWithPadding, PreTrainedTokenizerBase

from hf_project.cache import default_cache_dir
from hf_project.models.lstm import train_lstm_tokenizer
from hf_project.models.registry import ModelSpec, hub_error

if TYPE_CHECKING:
    from hf_project.config import ExperimentConfig
    from hf_project.data import PreparedData

logger = logging.getLogger(__name__)

CACHE_VERSION = "1"  # bump when the tokenised layout changes


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


TRAINER_OPTIONS = {"length_column_name": "length"}  # --batching group turns on transformers' group_by_length

# Cost of one forward+backward over a padded (n, L) block, in token units: n*L*(1 + L/ATTENTION_TOKENS) for the
# layers and attention, plus a fixed MICRO_BATCH_OVERHEAD per block (op dispatch, the dense embedding gradient).
# Measured for MiniLM-L6 on 2 CPU cores: ~0.5 ms per token and ~55 ms per block (benchmarks/BENCHMARKS.md).
ATTENTION_TOKENS = 256
MICRO_BATCH_OVERHEAD = 128


class MicroBatchCollator:
    """Keeps the batch the sampler drew, but pads it as length-sorted micro-batches.

    A random batch of texts pads every row to its longest one, and most of the compute goes into padding. Here the
    rows are sorted by length and cut where the padding saved outweighs the fixed cost of one more forward pass (a
    small dynamic programme over the cost model above). ClassificationTrainer.compute_loss runs the micro-batches,
    puts the logits back in batch order and takes the loss over the whole batch, so the gradient is the one of the
    unsplit batch: only the padding (which attention masks anyway) is gone. Unlike transformers' group_by_length,
    which batches texts of similar length together, the batches stay random: text length often goes with the class.
    """

    def __init__(self, pad: Callable[[list[dict]], dict], overhead: float = MICRO_BATCH_OVERHEAD) -> None:
        self.pad, self.overhead = pad, overhead

    def __call__(self, features: list[dict]) -> dict[str, Any]:
        lengths = [len(f["input_ids"]) for f in features]
        order = longest_first(lengths)
        cuts = split_points([lengths[i] for i in order], self.overhead)
        if len(cuts) <= 2:
            return self.pad(features)
        micro = []
        for start, stop in zip(cuts, cuts[1:], strict=False):
            block = self.pad([features[i] for i in order[start:stop]])
            block.pop("labels", None)
            micro.append(dict(block))
        labels = [f["labels"] if "labels" in f else f["label"] for f in features]
        return {"micro_batches": micro, "micro_order": torch.tensor(order), "labels": torch.tensor(labels)}


def longest_first(lengths: list[int]) -> list[int]:
    """Indices of `lengths` from the longest to the shortest, ties in their original order."""
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


def block_cost(n: int, length: int, overhead: float) -> float:
    return n * length * (1 + length / ATTENTION_TOKENS) + overhead


def split_points(sorted_lengths: list[int], overhead: float) -> list[int]:
    """Cut positions [0, ..., n] of lengths sorted longest first into blocks of least total cost."""
    n = len(sorted_lengths)
    best, nxt = [0.0] * (n + 1), [n] * (n + 1)
    for i in range(n - 1, -1, -1):
        best[i] = float("inf")
        for j in range(n, i, -1):  # block i..j-1 pads to sorted_lengths[i]; on a tie the larger block wins
            cost = best[j] + block_cost(j - i, sorted_lengths[i], overhead)
            if cost < best[i]:
                best[i], nxt[i] = cost, j
    cuts, i = [0], 0
    while i < n:
        i = nxt[i]
        cuts.append(i)
    return cuts


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
