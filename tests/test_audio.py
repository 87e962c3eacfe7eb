"""Audio: sources, decoding and resampling, crops, the log-mel LSTM front-end, end-to-end runs and bad input."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from audio_fixtures import (
    FORMATS,
    TONES,
    dominant_frequency,
    save_tiny_ast,
    save_tiny_wav2vec2,
    tone,
    write_clip,
    write_tone_folder,
)
from conftest import REPO_ROOT, write_csv

from hf_project import cli
from hf_project.config import parse_args
from hf_project.data import prepare_data
from hf_project.data.sources import load_raw
from hf_project.errors import UserError
from hf_project.modalities import audio
from hf_project.models import load_model
from hf_project.models.registry import ModelSpec
from hf_project.runs import find_runs, read_status
from hf_project.training import ClassificationTrainer, run_experiment

CONTRACT = (
    "status", "config.yaml", "manifest.json", "split.json", "class_balance.csv", "log_history.json", "metrics.json",
    "predictions_test.csv", "classification_report.csv", "figures/loss.png", "figures/confusion_matrix.png",
    "model/config.json", "model/model.safetensors",
)
# Clips last 0.35-0.8 s: 0.5 s crops some and pads others. The LSTM reads 16 mel bands at 8 kHz.
TINY = ["--max_duration_s", "0.5", "--num_train_epochs", "2", "--lstm_num_train_epochs", "15",
        "--per_device_train_batch_size", "8", "--lstm_sampling_rate", "8000", "--lstm_n_mels", "16",
        "--lstm_embedding_dim", "16", "--lstm_hidden_size", "16", "--lstm_learning_rate", "0.01",
        "--logging_steps", "2"]


@pytest.fixture(scope="session")
def tone_folder(tmp_path_factory) -> Path:
    return write_tone_folder(tmp_path_factory.mktemp("audio") / "tones")


@pytest.fixture(scope="session")
def tiny_wav2vec2(tmp_path_factory) -> Path:
    return save_tiny_wav2vec2(tmp_path_factory.mktemp("ckpt") / "tiny-wav2vec2")


@pytest.fixture(scope="session")
def tiny_hubert(tmp_path_factory) -> Path:
    return save_tiny_wav2vec2(tmp_path_factory.mktemp("ckpt") / "tiny-hubert", kind="hubert")


@pytest.fixture(scope="session")
def tiny_ast(tmp_path_factory) -> Path:
    return save_tiny_ast(tmp_path_factory.mktemp("ckpt") / "tiny-ast")


def stage_inputs(folder: Path, model: str, *flags: str):
    cfg = parse_args(["--dataset", str(folder), "--model", model, *TINY, *flags])
    data = prepare_data(cfg.data, cfg.train.seed)
    spec = ModelSpec("lstm", None) if model == "lstm" else ModelSpec(Path(model).name, model)
    return cfg, data, audio.load_processor(spec, data, cfg)


# ---------------------------------------------------------------------------------------------------------------
# sources and decoding


def test_audio_folder_source_reads_every_format_undecoded(tone_folder):
    raw = load_raw(str(tone_folder))
    assert list(raw) == ["train"] and len(raw["train"]) == 48
    features = raw["train"].features
    assert isinstance(features["audio"], datasets.Audio) and not features["audio"].decode
    assert features["label"].names == sorted(TONES)
    paths = [a["path"] for a in raw["train"]["audio"]]
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in paths)
    assert {Path(p).suffix for p in paths} == {f".{ext}" for ext, _ in FORMATS}
    data = prepare_data(parse_args(["--dataset", str(tone_folder)]).data, 2023)
    assert data.modality == "audio" and data.name == "tones" and data.label_names == sorted(TONES)


def test_audio_folder_with_split_folders(tmp_path):
    for split, n in (("train", 4), ("test", 2)):
        for name, freq in TONES.items():
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(n):
                write_clip(tmp_path / split / name / f"{i}.flac", tone(freq, 0.2, 8000), 8000)
    raw = load_raw(str(tmp_path))
    assert {k: len(v) for k, v in raw.items()} == {"train": 12, "test": 6}
    assert raw["test"].features["label"].names == sorted(TONES)
    labels = [raw["test"].features["label"].int2str(i) for i in raw["test"]["label"]]
    assert [Path(a["path"]).parent.name for a in raw["test"]["audio"]] == labels


def test_decode_resamples_to_the_model_rate_and_keeps_pitch(tmp_path):
    x = tone(440.0, 1.0, 44100)
    path = write_clip(tmp_path / "a440.wav", np.stack([x, np.zeros_like(x)], axis=1), 44100)  # stereo
    wave = audio.load_waveform(path, 16000)
    assert wave.dtype == np.float32 and wave.ndim == 1 and len(wave) == 16000
    assert dominant_frequency(wave, 16000) == pytest.approx(440.0, abs=2)
    # mono is the channel average: a tone in one channel only comes out at half amplitude
    assert np.abs(wave[1000:-1000]).max() == pytest.approx(0.25, abs=0.01)
    same = audio.load_waveform({"bytes": path.read_bytes(), "path": "a440.wav"}, 16000)  # hub-style bytes
    np.testing.assert_array_equal(same, wave)


def test_every_clip_of_the_folder_decodes_at_its_class_pitch(tone_folder):
    """wav, flac, ogg and mp3, at 8-44.1 kHz, mono and stereo, all resampled to 16 kHz."""
    for path in sorted(tone_folder.rglob("*.*")):
        wave = audio.load_waveform(path, 16000)
        assert dominant_frequency(wave, 16000) == pytest.approx(TONES[path.parent.name], rel=0.05), path


def test_undecodable_input_is_named(tmp_path):
    (tmp_path / "noise.mp3").write_bytes(b"not audio at all" * 64)
    (tmp_path / "noise.wav").write_bytes(b"not audio at all" * 64)
    for clip, reason in ((tmp_path / "noise.mp3", "corrupt or unsupported"), (tmp_path / "noise.wav", "not recognised"),
                         (tmp_path / "gone.wav", "no such file"),
                         ({"bytes": b"\x00" * 10, "path": "x.wav"}, "(?i)format not recognised")):
        with pytest.raises(audio.UndecodableAudio, match=reason):
            audio.load_waveform(clip, 16000)
    with pytest.raises(UserError, match=r"audio file .*noise\.mp3 does not decode"):
        audio.inputs_for([tmp_path / "noise.mp3"], audio.LogMelFrontend.create(8000, 8, 0.5))


# ---------------------------------------------------------------------------------------------------------------
# crops and model inputs


def test_crop_helpers():
    wave = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(audio.centre_crop(wave, 4), [3, 4, 5, 6])
    np.testing.assert_array_equal(audio.centre_crop(wave[:3], 4), [0, 1, 2])  # shorter: padded later
    np.testing.assert_array_equal(audio.random_crop(wave[:3], 4), [0, 1, 2])
    starts = set()
    for _ in range(50):
        crop = audio.random_crop(wave, 4)
        assert len(crop) == 4 and np.all(np.diff(crop) == 1)  # one contiguous window
        starts.add(int(crop[0]))
    assert starts == set(range(7))


def test_train_crops_are_random_but_seeded_and_eval_is_deterministic(tone_folder, tiny_wav2vec2):
    cfg, data, extractor = stage_inputs(tone_folder, str(tiny_wav2vec2), "--max_duration_s", "0.2")
    prepared = audio.prepare(data, extractor, cfg)
    assert set(prepared) == {"train", "validation", "test"}
    for split in prepared:
        example = prepared[split][0]
        assert set(example) == {"input_values", "labels"}  # no mask: this extractor's model was trained without
        assert np.asarray(example["input_values"]).shape == (3200,)  # 0.2 s at 16 kHz
    first, second = prepared["train"][0]["input_values"], prepared["train"][0]["input_values"]
    assert not np.allclose(first, second)  # every clip lasts >= 0.35 s: two crops differ
    torch.manual_seed(7)
    a = [prepared["train"][i]["input_values"] for i in range(3)]
    torch.manual_seed(7)
    b = [prepared["train"][i]["input_values"] for i in range(3)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    for split in ("validation", "test"):
        np.testing.assert_array_equal(prepared[split][1]["input_values"], prepared[split][1]["input_values"])
    test = prepared["test"]
    assert [test[i]["labels"] for i in range(len(test))] == list(data.splits["test"]["label"])


def test_short_clips_are_padded_with_a_mask(tone_folder, tiny_hubert):
    cfg, data, extractor = stage_inputs(tone_folder, str(tiny_hubert), "--max_duration_s", "1.0")
    prepared = audio.prepare(data, extractor, cfg)
    for split in ("train", "test"):
        example = prepared[split][0]
        values, mask = np.asarray(example["input_values"]), np.asarray(example["attention_mask"])
        assert values.shape == mask.shape == (16000,)  # every clip is shorter than 1 s
        real = int(mask.sum())
        path = data.splits[split][0]["audio"]["path"]
        assert real == len(audio.load_waveform(path, 16000)) and np.all(mask[:real] == 1)
        assert np.all(values[real:] == 0)
        assert abs(values[:real].mean()) < 1e-3 and values[:real].std() == pytest.approx(1, abs=1e-2)
    batch = audio.collator(extractor)([prepared["train"][i] for i in range(4)])
    assert batch["input_values"].shape == (4, 16000) and batch["input_values"].dtype == torch.float32
    assert batch["attention_mask"].dtype == torch.long and batch["labels"].shape == (4,)


def test_ast_gets_its_spectrogram_frames(tone_folder, tiny_ast):
    cfg, data, extractor = stage_inputs(tone_folder, str(tiny_ast))
    prepared = audio.prepare(data, extractor, cfg)
    example = prepared["validation"][0]
    assert set(example) == {"input_values", "labels"}
    assert np.asarray(example["input_values"]).shape == (48, 16)  # the checkpoint's max_length x num_mel_bins
    assert extractor.max_duration_s == 0.5  # saved with the model for inference


def test_lstm_frontend_standardised_log_mel(tone_folder):
    cfg, data, frontend = stage_inputs(tone_folder, "lstm")
    assert isinstance(frontend, audio.LogMelFrontend) and frontend.sampling_rate == 8000 and frontend.n_mels == 16
    assert (frontend.win_length, frontend.hop_length, frontend.n_fft) == (200, 80, 256)
    prepared = audio.prepare(data, frontend, cfg)
    frames = frontend.num_frames(4000)  # 0.5 s at 8 kHz, 10 ms hop
    real = []
    for i in range(len(prepared["validation"])):
        example = prepared["validation"][i]
        feats, mask = np.asarray(example["input_features"]), np.asarray(example["attention_mask"])
        assert feats.shape == (frames, 16) and mask.shape == (frames,) and feats.dtype == np.float32
        n = int(mask.sum())
        assert np.all(mask[:n] == 1) and np.all(feats[n:] == 0)  # right-padded, as the LSTM requires
        real.append(feats[:n])
    real = np.concatenate(real)
    assert abs(real.mean()) < 0.5 and 0.5 < real.std() < 1.5  # standardised with training statistics
    inputs = audio.lstm_inputs(frontend, cfg)
    assert (inputs["input_type"], inputs["input_dim"]) == ("features", 16)
    saved = json.loads(json.dumps(inputs["frontend"]))  # what config.json holds
    assert saved["kind"] == "log_mel" and saved["modality"] == "audio" and len(saved["mean"]) == 16
    rebuilt = audio.LogMelFrontend.from_dict(saved)
    assert rebuilt == frontend
    path = data.splits["test"][0]["audio"]["path"]
    batch = audio.inputs_for([path], rebuilt)
    np.testing.assert_allclose(batch["input_features"][0].numpy(), prepared["test"][0]["input_features"], atol=1e-6)
    assert audio.lstm_inputs(object(), cfg) == {}  # pretrained models ignore it


def test_clips_past_the_memory_budget_are_decoded_when_read(tone_folder, monkeypatch):
    cfg, data, frontend = stage_inputs(tone_folder, "lstm")
    cached = audio.prepare(data, frontend, cfg)
    monkeypatch.setattr(audio, "CACHE_BYTES", 40_000)  # room for a few clips only
    streamed = audio.prepare(data, frontend, cfg)
    assert len(streamed["test"].format["columns"]) == 3 and len(cached["test"].format["columns"]) == 2
    for i in range(len(cached["test"])):
        np.testing.assert_array_equal(streamed["test"][i]["input_features"], cached["test"][i]["input_features"])


# ---------------------------------------------------------------------------------------------------------------
# end to end


def finetune(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "finetune.py"), *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=600)


def test_end_to_end_audio_runs(tone_folder, tiny_wav2vec2, tiny_hubert, tiny_ast, tmp_path):
    models = [tiny_wav2vec2, tiny_hubert, tiny_ast]
    argv = ["--dataset", str(tone_folder), "--model", ",".join([*map(str, models), "lstm"]), *TINY,
            "--runs_dir", str(tmp_path / "runs"), "--weights_dir", str(tmp_path / "weights")]
    proc = finetune(argv, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dirs = {d.parent.name: d for d in find_runs(tmp_path / "runs")}
    assert set(run_dirs) == {*(m.name for m in models), "lstm"}
    for name, run_dir in run_dirs.items():
        extra = () if name == "lstm" else ("model/preprocessor_config.json",)
        for file in (*CONTRACT, *extra):
            assert (run_dir / file).is_file() and (run_dir / file).stat().st_size > 0, f"{run_dir}/{file}"
        assert read_status(run_dir) == "complete" and not (run_dir / "checkpoints").exists()
        rows = check_run_files(run_dir, tone_folder)
        check_weights(tmp_path / "weights" / "tones" / name, rows)
    assert len({json.loads((d / "manifest.json").read_text())["split_hash"] for d in run_dirs.values()}) == 1

    lstm = run_dirs["lstm"]
    metrics = json.loads((lstm / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.7  # three pitches, chance 1/3
    losses = [e["loss"] for e in json.loads((lstm / "log_history.json").read_text()) if "loss" in e]
    assert losses[0] == pytest.approx(math.log(3), abs=0.15) and losses[-1] < losses[0] - 0.3
    config = json.loads((lstm / "model" / "config.json").read_text())
    assert config["input_type"] == "features" and config["frontend"]["sampling_rate"] == 8000
    assert yaml.safe_load((lstm / "config.yaml").read_text())["max_duration_s"] == 0.5


def check_run_files(run_dir: Path, folder: Path) -> list[dict]:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["label_names"] == sorted(TONES) and manifest["dataset"]["name"] == "tones"
    split = json.loads((run_dir / "split.json").read_text())
    with open(run_dir / "predictions_test.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["source_row"]) for r in rows] == split["test"]["indices"]
    for row in rows:  # the input column names the clip's file, whose folder is its class
        assert Path(row["input"]).is_file() and Path(row["input"]).parent.parent == folder
        assert Path(row["input"]).parent.name == row["label"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["validation"]["best_step"] > 0
    assert sum(r["label"] == r["predicted"] for r in rows) / len(rows) == pytest.approx(metrics["test"]["accuracy"])
    return rows


def check_weights(weights: Path, rows: list[dict]) -> None:
    """The saved weights, reloaded for inference, give the run's test probabilities again."""
    model, processor = load_model(weights)
    frontend = audio.frontend_of(model.config, processor)
    batch = audio.inputs_for([r["input"] for r in rows], frontend)
    with torch.no_grad():
        probs = model(**batch).logits.softmax(-1)
    expected = torch.tensor([[float(r[f"p_{name}"]) for name in sorted(TONES)] for r in rows])
    torch.testing.assert_close(probs, expected, atol=1e-4, rtol=0)


