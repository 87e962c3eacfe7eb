"""Shared fixtures: offline environment, tiny checkpoints saved to disk, small real text data."""

from __future__ import annotations

import os
import tempfile

# Set before anything imports huggingface_hub, which reads these once.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("HF_PROJECT_CACHE", tempfile.mkdtemp(prefix="hf_project_cache-"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import csv  # noqa: E402
import random  # noqa: E402
import socket  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
# A few well-separated fortune categories: small enough for seconds of training, real text all the same.
SAMPLE_CATEGORIES = ("startrek", "law", "food")


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # Two cores shared with pytest workers and tokenizers: one intra-op thread is much faster for tiny models.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer, hidden-32 random-init BERT with the real MiniLM vocabulary, loaded later by path."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from hf_project.models.registry import resolve

    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(resolve("minilm").checkpoint)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def fortune_rows(categories=SAMPLE_CATEGORIES, per_class: int = 60) -> list[dict[str, str]]:
    from hf_project.data.builtin import fortune_files, parse_cookies

    rows = []
    for path in fortune_files():
        if path.name in categories:
            cookies = [c for c in parse_cookies(path) if len(c) < 400][:per_class]
            rows.extend({"text": c, "label": path.name} for c in cookies)
    random.Random(0).shuffle(rows)
    return rows


def write_csv(path: Path, rows: list[dict], fieldnames: list[str] | None = None) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def fortunes_csv(tmp_path_factory) -> Path:
    """180 real cookies from three categories as a local csv file."""
    return write_csv(tmp_path_factory.mktemp("data") / "sample.csv", fortune_rows())


@pytest.fixture
def out_dirs(tmp_path) -> list[str]:
    """--runs_dir and --weights_dir flags pointing into a fresh temp folder."""
    return ["--runs_dir", str(tmp_path / "runs"), "--weights_dir", str(tmp_path / "weights")]


@pytest.fixture
def blocked_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Make socket connections and DNS lookups fail, recording attempts (evaluate swallows some errors)."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access is blocked in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return attempts
