"""Training behaviour: loss at init, learning, exact repeatability, class weights, the tokenisation cache."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hf_project.config import DataArguments, parse_args
from hf_project.data import prepare_data
from hf_project.errors import UserError
from hf_project.modalities import text
from hf_project.models import build_model
from hf_project.models.registry import resolve
from hf_project.runs import find_runs
from hf_project.training import ClassificationTrainer, run_experiment

FAST = ["--num_train_epochs", "3", "--per_device_train_batch_size", "16", "--logging_steps", "3",
        "--max_length", "48", "--learning_rate", "0.003", "--lstm_learning_rate", "0.005",
        "--lstm_embedding_dim", "32", "--lstm_hidden_size", "32"]


def experiment(fortunes_csv: Path, model: str, out_dirs: list[str], *extra: str) -> dict:
    return run_experiment(parse_args(["--dataset", str(fortunes_csv), "--model", model, *FAST, *out_dirs, *extra]))


def train_losses(run_dir: Path) -> list[float]:
    history = json.loads((run_dir / "log_history.json").read_text())
    return [e["loss"] for e in history if "loss" in e]


@pytest.mark.parametrize("model", ["tiny_bert", "lstm"])
def test_loss_at_init_is_log_num_classes(fortunes_csv, tiny_bert, model):
    data = prepare_data(DataArguments(dataset=str(fortunes_csv)), seed=2023)
    spec = resolve(str(tiny_bert) if model == "tiny_bert" else "lstm")
    cfg = parse_args([])
    tokenizer = text.load_processor(spec, data, cfg)
    net = build_model(spec, data.label_names, "text", text.lstm_inputs(tokenizer, cfg), cfg.model).eval()
    batch = tokenizer(list(data.splits["train"]["text"][:64]), truncation=True, max_length=48, padding=True,
                      return_tensors="pt")
    labels = torch.tensor(list(data.splits["train"]["label"][:64]))
    with torch.no_grad():
        loss = F.cross_entropy(net(**batch).logits, labels).item()
    assert loss == pytest.approx(math.log(3), abs=0.15)


@pytest.mark.parametrize("model", ["tiny_bert", "lstm"])
def test_loss_falls_on_real_text(fortunes_csv, tiny_bert, out_dirs, model):
    name = str(tiny_bert) if model == "tiny_bert" else "lstm"
    # A random-init transformer needs ~70 steps before it leaves ln(3); the LSTM learns within 3 epochs.
    extra = ["--num_train_epochs", "8", "--learning_rate", "0.002", "--early_stopping_patience", "0"]
    metrics = next(iter(experiment(fortunes_csv, name, out_dirs, *extra).values()))
    (run_dir,) = find_runs(out_dirs[1])
    losses = train_losses(run_dir)
    assert sum(losses[-3:]) / 3 < losses[0] - 0.2, losses
    if model == "lstm":  # 15 validation examples are too few to judge the barely-trained tiny transformer
        assert metrics["validation"]["accuracy"] > 0.5  # three classes: chance is 1/3


def test_same_seed_same_numbers_other_seed_other_numbers(fortunes_csv, tmp_path):
    def once(tag: str, seed: str) -> tuple[list[float], dict]:
        dirs = ["--runs_dir", str(tmp_path / tag / "runs"), "--weights_dir", str(tmp_path / tag / "w")]
        metrics = experiment(fortunes_csv, "lstm", dirs, "--seed", seed)["lstm"]
        return train_losses(find_runs(dirs[1])[0]), metrics

    a, b, c = once("a", "2023"), once("b", "2023"), once("c", "11")
    assert a == b  # bit-identical losses and metrics
    assert a[0] != c[0] and a[1]["test"] != c[1]["test"]


class _Linear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(4, 3)

    def forward(self, x, labels=None):
        from transformers.modeling_outputs import SequenceClassifierOutput

        logits = self.proj(x)
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def test_class_weighted_loss(tmp_path):
    from transformers import TrainingArguments

    torch.manual_seed(0)
    model = _Linear()
    weights = torch.tensor([0.2, 1.0, 5.0])
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    weighted = ClassificationTrainer(model=model, args=args, class_weights=weights)
    plain = ClassificationTrainer(model=model, args=args)
    x, y = torch.randn(8, 4), torch.tensor([0, 1, 2, 2, 1, 0, 0, 2])
    got = weighted.compute_loss(model, {"x": x, "labels": y})
    assert torch.allclose(got, F.cross_entropy(model.proj(x), y, weight=weights))
    assert not torch.allclose(got, plain.compute_loss(model, {"x": x, "labels": y}))


def test_tokenised_data_is_cached(fortunes_csv, tiny_bert, tmp_path, monkeypatch, caplog):
    data = prepare_data(DataArguments(dataset=str(fortunes_csv)), seed=2023)
    tokenizer = text.load_processor(resolve(str(tiny_bert)), data, parse_args([]))
    first = text.tokenize(data.splits, tokenizer, 32, data.split["hash"], tmp_path)
    assert max(first["train"]["length"]) <= 32 and "input_ids" in first["train"].column_names

    def no_map(*args, **kwargs):
        raise AssertionError("tokenised again instead of using the cache")

    monkeypatch.setattr(type(data.splits), "map", no_map)
    with caplog.at_level(logging.INFO):
        second = text.tokenize(data.splits, tokenizer, 32, data.split["hash"], tmp_path)
    assert "loaded from cache" in caplog.text
    assert list(second["test"]["input_ids"]) == list(first["test"]["input_ids"])
    # Another max_length is another cache entry, not a stale hit.
    monkeypatch.undo()
    assert max(text.tokenize(data.splits, tokenizer, 16, data.split["hash"], tmp_path)["train"]["length"]) <= 16


def test_freeze_layers_freezes_the_embeddings_and_the_lowest_blocks_only(fortunes_csv, tiny_bert):
    data = prepare_data(DataArguments(dataset=str(fortunes_csv)), seed=2023)
    spec = resolve(str(tiny_bert))
    cfg = parse_args(["--freeze_layers", "1"])
    tokenizer = text.load_processor(spec, data, cfg)
    net = build_model(spec, data.label_names, "text", text.lstm_inputs(tokenizer, cfg), cfg.model)
    frozen = {name for name, p in net.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith(("bert.embeddings.", "bert.encoder.layer.0.")) for n in frozen)
    assert {n for n, _ in net.named_parameters() if n.startswith(("bert.embeddings.", "bert.encoder.layer.0."))} \
        == frozen
    every = build_model(spec, data.label_names, "text", {}, parse_args(["--freeze_layers", "2"]).model)
    trained = [name for name, p in every.named_parameters() if p.requires_grad]
    assert trained == ["bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"]
    with pytest.raises(UserError, match="has 2 blocks: use at most 2"):
        build_model(spec, data.label_names, "text", {}, parse_args(["--freeze_layers", "3"]).model)


def test_dropout_sets_every_dropout_of_the_checkpoint_and_is_saved(fortunes_csv, tiny_bert):
    data = prepare_data(DataArguments(dataset=str(fortunes_csv)), seed=2023)
    spec = resolve(str(tiny_bert))
    net = build_model(spec, data.label_names, "text", {}, parse_args(["--dropout", "0"]).model)
    assert {m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)} == {0.0}
    assert net.config.hidden_dropout_prob == net.config.attention_probs_dropout_prob == 0.0
    kept = build_model(spec, data.label_names, "text", {}, parse_args([]).model)
    assert {m.p for m in kept.modules() if isinstance(m, torch.nn.Dropout)} == {0.1}  # BertConfig's own


@pytest.mark.parametrize("flag, value, message", [("--freeze_layers", "-1", "use 0 or more"),
                                                  ("--dropout", "1.5", "probability in")])
def test_freeze_and_dropout_refuse_bad_values(flag, value, message):
    with pytest.raises(UserError, match=message):
        parse_args([flag, value])


def test_a_frozen_run_leaves_the_frozen_weights_as_loaded(fortunes_csv, tiny_bert, out_dirs):
    from safetensors.torch import load_file

    experiment(fortunes_csv, str(tiny_bert), out_dirs, "--freeze_layers", "1", "--num_train_epochs", "1")
    (run_dir,) = find_runs(out_dirs[1])
    start = load_file(str(tiny_bert / "model.safetensors"))
    end = load_file(str(run_dir / "model" / "model.safetensors"))
    for name in ("bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.output.dense.weight"):
        assert torch.equal(start[name], end[name]), name
    assert not torch.equal(start["bert.encoder.layer.1.output.dense.weight"],
                           end["bert.encoder.layer.1.output.dense.weight"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["parameters"]["trainable"] < manifest["parameters"]["total"]
