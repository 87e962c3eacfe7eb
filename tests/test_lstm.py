"""From-scratch LSTM baseline: packing, persistence, init, learning, tokenizer and config checks."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    default_data_collator,
)

from hf_project.models.lstm import LSTMConfig, LSTMForSequenceClassification, register, train_lstm_tokenizer

VOCAB = 60


def tiny_model(seed: int = 0, **overrides) -> LSTMForSequenceClassification:
    kwargs = dict(vocab_size=VOCAB, embedding_dim=16, hidden_size=12, num_labels=3) | overrides
    torch.manual_seed(seed)
    return LSTMForSequenceClassification(LSTMConfig(**kwargs))


def right_padded(seqs: list[list[int]], width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    width = width or max(map(len, seqs))
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


def random_seqs(lengths: list[int], seed: int = 1) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(1, VOCAB, (n,), generator=g).tolist() for n in lengths]


# ---- packing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pooling", ["mean", "max", "last"])
@pytest.mark.parametrize("bidirectional,num_layers", [(True, 1), (True, 2), (False, 2)])
def test_padding_never_changes_logits(pooling: str, bidirectional: bool, num_layers: int) -> None:
    model = tiny_model(pooling=pooling, bidirectional=bidirectional, num_layers=num_layers).eval()
    seqs = random_seqs([7, 3, 5, 1])
    ids, mask = right_padded(seqs)
    with torch.no_grad():
        batch = model(ids, attention_mask=mask).logits  # (4, K)
        for i, s in enumerate(seqs):
            alone = model(torch.tensor([s])).logits[0]  # no padding at all
            assert torch.allclose(batch[i], alone, atol=1e-5), (i, batch[i], alone)
        # more padding columns than any row needs
        wide_ids, wide_mask = right_padded(seqs, width=15)
        assert torch.allclose(model(wide_ids, attention_mask=wide_mask).logits, batch, atol=1e-6)
        # whatever sits under mask == 0 is never read: fill padded slots with real (non-pad) token ids
        garbage = torch.where(mask.bool(), ids, torch.randint(1, VOCAB, ids.shape))
        assert torch.allclose(model(garbage, attention_mask=mask).logits, batch, atol=1e-6)
        # without a mask, pad ids define the lengths
        assert torch.allclose(model(ids).logits, batch, atol=1e-6)


def test_left_padding_is_refused() -> None:
    model = tiny_model().eval()
    ids = torch.tensor([[0, 0, 5, 6], [7, 8, 9, 10]])
    with pytest.raises(ValueError, match="right-padded"):
        model(ids, attention_mask=ids.ne(0).long())


def test_empty_row_gives_finite_logits_without_disturbing_others() -> None:
    model = tiny_model(pooling="max").eval()
    seqs = random_seqs([4, 2])
    ids, mask = right_padded(seqs + [[]], width=4)
    with torch.no_grad():
        logits = model(ids, attention_mask=mask).logits
        ref = model(*right_padded(seqs)).logits
    assert torch.isfinite(logits).all()
    assert torch.allclose(logits[:2], ref, atol=1e-6)


def test_trainer_extras_are_ignored() -> None:
    model = tiny_model().eval()
    ids, mask = right_padded(random_seqs([5, 3]))
    labels = torch.tensor([0, 2])
    with torch.no_grad():
        plain = model(ids, attention_mask=mask, labels=labels)
        extra = model(
            ids,
            attention_mask=mask,
            labels=labels,
            token_type_ids=torch.zeros_like(ids),
            num_items_in_batch=torch.tensor(2),
            return_dict=True,
        )
    assert torch.equal(plain.logits, extra.logits) and torch.equal(plain.loss, extra.loss)


# ---- persistence -------------------------------------------------------------------------------------------


def _config_without_path(config) -> dict:
    return {k: v for k, v in config.to_dict().items() if k != "_name_or_path"}


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_save_and_reload_are_exact(tmp_path, pooling: str) -> None:
    register()
    register()  # idempotent
    model = tiny_model(pooling=pooling, num_labels=4, num_layers=2).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    ids, mask = right_padded(random_seqs([6, 2, 4]))
    with torch.no_grad():
        expected = model(ids, attention_mask=mask).logits

    direct = LSTMForSequenceClassification.from_pretrained(tmp_path).eval()
    auto = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(auto) is LSTMForSequenceClassification
    assert type(AutoConfig.from_pretrained(tmp_path)) is LSTMConfig
    for loaded in (direct, auto):
        with torch.no_grad():
            assert torch.equal(loaded(ids, attention_mask=mask).logits, expected)
        assert _config_without_path(loaded.config) == _config_without_path(model.config)
        assert loaded.config.to_json_string() == model.config.to_json_string()
        state = loaded.state_dict()
        assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


# ---- initialisation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_labels", [5, 43])
def test_initial_loss_is_chance_level(num_labels: int) -> None:
    torch.manual_seed(0)
    model = LSTMForSequenceClassification(LSTMConfig(vocab_size=1000, num_labels=num_labels)).eval()
    ids, mask = right_padded(
        [torch.randint(1, 1000, (int(n),)).tolist() for n in torch.randint(1, 40, (128,))]
    )
    labels = torch.randint(0, num_labels, (128,))
    with torch.no_grad():
        out = model(ids, attention_mask=mask, labels=labels)
    assert out.logits.shape == (128, num_labels)
    assert abs(out.loss.item() - math.log(num_labels)) < 0.1


def test_seed_controls_init() -> None:
    a, b, c = (
        tiny_model(seed=7).state_dict(),
        tiny_model(seed=7).state_dict(),
        tiny_model(seed=8).state_dict(),
    )
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["embedding.weight"], c["embedding.weight"])
    assert not torch.equal(a["lstm.weight_hh_l0"], c["lstm.weight_hh_l0"])
    assert not torch.equal(a["classifier.weight"], c["classifier.weight"])


def test_init_details() -> None:
    model = tiny_model(num_layers=2)
    assert torch.equal(model.embedding.weight[0], torch.zeros(16))  # [PAD] row
    assert torch.equal(model.classifier.bias, torch.zeros(3))
    assert model.classifier.weight.std().item() < 0.05
    H = 12
    for name in ("bias_ih_l0", "bias_ih_l1_reverse"):
        bias = getattr(model.lstm, name)
        assert torch.equal(bias[H : 2 * H], torch.ones(H)) and bias[:H].abs().sum() == 0  # forget gate open
    gate = model.lstm.weight_hh_l0[:H]  # (H, H) orthogonal block
    assert torch.allclose(gate @ gate.T, torch.eye(H), atol=1e-5)
    assert model.get_input_embeddings() is model.embedding


# ---- learning ----------------------------------------------------------------------------------------------


def keyword_task(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class k <=> token k+1 appears somewhere in a sequence of filler tokens (ids 4..VOCAB-1)."""
    g = torch.Generator().manual_seed(seed)
    seqs, labels = [], []
    for _ in range(n):
        label = int(torch.randint(0, 3, (1,), generator=g))
        length = int(torch.randint(2, 12, (1,), generator=g))
        seq = torch.randint(4, VOCAB, (length,), generator=g)
        seq[int(torch.randint(0, length, (1,), generator=g))] = label + 1
        seqs.append(seq.tolist())
        labels.append(label)
    ids, mask = right_padded(seqs)
    return ids, mask, torch.tensor(labels)


