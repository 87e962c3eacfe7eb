"""From-scratch LSTM sequence classifier, the non-pretrained baseline the fine-tuned checkpoints are compared to.

One config, one module and a tokenizer trainer, all speaking the Hugging Face interfaces so the same Trainer,
save_pretrained/from_pretrained and AutoModelForSequenceClassification code paths serve this baseline and the
pretrained models alike.

The same model serves text, images and audio: a modality front-end (a token embedding for input_type="tokens",
a linear projection of feature frames -- pixel rows, mel frames -- for input_type="features") feeds one
recurrent body, pooling and classifier.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)
from transformers.modeling_outputs import SequenceClassifierOutput

POOLINGS = ("mean", "max", "last")
PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")
INPUT_TYPES = ("tokens", "features")


class LSTMConfig(PretrainedConfig):
    model_type = "hf_project_lstm"

    # A plain __init__ (not transformers 5's dataclass fields) keeps positional calls working and lets
    # validation raise a plain ValueError; transformers then serialises every attribute, as for any
    # custom-init config.
    def __init__(
        self,
        vocab_size: int = 30000,
        embedding_dim: int = 128,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.1,
        pooling: str = "mean",
        pad_token_id: int = 0,
        input_type: str = "tokens",
        input_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        # input_type="features": the model reads float frames (B, T, input_dim) instead of token ids;
        # vocab_size / pad_token_id keep their (validated) values but are unused. Extra kwargs -- e.g. a
        # `frontend` dict describing the preprocessing -- are stored and serialised by PretrainedConfig.
        for name, value in (
            ("vocab_size", vocab_size),
            ("embedding_dim", embedding_dim),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"LSTMConfig.{name} must be a positive int, got {value!r}")
        if not isinstance(bidirectional, bool):
            raise ValueError(f"LSTMConfig.bidirectional must be a bool, got {bidirectional!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"LSTMConfig.dropout must be a float in [0, 1), got {dropout!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"LSTMConfig.pooling must be one of {POOLINGS}, got {pooling!r}")
        if (
            isinstance(pad_token_id, bool)
            or not isinstance(pad_token_id, int)
            or not 0 <= pad_token_id < vocab_size
        ):
            raise ValueError(
                f"LSTMConfig.pad_token_id must be an int in [0, {vocab_size}), got {pad_token_id!r}"
            )
        if input_type not in INPUT_TYPES:
            raise ValueError(f"LSTMConfig.input_type must be one of {INPUT_TYPES}, got {input_type!r}")
        if input_type == "features":
            if isinstance(input_dim, bool) or not isinstance(input_dim, int) or input_dim < 1:
                raise ValueError(
                    f"LSTMConfig.input_dim must be a positive int when input_type='features', got {input_dim!r}"
                )
        elif input_dim is not None:
            raise ValueError(f"LSTMConfig.input_dim is only used with input_type='features', got {input_dim!r}")
        # forward() implements these three losses; refusing another problem type beats silently ignoring it.
        problem_type = kwargs.setdefault("problem_type", "single_label_classification")
        if problem_type not in PROBLEM_TYPES:
            raise ValueError(f"LSTMConfig.problem_type must be one of {PROBLEM_TYPES}, got {problem_type!r}")
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = float(dropout)
        self.pooling = pooling
        self.pad_token_id = pad_token_id
        self.input_type = input_type
        self.input_dim = input_dim
        super().__init__(**kwargs)  # also rejects num_labels < 2 for single-label classification


class LSTMForSequenceClassification(PreTrainedModel):
    config_class = LSTMConfig
    # no base-model/head split (base_model_prefix stays ""); name the embedding so get_input_embeddings and
    # resize_token_embeddings find it
    _input_embed_layer = "embedding"
    # forward() returns a per-batch mean loss and ignores num_items_in_batch; telling the Trainer so makes it
    # divide by the gradient-accumulation steps itself instead of assuming the model normalised the loss.
    accepts_loss_kwargs = False

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__(config)
        self.num_directions = 2 if config.bidirectional else 1
        # front-end: exactly one of `embedding` (tokens) / `feature_proj` (features) exists, so a features model
        # carries no unused vocab_size x embedding_dim table
        if config.input_type == "tokens":
            self.embedding = nn.Embedding(
                config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id
            )
        else:
            # Deliberately no LayerNorm over each input frame: it would normalise a frame by its own mean/std
            # and so erase its level -- a pixel row's amount of ink, a mel frame's loudness, a silent frame vs
            # a constant one -- which is often the very signal. Feature scale is the preprocessing's job
            # (pixels /255 + mean/std, standardised log-mel; described in config.frontend), as with the
            # feature extractors of pretrained models; the projection is initialised so that standardised
            # inputs give unit-scale embeddings, like the token embedding rows.
            self.feature_proj = nn.Linear(config.input_dim, config.embedding_dim)
            # transformers' vision/audio models expose their input projection as the "input embeddings";
            # doing the same keeps get/set_input_embeddings and enable_input_require_grads working
            self._input_embed_layer = "feature_proj"
            self.main_input_name = "input_features"  # the Trainer reads this to find the model's input
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(
            config.embedding_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            bidirectional=config.bidirectional,
            # nn.LSTM only applies dropout between stacked layers (and warns when there are none)
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.classifier = nn.Linear(self.num_directions * config.hidden_size, config.num_labels)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Embedding):
            # unit-variance rows (torch's default) keep the LSTM gates in their responsive range from step one
            nn.init.normal_(module.weight, std=1.0)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LSTM):
            H = module.hidden_size
            for name, param in module.named_parameters():
                if name.startswith("weight_ih"):
                    nn.init.xavier_uniform_(param)
                elif name.startswith("weight_hh"):
                    # orthogonal recurrent matrix per gate: the state neither explodes nor vanishes over time
                    for gate in param.data.split(H):
                        nn.init.orthogonal_(gate)
                else:
                    param.zero_()
                    if name.startswith("bias_ih"):
                        # gate order is (input, forget, cell, output); forget bias 1 -> remember by
                        # default (Jozefowicz et al., 2015), so early gradients still reach the first tokens
                        param[H : 2 * H].fill_(1.0)
        elif module is getattr(self, "feature_proj", None):
            # LeCun-normal: a standardised (unit-variance) frame maps to ~unit-variance embeddings, the same
            # scale as the token embedding rows
            nn.init.normal_(module.weight, std=module.in_features**-0.5)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            # tiny classifier weights -> near-zero logits -> initial loss ~ ln(num_labels), no class favoured
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def resize_token_embeddings(self, *args: Any, **kwargs: Any) -> nn.Module:
        if self.config.input_type != "tokens":
            raise ValueError("resize_token_embeddings needs a token model; this one has input_type='features'")
        return super().resize_token_embeddings(*args, **kwargs)

    def _embed(
        self, input_ids: torch.Tensor | None, input_features: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The modality front-end: (B, T, E) embeddings, plus the lengths-defining mask used when none is given."""
        name = type(self).__name__
        if self.config.input_type == "tokens":
            if input_features is not None or input_ids is None:
                raise ValueError(f"{name} with input_type='tokens' takes input_ids (B, T), not input_features")
            if input_ids.dim() != 2:
                raise ValueError(f"input_ids must have shape (batch, seq_len), got {tuple(input_ids.shape)}")
            return self.embedding(input_ids), input_ids.ne(self.config.pad_token_id)
        if input_ids is not None or input_features is None:
            raise ValueError(
                f"{name} with input_type='features' takes input_features (B, T, input_dim), not input_ids"
            )
        if input_features.dim() != 3 or input_features.shape[-1] != self.config.input_dim:
            raise ValueError(
                f"input_features must have shape (batch, frames, {self.config.input_dim}), "
                f"got {tuple(input_features.shape)}"
            )
        if not input_features.is_floating_point():
            # e.g. raw uint8 pixels: scaling/normalising them is the preprocessing's job, not a silent cast
            raise ValueError(f"input_features must be a float tensor, got {input_features.dtype}")
        x = self.feature_proj(input_features.to(self.feature_proj.weight.dtype))
        return x, None  # no padding marker in float frames: without a mask every frame is real

    def _recur(self, x: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The LSTM over right-padded rows, padding kept out of the recurrence: (B, T, D*H) outputs, 0 at pads, and
        the last layer's final states (D, B, H).

        Each direction runs as one fused LSTM call over the padded batch (oneDNN on CPU, cuDNN on GPU; 2-3x faster
        than a packed sequence, whose steps run one by one). The forward direction never looks ahead, so its
        outputs at real steps ignore the padding that follows; the backward direction reads every row reversed
        within its own length (its real steps first), and its outputs are put back in the original order. Each
        row's states thus only ever see its real steps, as with packing.
        """
        lstm, (B, T) = self.lstm, x.shape[:2]
        positions = torch.arange(T, device=x.device)
        # (B, T) in-length reversal (its own inverse on the real steps; padding points at step 0 and is zeroed)
        reverse = (lengths[:, None] - 1 - positions[None, :]).clamp(min=0)
        last = (lengths - 1)[:, None, None]
        weights = lstm._flat_weights
        per_layer = 4 * self.num_directions  # w_ih, w_hh, b_ih, b_hh per direction, layer by layer
        valid = mask[:, :, None].to(x.dtype)
        h_last = []
        for layer in range(lstm.num_layers):
            if layer > 0 and lstm.dropout and self.training:
                x = F.dropout(x, lstm.dropout, training=True)
            outputs, h_last = [], []
            for direction in range(self.num_directions):
                params = weights[layer * per_layer + 4 * direction : layer * per_layer + 4 * direction + 4]
                seq = x if direction == 0 else _gather_steps(x, reverse) * valid
                zeros = x.new_zeros(1, B, lstm.hidden_size)
                out, _, _ = torch.lstm(seq, (zeros, zeros), params, True, 1, 0.0, self.training, False, True)
                h_last.append(out.gather(1, last.expand(-1, 1, out.shape[-1])).squeeze(1))  # after its last real step
                outputs.append(out if direction == 0 else _gather_steps(out, reverse))
            x = torch.cat(outputs, dim=-1) * valid
        return x, torch.stack(h_last)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        input_features: torch.FloatTensor | None = None,
        **kwargs: Any,  # Trainer extras (num_items_in_batch, token_type_ids, ...) are irrelevant here
    ) -> SequenceClassifierOutput:
        """Classify right-padded sequences.

        input_type="tokens": input_ids (B, T); without attention_mask, non-[PAD] ids are the real tokens.
        input_type="features": input_features (B, T, input_dim) float; attention_mask (B, T), 1 = real frame,
        right-padded; without it all T frames are real.
        """
        x, default_mask = self._embed(input_ids, input_features)  # (B, T, E)
        B, T = x.shape[:2]
        if attention_mask is None:
            attention_mask = default_mask if default_mask is not None else x.new_ones(B, T, dtype=torch.bool)
        elif attention_mask.shape != (B, T):
            raise ValueError(f"attention_mask must have shape {(B, T)}, got {tuple(attention_mask.shape)}")
        lengths = attention_mask.sum(dim=1)  # (B,)
        positions = torch.arange(T, device=x.device)  # (T,)
        # the recurrence takes the first `length` tokens as the real ones, so a left-padded batch would silently
        # run over padding and drop text; refuse it instead
        if not torch.equal(positions[None, :] < lengths[:, None], attention_mask.bool()):
            raise ValueError(
                "LSTMForSequenceClassification needs right-padded inputs (tokenizer padding_side='right')"
            )
        # zero the padded steps' embeddings (a no-op for tokens, whose [PAD] row is zero): the recurrence never reads
        # them, except that an empty sequence (all padding) still gets one step -- over this zero vector, as
        # for the zero [PAD] embedding -- so it yields a finite prediction that does not depend on whatever
        # the padding holds (and no division by a zero length)
        x = x.masked_fill(~attention_mask.bool()[:, :, None], 0.0)
        lengths = lengths.clamp(min=1)
        mask = positions[None, :] < lengths[:, None]  # (B, T)

        x = self.dropout(x)  # (B, T, E)
        out, h_last = self._recur(x, lengths, mask)  # (B, T, D*H) with 0 at pads; (D, B, H)

        if self.config.pooling == "mean":
            pooled = out.sum(dim=1) / lengths[:, None].to(out.dtype)  # (B, D*H); padded steps contribute 0
        elif self.config.pooling == "max":
            pooled = out.masked_fill(~mask[:, :, None], float("-inf")).amax(dim=1)  # (B, D*H)
        else:  # "last": forward state after the last real token, backward state after the first
            pooled = h_last.transpose(0, 1).reshape(B, -1)  # (B, D*H)

        logits = self.classifier(self.dropout(pooled))  # (B, K)
        loss = None
        if labels is not None:  # the training loop uses its task's loss (hf_project.tasks); this one is the plain one
            if self.config.problem_type == "regression":
                loss = F.mse_loss(logits.float().view(-1), labels.float().view(-1))
            elif self.config.problem_type == "multi_label_classification":
                loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float())
            else:
                loss = F.cross_entropy(logits.float(), labels.view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)


def train_lstm_tokenizer(
    texts: Iterable[str], vocab_size: int = 30000, min_frequency: int = 2, pairs: bool = False
) -> PreTrainedTokenizerFast:
    """Word-level tokenizer learnt from `texts` only (pass the training split, never validation/test).

    Word-level rather than WordPiece: WordPieceTrainer in tokenizers <= 0.23 is not deterministic (merge ties
    are broken by hash-map order, huggingface/tokenizers#1794), so the same training texts could yield a
    different vocabulary per run; WordLevelTrainer sorts by (count, word). One embedding per word is also the
    classic setup for an LSTM baseline, with out-of-vocabulary words mapped to [UNK].

    With `pairs`, a [SEP] token joins the two texts of a sentence pair into one sequence, which the one LSTM reads
    (the concatenation baseline of NLI): the recurrence sees where the second text starts and can relate the two,
    with a single encoder and vocabulary. Single-text vocabularies stay as they were (no [SEP]).
    """
    it = iter(texts)
    first = next(it, None)
    if first is None:
        raise ValueError("train_lstm_tokenizer needs at least one training text, got an empty iterable")
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    # NFKD + strip accents + lowercase folds case, accents and compatibility forms (full-width, ligatures), so
    # a word-level vocab is not split across spellings of the same word
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFKD(), normalizers.StripAccents(), normalizers.Lowercase()]
    )
    # \w+ | [^\w\s]+ : punctuation runs such as "!!!" or ":)" stay tokens of their own, they carry signal
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=["[PAD]", "[UNK]", *(["[SEP]"] if pairs else [])],
        show_progress=False,
    )  # special tokens come first, in order: [PAD] = 0 matches LSTMConfig.pad_token_id's default
    tok.train_from_iterator(itertools.chain([first], it), trainer=trainer)
    if tok.get_vocab_size() <= 2 + pairs:
        raise ValueError(f"no word occurs at least min_frequency={min_frequency} times in the training texts")
    if pairs:
        tok.post_processor = processors.TemplateProcessing(
            single="$A", pair="$A [SEP] $B", special_tokens=[("[SEP]", tok.token_to_id("[SEP]"))])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", model_max_length=512,
        **({"sep_token": "[SEP]"} if pairs else {}),
    )


def register() -> None:
    """Let AutoConfig / AutoModelForSequenceClassification resolve "hf_project_lstm"; idempotent."""
    AutoConfig.register(LSTMConfig.model_type, LSTMConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(LSTMConfig, LSTMForSequenceClassification, exist_ok=True)


register()


def _gather_steps(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[b, index[b, t]] for (B, T, F) x and (B, T) index."""
    return x.gather(1, index[:, :, None].expand(-1, -1, x.shape[-1]))
