"""How sure a comparison is: bootstrap intervals of a model's test scores, and paired comparisons of two models on the
same test examples (a paired bootstrap of the difference, and a paired test).

Everything takes the test set as arrays of one task (hf_project.metrics.TASKS): `truth` and `predicted` are class
ids (N,) for single-label, 0/1 indicators (N, K) for multi-label and values (N,) for a regression. The metrics
resampled are the task's TABLE_METRICS (accuracy and macro-F1; micro- and macro-F1; RMSE and Pearson r).

    paired test      single-label: exact McNemar on the examples where exactly one model is right
                     multi-label: exact McNemar on exact label sets (one model's set right, the other's wrong)
                     regression: Wilcoxon signed-rank on the paired squared errors
    intervals        percentile bootstrap over test examples, `samples` resamples drawn with `seed`; a paired one
                     draws the same resamples for both models, so the interval is of the difference itself
    several seeds    (paired_over_seeds, mean_intervals) the runs of each seed are paired with the same seed's runs;
                     the difference is the mean of the per-seed differences, and its interval resamples the test
                     examples jointly across seeds (one resample of the examples scores every seed's runs), so it is
                     the interval of that mean. The combined p-value is the largest per-seed p when every seed's
                     difference points the same way, else 1 (combine_p_values says why)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hf_project.metrics import TABLE_METRICS

DEFAULT_BOOTSTRAP_SAMPLES = 1000
CONFIDENCE = 0.95


def _f1s(tp: np.ndarray, predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """F1 = 2 tp / (predicted + true) per column; 0 where a label is neither predicted nor true (zero_division=0)."""
    denominator = predicted + true
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator, dtype=np.float64), where=denominator > 0)


def scores(task: str, truth: np.ndarray, predicted: np.ndarray, num_labels: int | None = None) -> dict[str, float]:
    """The task's TABLE_METRICS on these examples (numpy only: fast enough for a thousand resamples).

    Single-label macro-F1 averages over `num_labels` classes (all of them, as the run's own metrics do: a class absent
    from a resample that the model never predicts counts 0)."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    if task == "regression":
        error = predicted.astype(np.float64) - truth
        spread = np.std(truth) * np.std(predicted)
        pearson = float(np.mean((truth - truth.mean()) * (predicted - predicted.mean())) / spread) if spread else 0.0
        return {"rmse": float(np.sqrt(np.mean(error ** 2))), "pearson": pearson}
    if task == "multi_label":
        tp = (truth & predicted).sum(axis=0)
        micro = _f1s(np.array([tp.sum()]), np.array([predicted.sum()]), np.array([truth.sum()]))[0]
        return {"micro_f1": float(micro), "macro_f1": float(_f1s(tp, predicted.sum(axis=0), truth.sum(axis=0)).mean())}
    k = num_labels or int(max(truth.max(initial=0), predicted.max(initial=0))) + 1
    right = truth == predicted
    tp = np.bincount(truth[right], minlength=k)
    f1 = _f1s(tp, np.bincount(predicted, minlength=k), np.bincount(truth, minlength=k))
    return {"accuracy": float(right.mean()), "macro_f1": float(f1.mean())}


# Row indices drawn at a time: a large test set never holds all of its resamples in memory at once.
_CHUNK = 1 << 22