@pytest.mark.parametrize("pooling", ["mean", "max", "last"])
def test_loss_falls_on_separable_task(pooling: str) -> None:
    model = tiny_model(pooling=pooling, hidden_size=32)
    ids, mask, labels = keyword_task()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    losses = []
    for _ in range(40):
        loss = model(ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        accuracy = (model(ids, attention_mask=mask).logits.argmax(-1) == labels).float().mean().item()
    assert losses[-1] < 0.25 * losses[0], losses
    assert accuracy >= 0.95
    after = model.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before), "every tensor should be trained"
    assert torch.equal(after["embedding.weight"][0], torch.zeros(16)), "[PAD] embedding must stay zero"


def test_hf_trainer_runs(tmp_path) -> None:
    tok = train_lstm_tokenizer(
        ["good fine great", "bad awful poor", "good great", "bad poor"] * 4, min_frequency=1
    )
    texts = ["good great fine", "awful bad", "great", "poor poor bad awful"] * 4
    rows = [dict(tok(t), labels=int("good" in t or "great" in t or "fine" in t)) for t in texts]
    model = LSTMForSequenceClassification(LSTMConfig(vocab_size=len(tok), hidden_size=8, embedding_dim=8))
    before = model.classifier.weight.detach().clone()
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=3,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        learning_rate=1e-2,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=rows,
        eval_dataset=rows,
        data_collator=DataCollatorWithPadding(tok),
    )
    # the model's loss is a batch mean, so the Trainer itself must scale it for gradient accumulation
    assert trainer.model_accepts_loss_kwargs is False
    result = trainer.train()
    assert math.isfinite(result.training_loss)
    assert not torch.equal(before, model.classifier.weight.detach())
    pred = trainer.predict(rows)
    assert pred.predictions.shape == (len(rows), 2) and math.isfinite(pred.metrics["test_loss"])


