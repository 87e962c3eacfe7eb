"""hf_project.modalities: every stage implements the whole ModalityStage contract, and the facts the stages share
(suffixes, front-end names, the modality of a model, hub ids) have one source."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
from audio_fixtures import write_clip

from hf_project.data import sources
from hf_project.errors import UserError
from hf_project.modalities import MODALITIES, Frontend, ModalityStage, file_modalities, get_stage
from hf_project.modalities.audio import LogMelFrontend, load_waveform
from hf_project.modalities.image import RowImageProcessor
from hf_project.models import modality_of
from hf_project.models.lstm import LSTMConfig
from hf_project.models.registry import is_hub_id
from hf_project.plots import SPECTROGRAM_RATE


def protocol_members(protocol: type) -> dict[str, object]:
    names = {n for n in vars(protocol) if not n.startswith("_")} | set(protocol.__annotations__)
    return {n: getattr(protocol, n, None) for n in names}


@pytest.mark.parametrize("modality", MODALITIES)
def test_every_stage_has_every_member_with_its_arity(modality):
    stage = get_stage(modality)
    assert isinstance(stage, ModalityStage)
    for name, member in protocol_members(ModalityStage).items():
        assert hasattr(stage, name), f"{modality} stage lacks {name}"
        if callable(member):
            wanted = len(inspect.signature(member).parameters) - 1  # the protocol's methods take self
            got = inspect.signature(getattr(stage, name)).parameters.values()
            positional = [p for p in got if p.kind is p.POSITIONAL_OR_KEYWORD]
            required = [p for p in positional if p.default is p.empty]
            assert len(required) <= wanted <= len(positional), f"{modality}.{name}{inspect.signature(member)}"
    assert isinstance(stage.TRAINER_OPTIONS, dict) and isinstance(stage.INPUT_SUFFIXES, tuple)
    assert all(s.startswith(".") and s == s.lower() for s in stage.INPUT_SUFFIXES)


def test_unknown_modality_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid ones are text, image, audio"):
        get_stage("video")


def test_suffixes_have_one_source_and_do_not_overlap():
    assert file_modalities() == ("image", "audio")
    image, audio = get_stage("image").INPUT_SUFFIXES, get_stage("audio").INPUT_SUFFIXES
    assert not set(image) & set(audio)
    assert {".png", ".jpg", ".webp"} <= set(image) and {".wav", ".flac", ".mp3", ".m4a", ".aiff"} <= set(audio)
    assert not hasattr(sources, "IMAGE_SUFFIXES") and not hasattr(sources, "AUDIO_SUFFIXES")


@pytest.mark.parametrize(
    "frontend",
    [RowImageProcessor(8, 0.25, 0.5), LogMelFrontend.create(8000, 16, 0.5)],
    ids=["image-rows", "audio-log-mel"],
)
def test_frontends_round_trip_through_the_config_under_one_name(frontend):
    assert isinstance(frontend, Frontend)
    if isinstance(frontend, LogMelFrontend):
        frontend.mean, frontend.std = [0.0] * 16, [1.0] * 16
    saved = json.loads(json.dumps(frontend.to_frontend()))  # what config.json holds
    assert saved["modality"] in MODALITIES
    assert type(frontend).from_frontend(saved) == frontend


def test_saved_formats_are_unchanged():
    """Models saved before the front-ends shared one method name still load: the stored mappings are the same."""
    assert RowImageProcessor(8, 0.25, 0.5).to_frontend() == {
        "modality": "image", "layout": "rows", "image_size": 8, "color_mode": "L", "resample": "bilinear",
        "rescale_factor": 1 / 255, "mean": 0.25, "std": 0.5}
    saved = LogMelFrontend.create(8000, 16, 0.5).to_frontend()
    assert (saved["modality"], saved["kind"], saved["sampling_rate"], saved["n_mels"]) == ("audio", "log_mel", 8000, 16)


def test_modality_of_a_model_has_one_answer():
    assert modality_of(LSTMConfig(modality="image", input_type="features", input_dim=8)) == "image"
    # LSTMs saved before the config recorded its modality: the front-end names it, else tokens mean text
    assert modality_of(LSTMConfig(input_type="features", input_dim=8, frontend={"modality": "audio"})) == "audio"
    assert modality_of(LSTMConfig()) == "text"
    assert modality_of(LSTMConfig(input_type="features", input_dim=8)) is None
    from transformers import BertConfig, ViTConfig

    assert modality_of(BertConfig()) == "text" and modality_of(ViTConfig()) == "image"
    assert modality_of(ViTConfig(), prefer="audio") == "image"  # prefer counts only among what it can classify


@pytest.mark.parametrize(
    ("name", "hub"),
    [("org/name", True), ("google/vit-base-patch16-224", True), ("./org/name", False), ("/org/name", False),
     ("name", False), ("a/b/c", False)],
)
def test_hub_ids(name, hub):
    assert is_hub_id(name) is hub


def test_display_values_are_what_the_figures_draw(tmp_path):
    texts = ["one", "two"]
    assert get_stage("text").display_values(texts) == texts
    clip = write_clip(tmp_path / "a.wav", np.sin(np.linspace(0, 200, 4000)).astype(np.float32), 8000)
    (wave,) = get_stage("audio").display_values([str(clip)])
    np.testing.assert_array_equal(wave, load_waveform(str(clip), SPECTROGRAM_RATE))
    from PIL import Image

    image = Image.new("RGB", (4, 4))
    assert get_stage("image").display_values([image]) == [image]


def test_file_stages_read_folders_and_refuse_missing_files(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.png", "sub/a.PNG", "notes.txt", "c.wav"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.rsplit("/", 1)[-1] for p in get_stage("image").read_inputs(tmp_path, "text")] == ["b.png", "a.PNG"]
    assert [p.rsplit("/", 1)[-1] for p in get_stage("audio").read_inputs(tmp_path, "text")] == ["c.wav"]
    with pytest.raises(UserError, match="audio file .*nope.wav does not exist"):
        get_stage("audio").check_inputs([str(tmp_path / "nope.wav")])
    with pytest.raises(UserError, match="a text model needs strings"):
        get_stage("text").check_inputs([3])


def test_tokenised_cache_written_by_another_process_first_is_used(fortunes_csv, tiny_bert, tmp_path, monkeypatch):
    """Two runs tokenising the same data at once: the second to finish keeps the first one's (identical) copy."""
    from datasets import DatasetDict

    from hf_project.config import DataArguments, parse_args
    from hf_project.data import prepare_data
    from hf_project.modalities import text
    from hf_project.models.registry import resolve

    data = prepare_data(DataArguments(dataset=str(fortunes_csv)), seed=0)
    tokenizer = text.load_processor(resolve(str(tiny_bert)), data, parse_args([]))
    save = DatasetDict.save_to_disk

    def racing_save(self, path, *args, **kwargs):
        temporary = Path(path)  # .<target>.<random>, beside the target
        winner = temporary.with_name(temporary.name.split(".")[1])
        if not winner.exists():
            save(self, str(winner))  # the other process renames its copy into place first
        save(self, path, *args, **kwargs)

    monkeypatch.setattr(DatasetDict, "save_to_disk", racing_save)
    tokenized = text.tokenize(data.splits, tokenizer, 32, data.split["hash"], tmp_path)
    left = [p.name for p in (tmp_path / "tokenized").iterdir()]
    assert len(left) == 1 and not left[0].startswith(".")  # the winner's copy, no temporary folder left
    assert max(tokenized["train"]["length"]) <= 32
