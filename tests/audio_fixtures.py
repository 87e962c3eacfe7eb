"""Synthetic audio data and tiny random-init audio checkpoints, built by the tests themselves (no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

# Three classes told apart by pitch; each clip is a noisy tone with a random phase, level and slight detuning.
TONES = {"high": 1320.0, "low": 330.0, "mid": 660.0}
# (extension, soundfile subtype): every format the issue names, all decoded by soundfile's bundled libsndfile.
FORMATS = (("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III"))
RATES = (8000, 16000, 22050, 44100)


def tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5, phase: float = 0.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def write_clip(path: Path, samples: np.ndarray, rate: int) -> Path:
    subtype = dict(FORMATS).get(path.suffix.lstrip("."), "PCM_16")
    sf.write(path, samples, rate, subtype=subtype)
    return path


def write_tone_folder(root: Path, per_class: int = 16, seed: int = 0) -> Path:
    """An audiofolder: root/<class>/<clip>, mixing formats, sampling rates, durations and mono/stereo."""
    rng = np.random.default_rng(seed)
    for c, (name, freq) in enumerate(TONES.items()):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            ext, _ = FORMATS[i % len(FORMATS)]
            rate = RATES[(i // len(FORMATS) + c) % len(RATES)]
            x = tone(freq * rng.uniform(0.97, 1.03), rng.uniform(0.35, 0.8), rate, rng.uniform(0.2, 0.6),
                     rng.uniform(0, 2 * np.pi))
            x += 0.02 * rng.standard_normal(len(x)).astype(np.float32)
            samples = np.stack([x, 0.5 * x], axis=1) if i % 3 == 0 else x  # every third clip is stereo
            write_clip(folder / f"{name}_{i:02d}.{ext}", samples, rate)
    return root


def dominant_frequency(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


def save_tiny_wav2vec2(path: Path, kind: str = "wav2vec2") -> Path:
    """2 layers, hidden 32, a 2-layer conv stack (stride 80: 200 frames/s), saved with its feature extractor."""
    from transformers import (
        HubertConfig,
        HubertForSequenceClassification,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForSequenceClassification,
    )

    sizes = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                 conv_dim=(16, 16), conv_stride=(10, 8), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
                 num_conv_pos_embedding_groups=2, classifier_proj_size=16, mask_time_length=4)
    if kind == "hubert":
        # layer-norm feature encoder + attention mask, the other wav2vec2-family configuration
        config, model_cls = HubertConfig(feat_extract_norm="layer", **sizes), HubertForSequenceClassification
        extractor = Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=True)
    else:
        config, model_cls = Wav2Vec2Config(**sizes), Wav2Vec2ForSequenceClassification
        extractor = Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=False)
    torch.manual_seed(0)
    model_cls(config).save_pretrained(path)
    extractor.save_pretrained(path)
    return path


def save_tiny_ast(path: Path) -> Path:
    """Audio Spectrogram Transformer over 16 mel bins x 48 frames (0.48 s), 2 layers, hidden 32."""
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    config = ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       patch_size=16, frequency_stride=16, time_stride=16, num_mel_bins=16, max_length=48)
    torch.manual_seed(0)
    ASTForAudioClassification(config).save_pretrained(path)
    ASTFeatureExtractor(num_mel_bins=16, max_length=48, sampling_rate=16000).save_pretrained(path)
    return path