# ---- tokenizer ---------------------------------------------------------------------------------------------

TRAIN_TEXTS = [
    "The movie was GREAT, truly great!!!",
    "A great cast, but the plot was thin.",
    "Café scenes were lovely; the cafe owner was great.",
    "The plot was thin and the movie was long.",
    "Thin plot, long movie!!!",
    "A once-off word: aardvark",
]


def test_tokenizer_is_deterministic() -> None:
    tokenizers = [train_lstm_tokenizer(TRAIN_TEXTS * 3, min_frequency=1) for _ in range(5)]
    first = tokenizers[0]
    for other in tokenizers[1:]:
        assert other.get_vocab() == first.get_vocab()
        assert other.backend_tokenizer.to_str() == first.backend_tokenizer.to_str()


def test_tokenizer_vocab_comes_from_training_texts_only() -> None:
    tok = train_lstm_tokenizer(iter(TRAIN_TEXTS), vocab_size=1000)  # a one-shot iterator is enough
    vocab = tok.get_vocab()
    assert vocab["[PAD]"] == 0 == tok.pad_token_id and vocab["[UNK]"] == 1 == tok.unk_token_id
    backend = tok.backend_tokenizer
    seen = {
        w
        for t in TRAIN_TEXTS
        for w, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(t))
    }
    assert set(vocab) - {"[PAD]", "[UNK]"} <= seen
    assert "aardvark" not in vocab  # min_frequency=2 drops a word seen once
    assert "zebra" not in vocab  # held-out word
    assert tok("zebra")["input_ids"] == [tok.unk_token_id]
    assert tok("GREAT Café")["input_ids"] == tok("great cafe")["input_ids"] == [vocab["great"], vocab["cafe"]]
    assert "!!!" in vocab  # punctuation runs are tokens of their own
    capped = train_lstm_tokenizer(TRAIN_TEXTS, vocab_size=5)
    assert len(capped) == 5 and {"[PAD]", "[UNK]", "the", "was"} <= set(capped.get_vocab())


def test_tokenizer_encodes_and_round_trips(tmp_path) -> None:
    tok = train_lstm_tokenizer(TRAIN_TEXTS)
    batch = ["the movie was great and the plot was thin", "zebra", "Thin!!!"]
    enc = tok(batch, truncation=True, max_length=6, padding=True)
    assert set(enc) == {"input_ids", "attention_mask"}
    assert [len(x) for x in enc["input_ids"]] == [6, 6, 6]
    assert (
        enc["attention_mask"][1] == [1, 0, 0, 0, 0, 0] and enc["input_ids"][1][1:] == [0] * 5
    )  # right-padded
    assert tok.model_max_length == 512

    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.get_vocab() == tok.get_vocab()
    assert (loaded.pad_token_id, loaded.unk_token_id, loaded.model_max_length) == (0, 1, 512)
    assert dict(loaded(batch, truncation=True, max_length=6, padding=True)) == dict(enc)
    assert loaded(batch)["input_ids"] == tok(batch)["input_ids"]


def test_tokenizer_ids_feed_the_model() -> None:
    tok = train_lstm_tokenizer(TRAIN_TEXTS)
    model = LSTMForSequenceClassification(
        LSTMConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id)
    ).eval()
    enc = tok(["the plot was thin", "great"], padding=True, return_tensors="pt")
    assert model(**enc).logits.shape == (2, 2)


@pytest.mark.parametrize("texts", [[], (t for t in [])])
def test_tokenizer_rejects_empty_input(texts) -> None:
    with pytest.raises(ValueError, match="at least one"):
        train_lstm_tokenizer(texts)


def test_tokenizer_rejects_texts_with_no_frequent_word() -> None:
    with pytest.raises(ValueError, match="min_frequency"):
        train_lstm_tokenizer(["each word once"], min_frequency=2)


