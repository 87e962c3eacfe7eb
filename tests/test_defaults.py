"""What a user gets without asking: the models picked per modality, and the evaluation budget's subset."""

from __future__ import annotations

import pytest

from hf_project.config import augmentation_defaults
from hf_project.data.splits import limit_eval, make_split
from hf_project.models.registry import DEFAULT_PRETRAINED, resolve
from hf_project.training import models_for


@pytest.mark.parametrize(("modality", "pretrained"), [("text", "minilm"), ("image", "mobilenet_v2"),
                                                      ("audio", "whisper_tiny")])
def test_model_left_out_trains_the_modality_offline_pretrained_model_against_lstm(modality, pretrained):
    names, specs = models_for(modality, [], [])
    assert names == [pretrained, "lstm"] and DEFAULT_PRETRAINED[modality] == pretrained
    assert specs[0].modality == modality and not specs[0].from_scratch and specs[1].from_scratch


def test_models_asked_for_are_kept_and_checked_against_the_data():
    assert models_for("image", ["lstm"], [resolve("lstm")])[0] == ["lstm"]
    with pytest.raises(Exception, match="classifies text"):
        models_for("image", ["minilm"], [resolve("minilm")])


def test_max_eval_samples_keeps_a_seeded_subset_of_validation_and_test_in_order():
    split = make_split({"train": 1000, "test": 400}, None, 7, 0.2, 0.1, "fp")
    small = limit_eval(split, 50, 7)
    assert small["train"] == split["train"] and small["hash"] != split["hash"]
    for part in ("validation", "test"):
        kept = small[part]["indices"]
        assert len(kept) == 50 and len(set(kept)) == 50 and set(kept) <= set(split[part]["indices"])
        positions = [split[part]["indices"].index(i) for i in kept]
        assert positions == sorted(positions)  # the original order
    assert limit_eval(split, 50, 7) == small  # seeded
    assert limit_eval(split, 50, 8)["test"] != small["test"]
    assert limit_eval(split, None, 7) is split and limit_eval(split, 10_000, 7)["test"] == split["test"]


def test_finetune_on_digits_without_model_trains_mobilenet_v2_and_lstm(tmp_path):
    """The command a new user types first for an image dataset: no --model, so no text model in the way."""
    import subprocess
    import sys

    import yaml
    from conftest import REPO_ROOT

    from hf_project.runs import find_runs

    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "finetune.py"), "--dataset", "digits", "--max_steps", "2",
         "--max_train_samples", "64", "--max_eval_samples", "16", "--image_size", "32",
         "--per_device_train_batch_size", "8", "--runs_dir", "runs", "--weights_dir", "weights", "--no_isolate_runs"],
        cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = {run.parent.name: yaml.safe_load((run / "config.yaml").read_text()) for run in find_runs(tmp_path / "runs")}
    assert set(runs) == {"mobilenet_v2", "lstm"}
    for name, config in runs.items():
        assert config["model"] == name  # each run's config names its own model: re-running it re-creates that run
        family = augmentation_defaults(from_scratch=name == "lstm")
        assert {k: config[k] for k in family} == family  # the augmentation it used, recorded