def _resamples(n: int, samples: int, seed: int) -> Iterator[np.ndarray]:
    """The row indices of each of `samples` resamples of n examples, drawn with replacement: the same for every model
    compared on these n examples. Drawn in chunks, they are the rows of one (samples, n) draw all the same."""
    rng = np.random.default_rng(seed)
    left = samples
    while left > 0:
        size = min(left, max(1, _CHUNK // max(n, 1)))
        yield from rng.integers(0, n, size=(size, n))
        left -= size


def _interval(values: np.ndarray) -> tuple[float, float]:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_intervals(task: str, truth: np.ndarray, predicted: np.ndarray, samples: int = DEFAULT_BOOTSTRAP_SAMPLES,
                        seed: int = 0, num_labels: int | None = None) -> dict[str, tuple[float, float]]:
    """95% percentile intervals of one model's TABLE_METRICS over test examples."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    draws = [scores(task, truth[i], predicted[i], num_labels) for i in _resamples(len(truth), samples, seed)]
    return {m: _interval(np.array([d[m] for d in draws])) for m in TABLE_METRICS[task]}


@dataclass(frozen=True)
class PairedResult:
    """Model a against model b on the same test examples: the difference a - b of each metric with its paired 95%
    interval, and the paired test's statistic and p-value."""

    differences: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    test: str  # "mcnemar" or "wilcoxon"
    p_value: float
    a_only: int | None = None  # McNemar: examples only a gets right
    b_only: int | None = None  # McNemar: examples only b gets right

    def to_dict(self) -> dict[str, Any]:
        return {"differences": self.differences, "intervals": {k: list(v) for k, v in self.intervals.items()},
                "test": self.test, "p_value": self.p_value, "a_only": self.a_only, "b_only": self.b_only}


def mcnemar_exact(a_right: np.ndarray, b_right: np.ndarray) -> tuple[int, int, float]:
    """(a only right, b only right, two-sided exact p): the binomial test of the discordant examples at 1/2."""
    from scipy.stats import binomtest

    a_only = int(np.sum(a_right & ~b_right))
    b_only = int(np.sum(~a_right & b_right))
    if a_only + b_only == 0:
        return 0, 0, 1.0
    return a_only, b_only, float(binomtest(a_only, a_only + b_only, 0.5).pvalue)


def paired_test(task: str, truth: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[str, float, int | None,
                                                                                     int | None]:
    """(test name, p-value, a only right, b only right) of the task's paired test."""
    truth, a, b = np.asarray(truth), np.asarray(a), np.asarray(b)
    if task == "regression":
        from scipy.stats import wilcoxon

        difference = (a - truth) ** 2 - (b - truth) ** 2
        if not np.any(difference):
            return "wilcoxon", 1.0, None, None
        return "wilcoxon", float(wilcoxon(difference, zero_method="zsplit").pvalue), None, None
    right_a = (a == truth).all(axis=1) if task == "multi_label" else a == truth
    right_b = (b == truth).all(axis=1) if task == "multi_label" else b == truth
    a_only, b_only, p = mcnemar_exact(right_a, right_b)
    return "mcnemar", p, a_only, b_only


def paired_comparison(task: str, truth: np.ndarray, a: np.ndarray, b: np.ndarray,
                      samples: int = DEFAULT_BOOTSTRAP_SAMPLES, seed: int = 0,
                      num_labels: int | None = None) -> PairedResult:
    """Model a against model b: each TABLE_METRICS difference a - b on the test set, its paired bootstrap interval
    (both models scored on the same resamples) and the task's paired test."""
    return paired_over_seeds(task, truth, [a], [b], samples, seed, num_labels)[0]


def mean_intervals(task: str, truth: np.ndarray, predictions: Sequence[np.ndarray],
                   samples: int = DEFAULT_BOOTSTRAP_SAMPLES, seed: int = 0,
                   num_labels: int | None = None) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """A model's TABLE_METRICS averaged over its runs (one set of test predictions per seed, on the same examples)
    and their 95% intervals: each resample of the test examples scores every run, so the interval is of the mean.
    With one run, the intervals are bootstrap_intervals'."""
    truth, runs = np.asarray(truth), [np.asarray(p) for p in predictions]
    metrics = TABLE_METRICS[task]
    full = [scores(task, truth, p, num_labels) for p in runs]
    draws = np.empty((samples, len(metrics)))
    for j, i in enumerate(_resamples(len(truth), samples, seed)):
        each = [scores(task, truth[i], p[i], num_labels) for p in runs]
        draws[j] = [np.mean([d[m] for d in each]) for m in metrics]
    return ({m: float(np.mean([f[m] for f in full])) for m in metrics},
            {m: _interval(draws[:, k]) for k, m in enumerate(metrics)})


def direction(result: PairedResult) -> int:
    """Which model the paired test's evidence favours: 1 for a, -1 for b, 0 for neither (McNemar: who is right alone
    more often; Wilcoxon: whose squared errors are smaller, as the sign of the RMSE difference says)."""
    if result.test == "mcnemar":
        return int(np.sign((result.a_only or 0) - (result.b_only or 0)))
    return -int(np.sign(result.differences["rmse"]))


def combine_p_values(results: Sequence[PairedResult]) -> float:
    """One p-value of a paired test repeated over seeds: the largest per-seed p when every seed's test favours the
    same model (or neither), else 1.

    The seeds' tests share the test examples, so they are not independent, and rules that assume independence
    (Fisher's, Stouffer's) would overstate the evidence. The largest p is the intersection-union test of "the
    difference shows in every seed": valid whatever the dependence between seeds, conservative by design (it asks
    each seed to show the difference), and with one seed it is that seed's p."""
    if len({direction(r) for r in results} - {0}) > 1:
        return 1.0
    return max(r.p_value for r in results)


def paired_over_seeds(task: str, truth: np.ndarray, a: Sequence[np.ndarray], b: Sequence[np.ndarray],
                      samples: int = DEFAULT_BOOTSTRAP_SAMPLES, seed: int = 0,
                      num_labels: int | None = None) -> tuple[PairedResult, list[PairedResult]]:
    """Model a against model b over seeds: a[s] and b[s] are the test predictions of seed s of each, on the same
    examples. Returns (combined, per seed): each seed's paired_comparison, and their combination: the mean of the
    per-seed differences, its interval from resamples of the test examples shared by every seed (each resample
    scores all runs, and the differences are averaged before the percentiles are taken), the per-seed p-values
    combined by combine_p_values, and the McNemar counts summed over seeds. With one seed, both are that seed's
    paired_comparison."""
    truth = np.asarray(truth)
    a, b = [np.asarray(x) for x in a], [np.asarray(x) for x in b]
    if not a or len(a) != len(b):
        raise ValueError(f"paired_over_seeds needs one run of each model per seed: got {len(a)} and {len(b)}")
    metrics = TABLE_METRICS[task]
    draws = np.empty((len(a), samples, len(metrics)))  # (seed, resample, metric) differences a - b
    for j, i in enumerate(_resamples(len(truth), samples, seed)):
        for s, (x, y) in enumerate(zip(a, b, strict=True)):
            sa, sb = scores(task, truth[i], x[i], num_labels), scores(task, truth[i], y[i], num_labels)
            draws[s, j] = [sa[m] - sb[m] for m in metrics]
    per_seed = []
    for s, (x, y) in enumerate(zip(a, b, strict=True)):
        full_a, full_b = scores(task, truth, x, num_labels), scores(task, truth, y, num_labels)
        test, p, a_only, b_only = paired_test(task, truth, x, y)
        per_seed.append(PairedResult({m: full_a[m] - full_b[m] for m in metrics},
                                     {m: _interval(draws[s, :, k]) for k, m in enumerate(metrics)},
                                     test, p, a_only, b_only))
    if len(per_seed) == 1:
        return per_seed[0], per_seed
    counted = per_seed[0].a_only is not None
    combined = PairedResult({m: float(np.mean([r.differences[m] for r in per_seed])) for m in metrics},
                            {m: _interval(draws[:, :, k].mean(axis=0)) for k, m in enumerate(metrics)},
                            per_seed[0].test, combine_p_values(per_seed),
                            sum(r.a_only for r in per_seed) if counted else None,
                            sum(r.b_only for r in per_seed) if counted else None)
    return combined, per_seed