# ---- config validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"pooling": "foo"},
        {"hidden_size": 0},
        {"embedding_dim": -3},
        {"num_layers": 1.5},
        {"dropout": 1.0},
        {"dropout": -0.1},
        {"vocab_size": 0},
        {"pad_token_id": 100, "vocab_size": 100},
        {"bidirectional": "yes"},
        {"problem_type": "ordinal_regression"},
        {"num_labels": 1},
    ],
)
def test_bad_config_values_raise(bad: dict) -> None:
    with pytest.raises(ValueError):
        LSTMConfig(**bad)


def test_bad_saved_config_raises_on_load() -> None:
    with pytest.raises(ValueError, match="pooling"):
        LSTMConfig.from_dict({"model_type": "hf_project_lstm", "pooling": "attention"})


def test_config_defaults() -> None:
    c = LSTMConfig()
    assert (c.vocab_size, c.embedding_dim, c.hidden_size, c.num_layers) == (30000, 128, 128, 1)
    assert (c.bidirectional, c.dropout, c.pooling, c.pad_token_id) == (True, 0.1, "mean", 0)
    assert c.problem_type == "single_label_classification" and c.num_labels == 2
    assert LSTMConfig(num_labels=7).num_labels == 7


# ---- feature inputs (pixel rows / mel frames) --------------------------------------------------------------

FEAT_DIM = 10


def tiny_features_model(seed: int = 0, **overrides) -> LSTMForSequenceClassification:
    kwargs = dict(input_type="features", input_dim=FEAT_DIM, embedding_dim=16, hidden_size=12, num_labels=3)
    torch.manual_seed(seed)
    return LSTMForSequenceClassification(LSTMConfig(**(kwargs | overrides)))


def random_frames(lengths: list[int], seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, FEAT_DIM, generator=g) for n in lengths]


def right_padded_frames(
    frames: list[torch.Tensor], width: int | None = None, fill: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    width = width or max(len(f) for f in frames)
    feats = torch.full((len(frames), width, FEAT_DIM), fill)
    mask = torch.zeros(len(frames), width, dtype=torch.long)
    for i, f in enumerate(frames):
        feats[i, : len(f)] = f
        mask[i, : len(f)] = 1
    return feats, mask


@pytest.mark.parametrize("pooling", ["mean", "max", "last"])
@pytest.mark.parametrize("bidirectional,num_layers", [(True, 1), (False, 2)])
def test_features_padding_never_changes_logits(pooling: str, bidirectional: bool, num_layers: int) -> None:
    model = tiny_features_model(pooling=pooling, bidirectional=bidirectional, num_layers=num_layers).eval()
    frames = random_frames([7, 3, 5, 1])
    feats, mask = right_padded_frames(frames)
    with torch.no_grad():
        batch = model(input_features=feats, attention_mask=mask).logits  # (4, K)
        assert batch.shape == (4, 3)
        for i, f in enumerate(frames):
            alone = model(input_features=f[None]).logits[0]  # no mask, no padding: every frame is real
            assert torch.allclose(batch[i], alone, atol=1e-5), (i, batch[i], alone)
            full_mask = torch.ones(1, len(f), dtype=torch.long)
            assert torch.equal(model(input_features=f[None], attention_mask=full_mask).logits[0], alone)
        # wider padding, and arbitrary values under mask == 0, change nothing
        wide, wide_mask = right_padded_frames(frames, width=15, fill=123.0)
        assert torch.allclose(model(input_features=wide, attention_mask=wide_mask).logits, batch, atol=1e-6)


def test_features_no_mask_means_all_frames_real() -> None:
    model = tiny_features_model().eval()
    feats = torch.randn(3, 6, FEAT_DIM)
    with torch.no_grad():
        no_mask = model(input_features=feats).logits
        all_real = model(input_features=feats, attention_mask=torch.ones(3, 6, dtype=torch.long)).logits
        shorter = model(input_features=feats, attention_mask=torch.tensor([[1] * 4 + [0] * 2] * 3)).logits
    assert torch.equal(no_mask, all_real)
    assert not torch.allclose(no_mask, shorter)  # the mask really defines the lengths


def test_features_left_padding_and_empty_rows() -> None:
    model = tiny_features_model(pooling="max").eval()
    feats = torch.randn(2, 4, FEAT_DIM)
    with pytest.raises(ValueError, match="right-padded"):
        model(input_features=feats, attention_mask=torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]]))
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]])
    with torch.no_grad():
        logits = model(input_features=feats, attention_mask=mask).logits
        # an empty row reads none of its padding values
        other = model(input_features=feats + 5.0 * (1 - mask)[:, :, None], attention_mask=mask).logits
    assert torch.isfinite(logits).all() and torch.equal(logits, other)


