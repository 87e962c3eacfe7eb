"""YAML defaults, command-line overrides, unknown keys, and the saved configuration."""

from __future__ import annotations

import pytest
import yaml

from hf_project.config import config_from_dict, parse_args
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
    assert one.model.model_names == ["lstm"] and one.data == cfg.data
    assert one.train.seed == 2 and one.train.seeds is None and one.train.learning_rate == cfg.train.learning_rate


def test_bad_seeds_are_an_error():
    with pytest.raises(UserError, match="--seeds"):
        parse_args(["--seeds", "1,x"])
