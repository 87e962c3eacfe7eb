"""YAML defaults, command-line overrides, unknown keys, and the saved configuration."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from hf_project.config import augmentation_defaults, config_from_dict, parse_args
from hf_project.errors import UserError


def test_yaml_sets_defaults_and_flags_win(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: lstm\nlearning_rate: 0.001\nmax_length: 32\n")
    cfg = parse_args(["--config", str(path), "--max_length", "48"])
    assert cfg.model.model == "lstm" and cfg.train.learning_rate == 0.001
    assert cfg.data.max_length == 48
    assert cfg.train.seed == 2023  # untouched defaults stay


def test_dashes_and_booleans(tmp_path):
    cfg = parse_args(["--text-column", "body", "--no_stratify", "--class_weights"])
    assert cfg.data.text_column == "body" and cfg.data.stratify is False and cfg.train.class_weights is True


def test_unknown_yaml_key_is_an_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rat: 0.1\n")
    with pytest.raises(UserError, match="unknown key.*learning_rat"):
        parse_args(["--config", str(path)])


def test_unknown_flag_is_an_error():
    with pytest.raises(UserError, match="--learning_rat"):
        parse_args(["--learning_rat", "0.1"])


def test_invalid_values_are_errors(tmp_path):
    with pytest.raises(UserError, match="test_fraction"):
        parse_args(["--test_fraction", "1.5"])
    with pytest.raises(UserError, match="metric_for_best_model"):
        parse_args(["--metric_for_best_model", "f2"])
    with pytest.raises(UserError, match="does not exist"):
        parse_args(["--config", str(tmp_path / "missing.yaml")])


def test_resolved_config_round_trips_through_yaml(tmp_path):
    cfg = parse_args(["--model", "minilm", "--seed", "5", "--max_train_samples", "100"])
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert config_from_dict(yaml.safe_load(path.read_text())) == cfg
    assert parse_args(["--config", str(path)]) == cfg


def test_for_run_keeps_everything_else():
    cfg = parse_args(["--model", "minilm,lstm", "--seeds", "1,2"])
    assert cfg.train.seed_list == [1, 2]
    one = cfg.for_run("lstm", 2)
    assert one.model.model_names == ["lstm"]
    assert dataclasses.replace(one.data, random_resized_crop=None, horizontal_flip=None) == cfg.data
    assert one.train.seed == 2 and one.train.seeds is None and one.train.learning_rate == cfg.train.learning_rate


@pytest.mark.parametrize("name", ["lstm", "minilm"])
def test_for_run_resolves_unset_augmentation_per_model_family_and_keeps_given_values(name):
    family = augmentation_defaults(from_scratch=name == "lstm")
    unset = parse_args([]).for_run(name, 1).data
    assert (unset.random_resized_crop, unset.horizontal_flip) == (family["random_resized_crop"],
                                                                  family["horizontal_flip"])
    given = parse_args(["--random_resized_crop", "--no_horizontal_flip"]).for_run(name, 1).data
    assert (given.random_resized_crop, given.horizontal_flip) == (True, False)
    path_values = parse_args(["--horizontal_flip", "true", "--random_resized_crop", "false"]).data
    assert (path_values.random_resized_crop, path_values.horizontal_flip) == (False, True)


def test_model_left_out_is_empty_and_an_empty_model_is_an_error():
    assert parse_args([]).model.model_names == []
    with pytest.raises(UserError, match="--model is empty"):
        parse_args(["--model", ","])


def test_bad_seeds_are_an_error():
    with pytest.raises(UserError, match="--seeds"):
        parse_args(["--seeds", "1,x"])


@pytest.mark.parametrize("name", ["demo.yaml", "demo_image.yaml", "demo_audio.yaml"])
def test_the_shipped_demo_configs_parse(name):
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "configs" / name
    cfg = parse_args(["--config", str(path)])
    assert cfg.model.model_names and cfg.data.dataset
