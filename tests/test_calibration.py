"""Calibration: ECE, Brier score and NLL against their definitions, the temperature fitted on validation
(--temperature_scaling), and what a run writes of them (metrics, reliability figure, the model's config, inference)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import write_csv
from test_cli import TINY
from test_inference import check_same_as_evaluation, make_runs
from test_tasks import MULTI, REGRESSION, multi_label_rows, one_line_error, regression_rows

from hf_project import runs
from hf_project.inference import Predictor, run_test_examples
from hf_project.metrics import (
    CALIBRATION_METRIC_NAMES,
    calibration_scores,
    expected_calibration_error,
    reliability_bins,
)
from hf_project.tasks import TEMPERATURE_SETTING, MultiLabel, Regression, SingleLabel, task_of_model

# ---- the scores against their definitions ----------------------------------------------------------------------


def test_ece_of_confidence_0_9_at_half_accuracy_is_0_4():
    assert expected_calibration_error(np.full(10, 0.9), np.array([1, 0] * 5)) == pytest.approx(0.4)
    # the same through the class probabilities: the confidence is the largest one, half the labels disagree
    probabilities = np.tile([0.9, 0.05, 0.05], (10, 1))
    scores = calibration_scores(np.array([0] * 5 + [1, 2] * 2 + [1]), probabilities, "single_label")
    assert scores["ece"] == pytest.approx(0.4)


def test_ece_weighs_each_bin_by_its_share():
    # 15 bins of width 1/15: 0.19 falls in (0.1333, 0.2], 0.25 in (0.2, 0.2667], 0.95 and 1.0 in the last one
    confidences = np.array([0.19, 0.25, 0.95, 1.0])
    outcomes = np.array([0, 1, 1, 1])
    bins = reliability_bins(confidences, outcomes)
    assert len(bins["count"]) == 15 and sum(bins["count"]) == 4
    assert bins["count"][2] == 1 and bins["count"][3] == 1 and bins["count"][14] == 2
    expected = (abs(0 - 0.19) + abs(1 - 0.25) + 2 * abs(1 - 0.975)) / 4
    assert bins["ece"] == pytest.approx(expected)
    assert expected_calibration_error(np.array([0.5] * 4), np.array([1, 0, 1, 0])) == 0.0  # right on average


def test_brier_and_nll_of_single_label_by_hand():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]])
    labels = np.array([0, 2])
    scores = calibration_scores(labels, probabilities, "single_label")
    # the sum over classes of (p - onehot)^2, averaged over examples
    brier = ((0.3 ** 2 + 0.2 ** 2 + 0.1 ** 2) + (0.1 ** 2 + 0.6 ** 2 + 0.7 ** 2)) / 2
    assert scores["brier"] == pytest.approx(brier)
    assert scores["nll"] == pytest.approx(-(math.log(0.7) + math.log(0.3)) / 2)
    # confidences 0.7 (right) and 0.6 (wrong), in different bins
    assert scores["ece"] == pytest.approx((0.3 + 0.6) / 2)
    assert set(scores) == set(CALIBRATION_METRIC_NAMES)
    # a probability of 0 for the true class is clipped, not infinite
    assert calibration_scores(np.array([1]), np.array([[1.0, 0.0]]), "single_label")["nll"] == pytest.approx(
        -math.log(1e-12))


def test_multi_label_scores_treat_every_pair_as_a_binary_prediction():
    labels = np.array([[1, 0], [0, 1]])
    probabilities = np.array([[0.8, 0.3], [0.1, 0.6]])
    scores = calibration_scores(labels, probabilities, "multi_label")
    assert scores["brier"] == pytest.approx((0.2 ** 2 + 0.3 ** 2 + 0.1 ** 2 + 0.4 ** 2) / 4)
    assert scores["nll"] == pytest.approx(-(math.log(0.8) + math.log(0.7) + math.log(0.9) + math.log(0.6)) / 4)
    assert scores["ece"] == pytest.approx((0.2 + 0.3 + 0.1 + 0.4) / 4)  # one pair per bin
    with pytest.raises(ValueError, match="regression"):
        calibration_scores(np.array([1.0]), np.array([[1.0]]), "regression")
    assert Regression().calibration(np.array([1.0, 2.0]), np.array([1.5, 2.5])) == {}


# ---- the temperature -------------------------------------------------------------------------------------------


def noisy_logits(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits that favour the label, and labels with 20% of them replaced at random."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.normal(0.0, 1.0, (n, k))
    logits[np.arange(n), labels] += 2.0
    flip = rng.random(n) < 0.2
    labels[flip] = rng.integers(0, k, flip.sum())
    return logits, labels


def test_over_confident_logits_get_a_temperature_above_1_and_a_lower_nll():
    logits, labels = noisy_logits(600, 4)
    sharp = 5 * logits  # over-confident
    task = SingleLabel().with_temperature(labels, sharp)
    before, after = task.temperature_fit
    assert task.temperature > 1.5 and after < before
    assert after == pytest.approx(SingleLabel().logit_nll(labels, sharp / task.temperature))
    # the scaled probabilities are better calibrated by every score, and name the same class
    plain, scaled = SingleLabel().outputs(sharp), task.outputs(sharp)
    np.testing.assert_array_equal(plain.argmax(-1), scaled.argmax(-1))
    old, new = (calibration_scores(labels, p, "single_label") for p in (plain, scaled))
    assert new["nll"] < old["nll"] and new["ece"] < old["ece"] and new["brier"] < old["brier"]
    # deterministic, and a minimum: T a little either way is worse
    assert SingleLabel().with_temperature(labels, sharp) == task
    for t in (0.9 * task.temperature, 1.1 * task.temperature):
        assert SingleLabel().logit_nll(labels, sharp / t) > after


def test_calibrated_logits_keep_a_temperature_near_1():
    rng = np.random.default_rng(1)
    logits = rng.normal(0.0, 2.0, (4000, 3))
    probabilities = SingleLabel().outputs(logits).astype(np.float64)
    labels = np.array([rng.choice(3, p=p / p.sum()) for p in probabilities])  # drawn from the model's own belief
    assert SingleLabel().with_temperature(labels, logits).temperature == pytest.approx(1.0, abs=0.1)


def test_multi_label_temperature_uses_the_binary_nll():
    rng = np.random.default_rng(2)
    truth = (rng.random((500, 3)) < 0.3).astype(np.int64)
    logits = 6 * (rng.normal(0.0, 1.0, truth.shape) + (2 * truth - 1))  # right mostly, and far too sure
    task = MultiLabel(threshold=0.4).with_temperature(truth, logits)
    before, after = task.temperature_fit
    assert task.temperature > 1.5 and after < before and task.threshold == 0.4
    expected = np.mean(np.logaddexp(0, logits / task.temperature) - truth * logits / task.temperature)
    assert after == pytest.approx(expected)
    np.testing.assert_allclose(task.outputs(logits), 1 / (1 + np.exp(-logits / task.temperature)), rtol=1e-5)


def test_the_temperature_travels_in_the_model_config():
    # no temperature fitted: nothing new in the config, and the outputs are the plain softmax, bit for bit
    logits = np.array([[2.0, -1.0, 0.5]], dtype=np.float32)
    assert SingleLabel().model_settings() == {"problem_type": "single_label_classification"}
    assert SingleLabel().record() == {}
    exp = np.exp(logits.astype(np.float64) - logits.max())
    np.testing.assert_allclose(SingleLabel().outputs(logits), exp / exp.sum(), rtol=1e-6)
    fitted = SingleLabel(temperature=2.5, temperature_fit=(1.0, 0.5))
    settings = fitted.model_settings()
    assert settings[TEMPERATURE_SETTING] == 2.5
    assert fitted.record() == {"temperature": {"value": 2.5, "validation_nll_before": 1.0,
                                               "validation_nll_after": 0.5}}

    class Config:
        pass

    config = Config()
    vars(config).update(settings)
    restored = task_of_model(config)
    assert restored.temperature == 2.5
    np.testing.assert_array_equal(restored.outputs(logits), fitted.outputs(logits))
    vars(config).update(MultiLabel(threshold=0.3, temperature=0.8).model_settings())
    assert task_of_model(config) == MultiLabel(threshold=0.3, temperature=0.8)
    with pytest.raises(ValueError, match="regression"):
        Regression().with_temperature([1.0], np.array([[1.0]]))


# ---- runs ------------------------------------------------------------------------------------------------------


def read(run_dir: Path, name: str) -> dict:
    return json.loads((run_dir / name).read_text())


def rows_of(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / runs.PREDICTIONS_FILE, newline="") as f:
        return list(csv.DictReader(f))


def probabilities_of(run_dir: Path) -> tuple[np.ndarray, list[str]]:
    names = read(run_dir, runs.MANIFEST_FILE)["label_names"]
    return np.array([[float(r[f"p_{n}"]) for n in names] for r in rows_of(run_dir)]), names


@pytest.fixture(scope="module")
def lstm_runs(fortunes_csv, tmp_path_factory) -> dict[str, Path]:
    """The same tiny LSTM run twice on the fortunes sample: plain, and with --temperature_scaling."""
    argv = ["--dataset", str(fortunes_csv), "--model", "lstm", *TINY]
    return {"plain": make_runs(tmp_path_factory.mktemp("plain"), argv)["lstm"],
            "scaled": make_runs(tmp_path_factory.mktemp("scaled"), [*argv, "--temperature_scaling"])["lstm"]}


def test_a_scaled_run_records_its_temperature_and_calibration(lstm_runs):
    run_dir = lstm_runs["scaled"]
    metrics = read(run_dir, runs.METRICS_FILE)
    fit = metrics["temperature"]
    assert fit["value"] > 0 and fit["validation_nll_after"] <= fit["validation_nll_before"]
    assert read(run_dir, "model/config.json")[TEMPERATURE_SETTING] == fit["value"]
    assert (run_dir / runs.FIGURES_DIR / runs.RELIABILITY_FIGURE).stat().st_size > 0
    # the test scores are those of the scaled probabilities in predictions_test.csv
    probabilities, names = probabilities_of(run_dir)
    labels = [names.index(r["label"]) for r in rows_of(run_dir)]
    expected = calibration_scores(labels, probabilities, "single_label")
    assert {k: metrics["test"][k] for k in CALIBRATION_METRIC_NAMES} == pytest.approx(expected, abs=1e-5)
    # the Predictor applies the same temperature, from the run and from weights/
    predictor = Predictor.load(run_dir)
    assert predictor.task.temperature == fit["value"]
    check_same_as_evaluation(predictor, run_dir)
    check_same_as_evaluation(Predictor.load(run_dir.parents[3] / "weights" / "sample" / "lstm"), run_dir)


def test_scaling_changes_the_probabilities_not_the_predictions(lstm_runs):
    plain, scaled = lstm_runs["plain"], lstm_runs["scaled"]
    metrics = read(plain, runs.METRICS_FILE)
    assert "temperature" not in metrics and TEMPERATURE_SETTING not in read(plain, "model/config.json")
    assert set(CALIBRATION_METRIC_NAMES) <= set(metrics["test"])
    assert (plain / runs.FIGURES_DIR / runs.RELIABILITY_FIGURE).is_file()
    assert [r["predicted"] for r in rows_of(plain)] == [r["predicted"] for r in rows_of(scaled)]
    scaled_metrics = read(scaled, runs.METRICS_FILE)
    for key in ("accuracy", "macro_f1", "weighted_f1", "loss"):  # the loss is the model's own, unscaled
        assert scaled_metrics["test"][key] == pytest.approx(metrics["test"][key])
    # undoing the temperature (softmax(log p * T)) gives back the plain run's probabilities
    temperature = scaled_metrics["temperature"]["value"]
    (p_plain, _), (p_scaled, _) = probabilities_of(plain), probabilities_of(scaled)
    unscaled = SingleLabel().outputs(np.log(p_scaled) * temperature)
    np.testing.assert_allclose(unscaled, p_plain, atol=1e-4)
    assert temperature == 1.0 or not np.allclose(p_scaled, p_plain, atol=1e-4)


def test_a_multi_label_run_scales_then_tunes_its_threshold(tmp_path):
    data = write_csv(tmp_path / "tags.csv", multi_label_rows())
    run_dir = make_runs(tmp_path, ["--dataset", str(data), "--model", "lstm", *MULTI, *TINY, "--class_weights",
                                   "--lstm_learning_rate", "0.01", "--temperature_scaling", "--tune_threshold"])["lstm"]
    metrics = read(run_dir, runs.METRICS_FILE)
    temperature, threshold = metrics["temperature"]["value"], metrics["threshold"]["value"]
    config = read(run_dir, "model/config.json")
    assert config[TEMPERATURE_SETTING] == temperature and config["label_threshold"] == threshold
    probabilities, names = probabilities_of(run_dir)
    rows = rows_of(run_dir)
    truth = np.array([[n in r["label"].split("|") for n in names] for r in rows], dtype=np.int64)
    expected = calibration_scores(truth, probabilities, "multi_label")
    assert {k: metrics["test"][k] for k in CALIBRATION_METRIC_NAMES} == pytest.approx(expected, abs=1e-5)
    for r in rows:  # the tuned threshold applies to the scaled probabilities
        assert r["predicted"] == "|".join(n for n in names if float(r[f"p_{n}"]) >= threshold)
    predictor = Predictor.load(run_dir)
    assert (predictor.task.temperature, predictor.task.threshold) == (temperature, threshold)
    inputs, rows = run_test_examples(run_dir)
    got = predictor.probabilities(inputs, batch_size=7, progress=False)
    np.testing.assert_allclose(got, probabilities, atol=1e-5)
    assert (run_dir / runs.FIGURES_DIR / runs.RELIABILITY_FIGURE).stat().st_size > 0


def test_temperature_scaling_of_a_regression_is_a_one_line_error(tmp_path, capsys):
    data = write_csv(tmp_path / "words.csv", regression_rows())
    err = one_line_error(["--dataset", str(data), *REGRESSION, "--model", "lstm", "--temperature_scaling",
                          "--runs_dir", str(tmp_path / "runs"), "--weights_dir", str(tmp_path / "weights")], capsys)
    assert "--temperature_scaling" in err and "regression" in err
    assert not (tmp_path / "runs").exists() or runs.find_runs(tmp_path / "runs", complete_only=False) == []