def test_features_model_has_projection_and_no_embedding_table() -> None:
    model = tiny_features_model(num_layers=2)
    assert not hasattr(model, "embedding")
    assert not any(isinstance(m, torch.nn.Embedding) for m in model.modules())
    assert isinstance(model.feature_proj, torch.nn.Linear) and model.feature_proj.in_features == FEAT_DIM
    params = dict(model.named_parameters())
    assert not any(k.startswith("embedding") for k in params)
    lstm = sum(p.numel() for k, p in params.items() if k.startswith("lstm."))
    expected = (FEAT_DIM * 16 + 16) + lstm + (2 * 12 * 3 + 3)  # projection + LSTM + classifier, nothing else
    assert model.num_parameters() == sum(p.numel() for p in model.parameters()) == expected
    # same body as the token model of equal sizes, with the VOCAB x 16 table swapped for the projection
    assert expected == tiny_model(num_layers=2).num_parameters() - VOCAB * 16 + (FEAT_DIM * 16 + 16)
    # the input projection plays the part of the input embeddings, as in transformers' vision/audio models
    assert model.get_input_embeddings() is model.feature_proj
    assert model.main_input_name == "input_features" and tiny_model().main_input_name == "input_ids"
    with pytest.raises(ValueError, match="features"):
        model.resize_token_embeddings(100)
    assert torch.equal(model.feature_proj.bias, torch.zeros(16))
    assert abs(model.feature_proj.weight.std().item() - FEAT_DIM**-0.5) < 0.1  # standardised frames -> unit scale


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_features_save_and_reload_are_exact(tmp_path, pooling: str) -> None:
    frontend = {"modality": "audio", "kind": "log_mel", "n_mels": FEAT_DIM, "sampling_rate": 16000}
    model = tiny_features_model(pooling=pooling, num_layers=2, num_labels=4, frontend=frontend).eval()
    assert model.config.frontend == frontend
    model.save_pretrained(tmp_path)
    feats, mask = right_padded_frames(random_frames([6, 2, 4]))
    with torch.no_grad():
        expected = model(input_features=feats, attention_mask=mask).logits

    direct = LSTMForSequenceClassification.from_pretrained(tmp_path).eval()
    auto = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(auto) is LSTMForSequenceClassification
    config = AutoConfig.from_pretrained(tmp_path)
    assert type(config) is LSTMConfig and config.frontend == frontend
    for loaded in (direct, auto):
        assert (loaded.config.input_type, loaded.config.input_dim) == ("features", FEAT_DIM)
        assert loaded.config.frontend == frontend
        assert not hasattr(loaded, "embedding")
        with torch.no_grad():
            assert torch.equal(loaded(input_features=feats, attention_mask=mask).logits, expected)
        assert loaded.config.to_json_string() == model.config.to_json_string()
        state = loaded.state_dict()
        assert state.keys() == model.state_dict().keys()
        assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("num_labels", [5, 43])
def test_features_initial_loss_is_chance_level(num_labels: int) -> None:
    torch.manual_seed(0)
    config = LSTMConfig(input_type="features", input_dim=28, num_labels=num_labels)
    model = LSTMForSequenceClassification(config).eval()
    feats, mask = torch.randn(128, 30, 28), torch.ones(128, 30, dtype=torch.long)
    for i, n in enumerate(torch.randint(1, 31, (128,)).tolist()):
        mask[i, n:] = 0
    labels = torch.randint(0, num_labels, (128,))
    with torch.no_grad():
        out = model(input_features=feats, attention_mask=mask, labels=labels)
    assert out.logits.shape == (128, num_labels)
    assert abs(out.loss.item() - math.log(num_labels)) < 0.1