def test_same_seed_same_lstm_run(tone_folder, tmp_path):
    """Random crops draw from torch's seeded RNG: two runs with one seed log the same numbers."""
    argv = ["--dataset", str(tone_folder), "--model", "lstm", *TINY, "--max_duration_s", "0.3",
            "--lstm_num_train_epochs", "3", "--runs_dir", str(tmp_path / "runs"), "--weights_dir", str(tmp_path / "w")]
    run_experiment(parse_args(argv))
    run_experiment(parse_args(argv))
    first, second = find_runs(tmp_path / "runs")

    def numbers(run_dir: Path) -> tuple:
        history = json.loads((run_dir / "log_history.json").read_text())
        history = [{k: v for k, v in e.items() if "runtime" not in k and "per_second" not in k} for e in history]
        return json.loads((run_dir / "metrics.json").read_text()), history

    assert numbers(first) == numbers(second)


def test_hub_dataset_with_an_audio_column(tmp_path, monkeypatch, capsys):
    """A hub dataset carries the file bytes and only a file name; the stage decodes the bytes."""
    rows, rng = [], np.random.default_rng(1)
    for i in range(30):
        name = sorted(TONES)[i % 3]
        buffer = io.BytesIO()
        sf.write(buffer, tone(TONES[name], rng.uniform(0.3, 0.6), 16000), 16000, format="FLAC")
        rows.append({"audio": {"bytes": buffer.getvalue(), "path": f"clip_{i:02d}.flac"}, "label": i % 3})
    features = datasets.Features({"audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
                                  "label": datasets.ClassLabel(names=sorted(TONES))})
    hub = datasets.Dataset.from_list(rows, features=features).cast_column("audio", datasets.Audio())
    monkeypatch.setattr(datasets, "load_dataset", lambda name, config=None: datasets.DatasetDict({"train": hub}))
    argv = ["--dataset", "someone/tones", "--model", "lstm", *TINY, "--lstm_num_train_epochs", "2",
            "--runs_dir", str(tmp_path / "runs"), "--weights_dir", str(tmp_path / "w")]
    run_experiment(parse_args(argv))
    (run_dir,) = find_runs(tmp_path / "runs")
    assert run_dir.parts[-3] == "someone__tones"
    with open(run_dir / "predictions_test.csv") as f:
        assert all(r["input"].startswith("clip_") for r in csv.DictReader(f))

    rows[4]["audio"] = {"bytes": b"broken" * 50, "path": None}  # bytes only: named by its row
    broken = datasets.Dataset.from_list(rows, features=features).cast_column("audio", datasets.Audio())
    monkeypatch.setattr(datasets, "load_dataset", lambda name, config=None: datasets.DatasetDict({"train": broken}))
    line = bad_run(argv, capsys)
    assert "audio file does not decode: <audio row 4 of the dataset's train split>" in line


