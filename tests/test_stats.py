"""hf_project.stats: the paired test, the bootstrap intervals and their combination over seeds, on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from hf_project import stats
from hf_project.compare import p_text


def ten_one_way() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """30 examples of 3 classes; a is right on all, b wrong on the first 10 (a only right: 10, b only right: 0)."""
    truth = np.repeat([0, 1, 2], 10)
    b = truth.copy()
    b[:10] = 1
    return truth, truth.copy(), b


def test_ten_disagreements_all_one_way_give_mcnemar_p_0_00195():
    truth, a, b = ten_one_way()
    assert stats.mcnemar_exact(a == truth, b == truth) == (10, 0, pytest.approx(2 * 0.5 ** 10))
    result = stats.paired_comparison("single_label", truth, a, b, samples=200, seed=1, num_labels=3)
    assert (result.test, result.a_only, result.b_only) == ("mcnemar", 10, 0)
    assert result.p_value == pytest.approx(0.001953125) and p_text(result.p_value) == "0.00195"
    assert result.differences["accuracy"] == pytest.approx(1 / 3)
    low, high = result.intervals["accuracy"]
    assert 0 < low <= 1 / 3 <= high  # every resample has a ahead: the interval excludes 0
    flipped = stats.paired_comparison("single_label", truth, b, a, samples=200, seed=1, num_labels=3)
    assert flipped.p_value == result.p_value and (flipped.a_only, flipped.b_only) == (0, 10)
    assert flipped.intervals["accuracy"] == pytest.approx((-high, -low))


@pytest.mark.parametrize("task", ["single_label", "multi_label", "regression"])
def test_identical_predictions_give_p_1_and_an_interval_of_0(task):
    rng = np.random.default_rng(0)
    shape = (40, 4) if task == "multi_label" else (40,)
    truth = rng.normal(size=40) if task == "regression" else rng.integers(0, 2 if len(shape) > 1 else 3, shape)
    predicted = truth + rng.normal(size=40) if task == "regression" else rng.integers(0, 2 if len(shape) > 1 else 3,
                                                                                      shape)
    result = stats.paired_comparison(task, truth, predicted, predicted.copy(), samples=100, seed=3)
    assert result.p_value == 1.0 and result.test == ("wilcoxon" if task == "regression" else "mcnemar")
    assert result.differences == {m: 0.0 for m in stats.TABLE_METRICS[task]}
    assert result.intervals == {m: (0.0, 0.0) for m in stats.TABLE_METRICS[task]}


def test_scores_are_the_runs_metrics():
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(1)
    truth, predicted = rng.integers(0, 4, 50), rng.integers(0, 3, 50)  # class 3 is never predicted
    single = stats.scores("single_label", truth, predicted, num_labels=5)  # class 4 absent from both: scores 0
    assert single["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert single["macro_f1"] == pytest.approx(f1_score(truth, predicted, labels=range(5), average="macro",
                                                        zero_division=0))
    truth, predicted = rng.integers(0, 2, (50, 4)), rng.integers(0, 2, (50, 4))
    multi = stats.scores("multi_label", truth, predicted)
    for average in ("micro", "macro"):
        assert multi[f"{average}_f1"] == pytest.approx(f1_score(truth, predicted, average=average, zero_division=0))
    truth, predicted = rng.normal(size=50), rng.normal(size=50)
    regression = stats.scores("regression", truth, predicted)
    assert regression["rmse"] == pytest.approx(np.sqrt(np.mean((truth - predicted) ** 2)))
    assert regression["pearson"] == pytest.approx(np.corrcoef(truth, predicted)[0, 1])


def test_the_bootstrap_is_seeded_and_its_chunks_change_nothing(monkeypatch):
    truth, a, b = ten_one_way()
    b[12:15] = 0
    once = stats.paired_comparison("single_label", truth, a, b, samples=300, seed=7, num_labels=3)
    assert stats.paired_comparison("single_label", truth, a, b, samples=300, seed=7, num_labels=3) == once
    assert stats.paired_comparison("single_label", truth, a, b, samples=300, seed=8, num_labels=3) != once
    monkeypatch.setattr(stats, "_CHUNK", 7 * len(truth))  # 7 resamples drawn at a time: the same resamples
    assert stats.paired_comparison("single_label", truth, a, b, samples=300, seed=7, num_labels=3) == once


def test_over_seeds_the_mean_difference_and_the_largest_p_when_the_seeds_agree():
    truth, a, b = ten_one_way()
    b2 = b.copy()
    b2[:4] = 0  # seed 2: b right on 4 more, so a is ahead on 6 examples only
    one, (same,) = stats.paired_over_seeds("single_label", truth, [a], [b], samples=200, seed=5, num_labels=3)
    assert one == same == stats.paired_comparison("single_label", truth, a, b, samples=200, seed=5, num_labels=3)
    combined, per_seed = stats.paired_over_seeds("single_label", truth, [a, a], [b, b2], samples=200, seed=5,
                                                 num_labels=3)
    assert [r.a_only for r in per_seed] == [10, 6] and (combined.a_only, combined.b_only) == (16, 0)
    assert per_seed[0] == one  # each seed's result is its own paired comparison, on the same resamples
    assert combined.differences["accuracy"] == pytest.approx(np.mean([r.differences["accuracy"] for r in per_seed]))
    assert combined.p_value == max(r.p_value for r in per_seed) == pytest.approx(2 * 0.5 ** 6)
    low, high = combined.intervals["accuracy"]
    assert per_seed[1].intervals["accuracy"][0] <= low <= high <= per_seed[0].intervals["accuracy"][1]
    # seeds that favour different models show no consistent difference: p = 1
    _, reverse = stats.paired_over_seeds("single_label", truth, [b], [a], samples=10, seed=5, num_labels=3)
    assert stats.combine_p_values([per_seed[0], *reverse]) == 1.0


def test_regression_pairs_squared_errors():
    rng = np.random.default_rng(2)
    truth = rng.normal(size=60)
    close, far = truth + rng.normal(0, 0.2, 60), truth + rng.normal(0, 1.0, 60)
    result = stats.paired_comparison("regression", truth, close, far, samples=200, seed=0)
    assert result.test == "wilcoxon" and result.p_value < 0.001 and result.a_only is None
    assert result.differences["rmse"] < 0 and result.intervals["rmse"][1] < 0 and stats.direction(result) == 1


def test_mean_intervals_of_one_run_are_its_bootstrap_intervals():
    truth, a, b = ten_one_way()
    means, intervals = stats.mean_intervals("single_label", truth, [b], samples=150, seed=4, num_labels=3)
    assert means == stats.scores("single_label", truth, b, 3)
    assert intervals == stats.bootstrap_intervals("single_label", truth, b, samples=150, seed=4, num_labels=3)
    means, _ = stats.mean_intervals("single_label", truth, [a, b], samples=20, seed=4, num_labels=3)
    assert means["accuracy"] == pytest.approx((1 + 2 / 3) / 2)