def mean_level_task(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class k <=> the frames' values are noise around level k - 1 (varying lengths, right-padded)."""
    g = torch.Generator().manual_seed(seed)
    frames, labels = [], []
    for _ in range(n):
        label = int(torch.randint(0, 3, (1,), generator=g))
        length = int(torch.randint(2, 12, (1,), generator=g))
        frames.append(torch.randn(length, FEAT_DIM, generator=g) + (label - 1.0))
        labels.append(label)
    feats, mask = right_padded_frames(frames, fill=7.0)  # padding values must not leak into predictions
    return feats, mask, torch.tensor(labels)


@pytest.mark.parametrize("pooling", ["mean", "max", "last"])
def test_features_loss_falls_on_separable_task(pooling: str) -> None:
    model = tiny_features_model(pooling=pooling, hidden_size=32)
    feats, mask, labels = mean_level_task()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    with torch.no_grad():
        acc_before = (model(input_features=feats, attention_mask=mask).logits.argmax(-1) == labels).float().mean()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    losses = []
    for _ in range(40):
        loss = model(input_features=feats, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        accuracy = (model(input_features=feats, attention_mask=mask).logits.argmax(-1) == labels).float().mean()
    assert losses[-1] < 0.25 * losses[0], losses
    assert accuracy.item() >= 0.95 and accuracy > acc_before
    after = model.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before), "every tensor should be trained"


def test_features_hf_trainer_runs(tmp_path) -> None:
    feats, mask, labels = mean_level_task(n=16)
    rows = [
        {"input_features": f, "attention_mask": m, "labels": int(y)}
        for f, m, y in zip(feats, mask, labels, strict=True)
    ]
    model = tiny_features_model(num_labels=3)
    before = model.feature_proj.weight.detach().clone()
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=default_data_collator)
    assert math.isfinite(trainer.train().training_loss)
    assert not torch.equal(before, model.feature_proj.weight.detach())
    pred = trainer.predict(rows)
    assert pred.predictions.shape == (len(rows), 3) and math.isfinite(pred.metrics["test_loss"])


def test_wrong_input_for_input_type_raises() -> None:
    tokens, features = tiny_model().eval(), tiny_features_model().eval()
    ids, mask = right_padded(random_seqs([3, 2]))
    feats = torch.randn(2, 3, FEAT_DIM)
    with pytest.raises(ValueError, match="input_features"):
        features(ids, attention_mask=mask)
    with pytest.raises(ValueError, match="input_features"):
        features(input_ids=ids, input_features=feats)
    with pytest.raises(ValueError, match="input_features"):
        features()
    with pytest.raises(ValueError, match="input_ids"):
        tokens(input_features=feats)
    with pytest.raises(ValueError, match="input_ids"):
        tokens(ids, input_features=feats)
    with pytest.raises(ValueError, match="input_ids"):
        tokens()
    with pytest.raises(ValueError, match="shape"):
        features(input_features=torch.randn(2, 3, FEAT_DIM + 1))
    with pytest.raises(ValueError, match="shape"):
        features(input_features=torch.randn(2, FEAT_DIM))
    with pytest.raises(ValueError, match="float"):
        features(input_features=torch.randint(0, 255, (2, 3, FEAT_DIM), dtype=torch.uint8))
    with pytest.raises(ValueError, match="attention_mask"):
        features(input_features=feats, attention_mask=torch.ones(2, 4, dtype=torch.long))


@pytest.mark.parametrize(
    "bad",
    [
        {"input_type": "features"},  # input_dim missing
        {"input_type": "features", "input_dim": 0},
        {"input_type": "features", "input_dim": 2.5},
        {"input_type": "features", "input_dim": True},
        {"input_type": "pixels", "input_dim": 8},
        {"input_dim": 8},  # input_dim without input_type="features"
    ],
)
def test_bad_feature_config_values_raise(bad: dict) -> None:
    with pytest.raises(ValueError, match="input_"):
        LSTMConfig(**bad)


def test_feature_config_defaults_and_extra_kwargs() -> None:
    c = LSTMConfig()
    assert (c.input_type, c.input_dim) == ("tokens", None)
    f = LSTMConfig(input_type="features", input_dim=28, frontend={"modality": "image", "rows": 28})
    assert (f.input_type, f.input_dim, f.vocab_size, f.pad_token_id) == ("features", 28, 30000, 0)
    reloaded = LSTMConfig.from_dict(f.to_dict())
    assert reloaded.frontend == {"modality": "image", "rows": 28} and reloaded.input_dim == 28
    # configs saved before input_type existed load as token models
    old = LSTMConfig.from_dict({"model_type": "hf_project_lstm", "vocab_size": 50})
    assert (old.input_type, old.input_dim, old.vocab_size) == ("tokens", None, 50)