# ---------------------------------------------------------------------------------------------------------------
# bad input


def bad_run(argv: list[str], capsys) -> str:
    assert cli.run(lambda: run_experiment(parse_args(argv))) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ")
    return err[-1]


def out_flags(root: Path) -> list[str]:
    return ["--runs_dir", str(root / "runs"), "--weights_dir", str(root / "w")]


def assert_nothing_complete(root: Path) -> None:
    assert find_runs(root / "runs") == []
    for run_dir in find_runs(root / "runs", complete_only=False):  # a failed run never got to train
        assert read_status(run_dir) == "failed" and not (run_dir / "log_history.json").exists()
    assert not any((root / "w").rglob("*.safetensors"))


@pytest.mark.parametrize("model", ["lstm", "wav2vec2_dir"])
def test_undecodable_files_fail_before_training(tone_folder, tiny_wav2vec2, tmp_path, capsys, model):
    folder = shutil.copytree(tone_folder, tmp_path / "tones")
    (folder / "low" / "broken.wav").write_bytes(b"RIFF" + b"\x00" * 200)
    (folder / "high" / "empty.ogg").write_bytes(b"")
    chosen = "lstm" if model == "lstm" else str(tiny_wav2vec2)
    line = bad_run(["--dataset", str(folder), "--model", chosen, *TINY, *out_flags(tmp_path)], capsys)
    assert "2 audio files do not decode" in line and "broken.wav (Format not recognised)" in line
    assert "empty.ogg (empty file)" in line
    assert_nothing_complete(tmp_path)


