"""Text stage: raw text -> token ids, with a content-keyed cache so a second run skips tokenisation.

Implements hf_project.modalities.ModalityStage through its top-level names.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from datasets import Dataset, DatasetDict, Features, Value, load_from_disk
from transformers import AutoTokenizer, DataCollatorWithPadding, PreTrainedTokenizerBase

from hf_project import runs
from hf_project.cache import default_cache_dir
from hf_project.config import DataArguments
from hf_project.errors import UserError
from hf_project.models.lstm import train_lstm_tokenizer
from hf_project.models.registry import ModelSpec, hub_error

if TYPE_CHECKING:
    from hf_project.config import ExperimentConfig
    from hf_project.data import PreparedData

logger = logging.getLogger(__name__)

CACHE_VERSION = "2"  # bump when the tokenised layout changes (2: the FULL_LENGTH column)
TEXT_PAIR = "text_pair"  # the column of a sentence pair's second text (--text_pair_column) in every prepared split
PAIR_SEPARATOR = " ||| "  # between the two texts of a pair where one string names the input (predictions CSV)
FULL_LENGTH = "full_length"  # tokenised column: each text's token count before truncation at max_length
TRUNCATION_WARNING = 0.1  # warn when more than this share of the training texts is truncated


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
    pairs = TEXT_PAIR in splits["train"].column_names
    # the split hash covers the pair column's content; `pairs` keeps a pair and a single-text layout apart anyway
    pair_key = "|pairs" if pairs else ""
    key = hashlib.sha256(f"{CACHE_VERSION}|{data_key}|{tokenizer_hash(tokenizer)}|{max_length}{pair_key}".encode())
    target = Path(cache_dir or default_cache_dir()) / "tokenized" / key.hexdigest()[:24]
    if (target / "dataset_dict.json").is_file():
        logger.info("tokenised data loaded from cache %s", target)
        return load_from_disk(str(target))

    def encode(batch: dict) -> dict:
        firsts, seconds = batch["text"], batch[TEXT_PAIR] if pairs else None
        # Untruncated first, for the length facts (input_facts); only the texts that are too long are encoded again,
        # truncated: below max_length truncation changes nothing. verbose=False: no "longer than the maximum" warning.
        enc = tokenizer(firsts, seconds, truncation=False, verbose=False)
        full = [len(ids) for ids in enc["input_ids"]]
        long = [i for i, n in enumerate(full) if n > max_length]
        if long:
            # a pair is truncated longest first (truncation=True), the way run_glue truncates
            cut = tokenizer([firsts[i] for i in long], [seconds[i] for i in long] if pairs else None, truncation=True,
                            max_length=max_length)
            for key in enc:
                for j, i in enumerate(long):
                    enc[key][i] = cut[key][j]
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        enc[FULL_LENGTH] = full
        return enc

    logger.info("tokenising (max_length %d) into cache %s", max_length, target)
    tokenized = splits.map(encode, batched=True, remove_columns=["text", *([TEXT_PAIR] if pairs else [])],
                           desc="tokenising")
    try:
        with runs.atomic_path(target, suffix="") as tmp:
            tokenized.save_to_disk(str(tmp))
    except OSError as err:
        # os.replace cannot put a folder over a full one: another process won the race, and its copy is identical
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not (target / "dataset_dict.json").is_file():
            raise
    return load_from_disk(str(target))


SPLITS_BATCHES = True  # batches of token sequences pad to their longest: --batching split cuts them
PIPELINE_TAG = "text-classification"  # the Hugging Face task of a text classifier (or regressor): model cards
TRAINER_OPTIONS = {"length_column_name": "length"}  # --batching group turns on transformers' group_by_length
INPUT_SUFFIXES: tuple[str, ...] = ()  # texts come many to a table file, not one to a file
FEATURE = None  # any column that is not an image or audio column holds text
TABLE_SUFFIXES = (".csv", ".json", ".jsonl", ".txt")  # the files scripts/predict.py reads texts from
# The keys of a batch MicroBatchCollator split: the padded blocks, and the batch row of each block row (the labels
# stay whole, in batch order). ClassificationTrainer.compute_loss reads them.
MICRO_BATCHES = "micro_batches"
MICRO_ORDER = "micro_order"

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
        return {MICRO_BATCHES: micro, MICRO_ORDER: torch.tensor(order), "labels": torch.tensor(labels)}


def longest_first(lengths: Sequence[int]) -> list[int]:
    """Indices of `lengths` from the longest to the shortest, ties in their original order."""
    lengths = lengths[:]  # one bulk read: a datasets Column (length_order's) formats a whole row for each index
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


def load_folder(root: Path, split_dirs: Mapping[str, Path]) -> DatasetDict:
    raise UserError(f"{root}: text data is read from a csv/json/parquet file or a hub dataset, not a folder of files")


def _texts(rows: Dataset, column: str, split: str, role: str, flag: str) -> list[str]:
    """The strings of `column`; missing ones are read as empty strings (with a warning), other values refused."""
    texts = rows[column][:]  # in bulk: iterating a datasets Column formats one row at a time
    if any(not isinstance(t, str) for t in texts if t is not None):
        raise UserError(f"{role} column {column!r} does not hold text: pick a string column with {flag}")
    n_missing = sum(t is None for t in texts)
    if n_missing:
        logger.warning("%s split: %d rows with no %s are read as empty strings", split, n_missing, role)
    return ["" if t is None else t for t in texts]


def split_inputs(rows: Dataset, column: str, split: str) -> Dataset:
    """The texts of `column` as a "text" column of strings; missing texts are read as empty strings."""
    texts = _texts(rows, column, split, "text", "--text_column")
    return Dataset.from_dict({"text": texts}, features=Features({"text": Value("string")}))


def with_pairs(inputs: Dataset, rows: Dataset, column: str, split: str) -> Dataset:
    """`inputs` (split_inputs' "text" column) with the second texts of `column` as a TEXT_PAIR column."""
    return inputs.add_column(TEXT_PAIR, _texts(rows, column, split, "text pair", "--text_pair_column"))


def load_processor(spec: ModelSpec, data: PreparedData, cfg: ExperimentConfig) -> PreTrainedTokenizerBase:
    """The checkpoint's tokenizer, or for the LSTM a new vocabulary learnt from the training split only (both texts
    of pairs, which it reads joined by a [SEP] token)."""
    if spec.from_scratch:
        train = data.splits["train"]
        pairs = list(train[TEXT_PAIR]) if TEXT_PAIR in train.column_names else None
        texts = list(train["text"]) + (pairs or [])
        tokenizer = train_lstm_tokenizer(texts, vocab_size=cfg.model.lstm_vocab_size, pairs=pairs is not None)
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


def input_facts(prepared: DatasetDict, cfg: ExperimentConfig) -> dict[str, Any]:
    """runs.TEXT_LENGTHS: per split, the median and 95th percentile of the token length before truncation (values
    that occur: 95% of the texts have at most p95 tokens) and the share of texts longer than max_length, which
    truncation cut. Logged, with a warning when more than TRUNCATION_WARNING of the training texts were cut."""
    max_length = cfg.data.max_length
    facts = {}
    for split, ds in prepared.items():
        lengths = np.asarray(ds[FULL_LENGTH] if FULL_LENGTH in ds.column_names else ds["length"])
        if not len(lengths):
            continue
        p50, p95 = np.percentile(lengths, [50, 95], method="inverted_cdf")
        facts[split] = {"p50": int(p50), "p95": int(p95), "truncated": round(float(np.mean(lengths > max_length)), 4),
                        "max_length": max_length}
    logger.info("token lengths before truncation at %d: %s", max_length, "; ".join(
        f"{split} median {f['p50']}, p95 {f['p95']}, {f['truncated']:.1%} truncated" for split, f in facts.items()))
    train = facts.get("train", {}).get("truncated", 0.0)
    if train > TRUNCATION_WARNING:
        logger.warning("%.1f%% of the training texts are longer than --max_length %d tokens and lose their end "
                       "(95%% have at most %d tokens): consider a larger --max_length", 100 * train, max_length,
                       facts["train"]["p95"])
    return {runs.TEXT_LENGTHS: facts}


def collator(tokenizer: PreTrainedTokenizerBase) -> DataCollatorWithPadding:
    return DataCollatorWithPadding(tokenizer)


def lstm_inputs(tokenizer: PreTrainedTokenizerBase, cfg: ExperimentConfig) -> dict[str, Any]:
    return {"input_type": "tokens", "vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}


def describe_split(ds: Dataset) -> list[str]:
    return [describe_input(x) for x in raw_inputs(ds)]


def raw_inputs(ds: Dataset) -> list[Any]:
    """The texts of a prepared split, or (text, second text) tuples for pairs: what Predictor.predict takes."""
    if TEXT_PAIR in ds.column_names:
        return list(zip(ds["text"], ds[TEXT_PAIR], strict=True))
    return list(ds["text"])


def display_values(values: list[Any]) -> list[Any]:
    return list(values)


# ---------------------------------------------------------------------------------------------------------------
# inference


def saved_processor(model_config: Any, tokenizer: PreTrainedTokenizerBase | None, where: str) -> Any:
    if tokenizer is None:
        raise UserError(f"{where} has no saved tokenizer")
    return tokenizer


def input_settings(run_config: Mapping[str, Any], model_config: Any, tokenizer: Any, where: str) -> dict[str, Any]:
    """max_length: the run's, else the limit saved with the model (default_max_length); pairs: whether the run
    trained on sentence pairs (its --text_pair_column), unknown (None) for a bare model folder."""
    pairs = bool(run_config.get("text_pair_column")) if run_config else None
    return {"max_length": run_config.get("max_length") or default_max_length(model_config, tokenizer), "pairs": pairs}


def default_max_length(model_config: Any, tokenizer: Any) -> int:
    """Without a run: the tokenizer's recorded limit, else the model's positions, else the training default."""
    limits = [getattr(tokenizer, "model_max_length", None), getattr(model_config, "max_position_embeddings", None)]
    limits = [int(v) for v in limits if isinstance(v, int | float) and 0 < v < 1_000_000]
    if not limits:
        default = next(f.default for f in dataclasses.fields(DataArguments) if f.name == "max_length")
        logger.info("no length limit recorded with the model: truncating to %d tokens", default)
        return default
    return min(limits)


def read_inputs(path: Path, column: str | tuple[str, str]) -> list[Any]:
    """The texts of `column`, or for a (text column, pair column) tuple the (text, second text) pairs."""
    if path.is_dir() or path.suffix.lower() not in TABLE_SUFFIXES:
        raise UserError(f"{path} is not a CSV/JSON/JSONL/TXT file: a text model reads texts from such a file")
    if isinstance(column, tuple):
        if path.suffix == ".txt":
            raise UserError(f"{path} is a plain text file: sentence pairs are read from a CSV, JSON or JSON Lines file")
        first, second = column
        return list(zip(read_table(path, first), read_table(path, second, "--text_pair_column"), strict=True))
    return read_table(path, column)


def read_table(path: Path, column: str, flag: str = "--text_column") -> list[str]:
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
                        f"pass {flag}")
    return ["" if r.get(column) is None else str(r[column]) for r in rows]


def is_pair(x: Any) -> bool:
    return isinstance(x, tuple | list) and len(x) == 2 and all(isinstance(t, str) for t in x)


def check_inputs(inputs: Sequence[Any]) -> None:
    """Strings, or (text, second text) pairs: all of one kind."""
    pairs = bool(inputs) and is_pair(inputs[0])
    bad = next((x for x in inputs if not (is_pair(x) if pairs else isinstance(x, str))), None)
    if bad is not None:
        wanted = "(text, second text) pairs like the first input" if pairs else "strings"
        raise UserError(f"a text model needs {wanted}, got {type(bad).__name__} ({str(bad)[:60]!r})")


def encode_inputs(texts: Sequence[str], tokenizer: Any, settings: Mapping[str, Any]) -> list[dict[str, list[int]]]:
    """Texts (or pairs) tokenised together, truncated where training truncated; padded per batch by
    collate_inputs. A model trained on pairs needs pairs, and one trained on single texts single texts."""
    pairs = bool(texts) and is_pair(texts[0])
    if settings.get("pairs") is not None and pairs != settings["pairs"]:
        raise UserError("this model was trained on sentence pairs: give (text, second text) pairs (predict.py: "
                        "--text_pair_column)" if settings["pairs"] else
                        "this model was trained on single texts, not pairs: give one text per input")
    firsts = [x[0] for x in texts] if pairs else list(texts)
    encoded = tokenizer(firsts, [x[1] for x in texts] if pairs else None, truncation=True,
                        max_length=settings.get("max_length"))
    return [{k: v[i] for k, v in encoded.items()} for i in range(len(texts))]


def batch_order(encoded: Sequence[dict[str, list[int]]]) -> list[int]:
    return longest_first([len(f["input_ids"]) for f in encoded])


def collate_inputs(encoded: Sequence[dict[str, list[int]]], tokenizer: Any,
                   settings: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    return DataCollatorWithPadding(tokenizer)(list(encoded))


def describe_input(value: Any) -> str:
    return PAIR_SEPARATOR.join(value) if is_pair(value) else str(value)