def test_empty_class_folder(tone_folder, tmp_path, capsys):
    folder = shutil.copytree(tone_folder, tmp_path / "tones")
    (folder / "silence").mkdir()
    line = bad_run(["--dataset", str(folder), "--model", "lstm", *TINY, *out_flags(tmp_path)], capsys)
    assert "silence has no image or audio files" in line
    assert_nothing_complete(tmp_path)


def test_audio_model_on_text_data(tmp_path, capsys):
    data = write_csv(tmp_path / "text.csv", [{"text": f"words {i}", "label": "ab"[i % 2]} for i in range(20)])
    line = bad_run(["--dataset", str(data), "--model", "wav2vec2", *TINY, *out_flags(tmp_path)], capsys)
    assert "classifies audio, but this dataset is text" in line
    assert_nothing_complete(tmp_path)


@pytest.mark.parametrize("model", ["distilbert", "tiny_bert"])
def test_text_model_on_audio_data(tone_folder, tiny_bert, tmp_path, capsys, model):
    chosen = str(tiny_bert) if model == "tiny_bert" else model
    line = bad_run(["--dataset", str(tone_folder), "--model", chosen, *TINY, *out_flags(tmp_path)], capsys)
    assert "this dataset is audio" in line or "cannot classify audio data" in line
    assert_nothing_complete(tmp_path)


def test_best_checkpoint_is_really_restored(tiny_ast, tmp_path):
    """AST's weights are renamed on load; the best checkpoint must still come back whole."""
    from transformers import ASTForAudioClassification, TrainingArguments

    model = ASTForAudioClassification.from_pretrained(tiny_ast)
    best = {k: v.clone() for k, v in model.state_dict().items()}
    model.save_pretrained(tmp_path / "best")  # legacy names on disk, as the Trainer's checkpoints have
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to="none")
    trainer = ClassificationTrainer(model=model, args=args)
    trainer.state.best_model_checkpoint = str(tmp_path / "best")
    trainer._load_best_model()
    for key, value in trainer.model.state_dict().items():
        torch.testing.assert_close(value, best[key], msg=key)
