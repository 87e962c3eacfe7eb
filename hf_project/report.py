"""The report model: what the complete runs of a comparison say, read once from their run-directory files.

compare (tables), the paper and the video are renderers of what is built here; none of them opens a run file,
groups runs or picks a winner on its own. Runs that differ only by seed form one Group, summarised as one row of
numbers (means and stds over its seeds); a Report is the groups of one data set, their rows, the verdict (the
winner on the test value of the selection metric), how sure that verdict is (every model paired with the winner on the
shared test examples: compare_with_winner) and the hyperparameter searches beside them.

Only run files are read (ARCHITECTURE.md's run-directory contract): never the alias table, the models or training,
so a report describes the runs that were made, whatever the code that made them has become since.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from transformers.utils import CONFIG_NAME, FEATURE_EXTRACTOR_NAME

from hf_project import runs
from hf_project.config import DEFAULT_SEED, config_from_dict
from hf_project.errors import UserError
from hf_project.metrics import TABLE_METRICS, TASKS, greater_is_better
from hf_project.stats import DEFAULT_BOOTSTRAP_SAMPLES, PairedResult, mean_intervals, paired_over_seeds

logger = logging.getLogger(__name__)

# Settings that do not change what a run computes, or that define the group itself.
NOT_GROUPING = {"seed", "runs_dir", "weights_dir", "cache_dir", "dataloader_num_workers", "tag", "report_to"}
# Runs made before multi-label and regression existed record no task: they are all single-label.
LEGACY_TASK = "single_label"
# What each task is called in the paper's and the video's words.
TASK_NAMES = {"single_label": "classification", "multi_label": "multi-label classification",
              "regression": "regression"}
# Short titles of hf_project.metrics.ALL_METRIC_NAMES (and the loss) in tables, the paper and the video.
METRIC_TITLES = {"accuracy": "acc", "macro_f1": "macro-F1", "weighted_f1": "weighted-F1", "micro_f1": "micro-F1",
                 "samples_f1": "samples-F1", "hamming_loss": "Hamming loss", "subset_accuracy": "subset acc",
                 "rmse": "RMSE", "mae": "MAE", "pearson": "Pearson r", "spearman": "Spearman ρ", "r2": "R²",
                 "loss": "loss", "ece": "ECE", "brier": "Brier", "nll": "NLL"}
# Calibration metrics (hf_project.metrics.CALIBRATION_METRIC_NAMES) shown as test columns, when a data set's runs
# record them (runs older than them do not).
CALIBRATION_COLUMNS = ("ece",)
# Metrics that are fractions of examples or of label decisions: a difference between two of them reads as points.
PROPORTIONS = frozenset({"accuracy", "macro_f1", "weighted_f1", "micro_f1", "samples_f1", "hamming_loss",
                         "subset_accuracy"})
# The tasks whose labels are classes (or labels) that examples can be counted by.
CLASSIFICATION = ("single_label", "multi_label")

# The hyperparameter rows of every report (paper table, video slide): name -> value from (config, from scratch),
# and the tasks that have the row. The LSTM has its own learning rate and epochs when they are set.
HYPERPARAMETERS: tuple[tuple[str, Callable[[dict[str, Any], bool], Any], tuple[str, ...]], ...] = (
    ("learning rate", lambda c, s: c.get("lstm_learning_rate") if s and c.get("lstm_learning_rate") else
     c.get("learning_rate"), TASKS),
    ("epochs (max)", lambda c, s: c.get("lstm_num_train_epochs") if s and c.get("lstm_num_train_epochs") else
     c.get("num_train_epochs"), TASKS),
    ("batch size", lambda c, s: c.get("per_device_train_batch_size"), TASKS),
    ("weight decay", lambda c, s: c.get("weight_decay"), TASKS),
    ("warm-up ratio", lambda c, s: c.get("warmup_ratio"), TASKS),
    ("early stopping", lambda c, s: c.get("early_stopping_patience"), TASKS),
    ("class weights", lambda c, s: "yes" if c.get("class_weights") else "no", CLASSIFICATION),
    ("threshold", lambda c, s: "tuned" if c.get("tune_threshold") else c.get("threshold"), ("multi_label",)),
    ("standardised targets", lambda c, s: "yes" if c.get("standardize_targets") else "no", ("regression",)),
)


def _read_json(path: Path, missing: Any = None) -> Any:
    if missing is not None and not path.is_file():
        return missing
    return json.loads(path.read_text())


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _number(text: str) -> int | float | str:
    """A csv cell as the number it holds (an int when it is one), else as the text it is."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


# ---- one run ---------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One run directory: its metrics, manifest and config, and readers of its other files."""

    path: Path
    metrics: dict[str, Any]
    manifest: dict[str, Any]
    config: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> Run:
        path = Path(path)
        return cls(path, _read_json(path / runs.METRICS_FILE), _read_json(path / runs.MANIFEST_FILE),
                   runs.read_config(path))

    @cached_property
    def _full_config(self) -> dict[str, Any]:
        # Through the dataclasses, a setting added after a run was made takes its default, as it did then.
        try:
            return config_from_dict(self.config).to_dict()
        except (UserError, TypeError):
            return dict(self.config)

    @cached_property
    def group_key(self) -> tuple[str, str, str, str]:
        settings = {k: v for k, v in self._full_config.items() if k not in NOT_GROUPING}
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]
        return self.metrics["dataset"], self.metrics["model"], self.config.get("tag") or "", digest

    @property
    def from_scratch(self) -> bool:
        return bool(self.manifest["model"]["from_scratch"])

    @property
    def family(self) -> str:
        """pretrained, lstm or linear (the TF-IDF + logistic-regression baseline, fitted without the Trainer)."""
        return self.manifest["model"].get("family") or ("lstm" if self.from_scratch else "pretrained")

    @property
    def linear(self) -> dict[str, Any]:
        """A linear baseline's fit, as its manifest records it (estimator, C chosen, grid, features); {} otherwise."""
        return self.manifest.get("linear") or {}

    @property
    def split_seed(self) -> int:
        return self.config.get("split_seed", DEFAULT_SEED)

    @property
    def task(self) -> str:
        """single_label, multi_label or regression (hf_project.metrics.TASKS), as metrics.json records it."""
        return self.metrics.get("task") or LEGACY_TASK

    @property
    def threshold(self) -> dict[str, Any] | None:
        """A multi-label run's probability threshold: {"value": 0.5, "tuned_on_validation": False}; None otherwise."""
        return self.metrics.get("threshold")

    @property
    def target(self) -> dict[str, Any]:
        """A regression run's target: its column, whether it was standardised to train and the training split's mean
        and std ({} for classification)."""
        return self.metrics.get("target") or {}

    @property
    def target_name(self) -> str:
        """The name of what a regression predicts: its label column."""
        return self.target.get("column") or self.manifest["label_names"][0]

    @property
    def pairs(self) -> bool:
        """Whether every example is a pair of texts (--text_pair_column)."""
        return bool(self.config.get("text_pair_column"))

    def settings(self) -> dict[str, Any]:
        """The run's config with today's defaults for settings added since (as group_key sees it)."""
        return {**self._full_config, **self.config}

    def hyperparameters(self) -> dict[str, Any]:
        """The HYPERPARAMETERS rows of this run's task, by name; '-' for the Trainer's knobs of a linear baseline."""
        return {name: "-" if self.family == "linear" and name in TRAINER_ONLY else get(self.config, self.from_scratch)
                for name, get, tasks in HYPERPARAMETERS if self.task in tasks}

    def log_history(self) -> list[dict[str, Any]]:
        return _read_json(self.path / runs.LOG_HISTORY_FILE)

    def split(self) -> dict[str, Any]:
        return _read_json(self.path / runs.SPLIT_FILE)

    def class_counts(self) -> list[dict[str, Any]]:
        """class_balance.csv of a classification: one row per class, its label and its number of examples in each
        split. Multi-label: one row per label, the examples carrying it (an example can carry several)."""
        if self.task not in CLASSIFICATION:
            raise ValueError(f"a {self.task} run has no classes: its class_balance.csv holds target_statistics()")
        return [{k: v if k == "label" else int(v) for k, v in row.items()}
                for row in _read_csv(self.path / runs.CLASS_BALANCE_FILE)]

    def target_statistics(self) -> dict[str, dict[str, float]]:
        """class_balance.csv of a regression, by statistic (n, mean, std, min, max): its value in each split, in the
        target's units."""
        return {row.pop("statistic"): {k: float(v) for k, v in row.items()}
                for row in _read_csv(self.path / runs.CLASS_BALANCE_FILE)}

    def confusion_matrix(self) -> tuple[list[str], list[Any]] | None:
        """(labels, matrix) of the test set. Single-label: K x K, rows are true labels, columns predicted ones;
        multi-label: one [[tn, fp], [fn, tp]] per label; regression: None (a regression has no confusion matrix)."""
        if self.task not in CLASSIFICATION:
            return None
        data = _read_json(self.path / runs.CONFUSION_FILE)
        return data["labels"], data["matrix"]

    def test_report(self) -> list[dict[str, Any]]:
        """classification_report.csv, numbers as numbers: per class or label (label, precision, recall, f1, support),
        or for a regression per quintile of the true test value (bin, low, high, n, rmse, mae, bias)."""
        return [{k: v if k == "label" else _number(v) for k, v in row.items()}
                for row in _read_csv(self.path / runs.REPORT_FILE)]

    def predictions(self, limit: int | None = None) -> list[dict[str, str]]:
        """The first `limit` rows (all by default) of predictions_test.csv."""
        with open(self.path / runs.PREDICTIONS_FILE, newline="") as f:
            rows = csv.DictReader(f)
            return list(rows) if limit is None else [r for _, r in zip(range(limit), rows, strict=False)]

    def test_outcomes(self, label_names: list[str] | None = None) -> Outcomes:
        """predictions_test.csv as the arrays hf_project.stats takes: the examples' source rows, the truth and the
        predictions. Classes and labels are numbered by `label_names` (the manifest's by default), so the runs of two
        models are numbered alike."""
        if not (self.path / runs.PREDICTIONS_FILE).is_file():
            raise UserError(f"run {self.path} has no {runs.PREDICTIONS_FILE}: paired comparisons need every run's test "
                            "predictions")
        rows = self.predictions()
        source = tuple(int(r.get("source_row") or r.get("row") or i) for i, r in enumerate(rows))
        if self.task == "regression":
            return Outcomes(source, np.array([float(r["label"]) for r in rows]),
                            np.array([float(r["predicted"]) for r in rows]))
        names = [str(n) for n in (label_names or self.manifest["label_names"])]
        ids = {name: k for k, name in enumerate(names)}

        def number(name: str) -> int:
            if name not in ids:
                raise UserError(f"run {self.path} predicts {name!r}, which is not among the labels "
                                f"({', '.join(names)}) of the runs it is compared with")
            return ids[name]

        if self.task == "multi_label":
            def indicators(cell: str) -> list[int]:
                on = {number(n) for n in cell.split(runs.LABEL_SET_SEPARATOR) if n}
                return [int(k in on) for k in range(len(names))]

            shape = (len(rows), len(names))
            return Outcomes(source, np.array([indicators(r["label"]) for r in rows], dtype=np.int64).reshape(shape),
                            np.array([indicators(r["predicted"]) for r in rows], dtype=np.int64).reshape(shape))
        return Outcomes(source, np.array([number(r["label"]) for r in rows], dtype=np.int64),
                        np.array([number(r["predicted"]) for r in rows], dtype=np.int64))

    def figure(self, name: str) -> Path:
        """A figure the run drew at training time (runs.LOSS_FIGURE, ...); it may be missing from older runs."""
        return self.path / runs.FIGURES_DIR / name

    @property
    def test_figure(self) -> Path:
        """The run's figure of the test set: confusion matrix, F1 per label, or predicted against true values."""
        return self.figure(runs.TEST_FIGURES[self.task])

    def model_config(self) -> dict[str, Any]:
        """The saved model's config.json ({} when there is none)."""
        return _read_json(self.path / runs.MODEL_DIR / CONFIG_NAME, missing={})

    def preprocessor_config(self) -> dict[str, Any]:
        """The image processor or feature extractor saved beside a pretrained model ({} otherwise)."""
        # an image processor saves itself under the same name (IMAGE_PROCESSOR_NAME)
        return _read_json(self.path / runs.MODEL_DIR / FEATURE_EXTRACTOR_NAME, missing={})

    def frontend(self) -> dict[str, Any]:
        """The LSTM's own front-end (pixel rows, log-mel frames), as its model config records it; {} otherwise."""
        return self.model_config().get("frontend") or {}

    @cached_property
    def modality(self) -> str:
        """text, image or audio: the data set's, as the manifest records it; for older runs, from the saved model."""
        recorded = (self.manifest.get("dataset") or {}).get("modality") or self.config.get("modality") or "auto"
        if recorded != "auto":
            return recorded
        config = self.model_config()
        if config.get("modality") or self.frontend().get("modality"):
            return config.get("modality") or self.frontend()["modality"]
        # a pretrained checkpoint saves its image processor or feature extractor beside it (a tokenizer elsewhere)
        pre = self.preprocessor_config()
        if pre.get("image_processor_type"):
            return "image"
        if pre.get("feature_extractor_type"):
            return "audio"
        # text checkpoints also classify with *ForSequenceClassification: only the audio and image tables decide
        from transformers.models.auto.modeling_auto import (
            MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES,
            MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES,
        )

        model_type = config.get("model_type", "")
        if model_type in MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES:
            return "audio"
        if model_type in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES:
            return "image"
        return "text"

    def input_summary(self) -> str:
        """The model's input in a few words (paper tables, video slides): '≤32 tokens', '32×32 RGB', ..."""
        if self.family == "linear":
            low, high = (self.linear.get("vectorizer") or {}).get("ngram_range") or (1, 1)
            return f"TF-IDF, word {low}-{high}-grams" if high > low else "TF-IDF, words"
        if self.modality == "image":
            return image_input(self)
        if self.modality == "audio":
            return audio_input(self)
        return f"≤{self.settings().get('max_length')} tokens"


@dataclass(frozen=True)
class Outcomes:
    """A run's test set as hf_project.stats takes it: class ids (N,), 0/1 label indicators (N, K) or values (N,)."""

    source_rows: tuple[int, ...]  # each test example's row in the source data, in the file's order
    truth: np.ndarray
    predicted: np.ndarray


def khz(rate: float) -> str:
    return f"{rate / 1000:g} kHz"


def image_input(run: Run) -> str:
    """What an image becomes for this model, from the processor saved with it: '32×32 RGB', '8×8 grey rows'."""
    rows = run.frontend()
    if rows.get("image_size"):
        return f"{rows['image_size']}×{rows['image_size']} grey rows"
    pre = run.preprocessor_config()
    size = (pre.get("crop_size") if pre.get("do_center_crop") else None) or pre.get("size") or {}
    if "height" in size and "width" in size:
        dims = f"{size['height']}×{size['width']}"
    elif "shortest_edge" in size:  # ConvNeXt-style: a square of this side (resized, then centre-cropped)
        dims = f"{size['shortest_edge']}×{size['shortest_edge']}"
    else:
        dims = "own size"
    mean = pre.get("image_mean")
    return f"{dims} {'grey' if isinstance(mean, list) and len(mean) == 1 else 'RGB'}"


def audio_input(run: Run) -> str:
    """What a clip becomes for this model: '16 log-mel bands, 8 kHz' (LSTM), 'waveform, 16 kHz' (wav2vec2)."""
    mel = run.frontend()
    if mel.get("n_mels"):
        return f"{mel['n_mels']} log-mel bands, {khz(mel['sampling_rate'])}"
    pre = run.preprocessor_config()
    bins = pre.get("num_mel_bins") or (pre.get("feature_size") if (pre.get("feature_size") or 1) > 1 else None)
    kind = f"{bins} log-mel bins" if bins else "waveform"
    return f"{kind}, {khz(pre['sampling_rate'])}" if pre.get("sampling_rate") else kind


def fmt_params(n: int) -> str:
    """A parameter count as the paper and the video show it: 2.24M, 15.3k."""
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


# The HYPERPARAMETERS a linear baseline has no use for: it is fitted to convergence by scikit-learn, not by the Trainer.
TRAINER_ONLY = frozenset({"learning rate", "epochs (max)", "batch size", "weight decay", "warm-up ratio",
                          "early stopping"})


# ---- groups of runs --------------------------------------------------------------------------------------------


@dataclass
class Group:
    """Runs that differ only by seed, one run per seed."""

    runs: list[Run] = field(default_factory=list)

    @property
    def first(self) -> Run:
        return self.runs[0]

    @property
    def label(self) -> str:
        _, model, tag, _ = self.first.group_key
        return f"{model} [{tag}]" if tag else model

    def values(self, split: str, metric: str) -> list[float]:
        return [r.metrics[split][metric] for r in self.runs if r.metrics[split].get(metric) is not None]

    def manifest_values(self, key: str) -> list[float]:
        return [r.manifest[key] for r in self.runs if r.manifest.get(key) is not None]

    @property
    def best_run(self) -> Run:
        """The run whose checkpoint was best on validation: figures never pick a run by its test score."""
        metric = self.first.metrics["selection_metric"]
        sign = 1 if greater_is_better(metric) else -1

        def score(run: Run) -> float:
            value = run.metrics["validation"].get(metric)
            return -math.inf if value is None else sign * value  # a run without the value never wins

        return max(self.runs, key=score)

    def validation_curves(self) -> list[list[tuple[int, float]]]:
        """(step, validation loss) points of each run."""
        return [[(e["step"], e["eval_loss"]) for e in r.log_history() if "eval_loss" in e] for r in self.runs]


def _oldest_first(paths: list[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: (p.name, str(p)))  # as runs.find_runs orders them


def select_runs(runs_dir: str | Path = "runs", dataset: str | None = None, models: list[str] | None = None,
                tag: str | None = None) -> list[Run]:
    """Complete runs only (a running, failed or killed run never counts), filtered."""
    selected = []
    for path in runs.find_runs(runs_dir):
        run = Run.load(path)
        if dataset and run.metrics["dataset"] != dataset:
            continue
        if models and run.metrics["model"] not in models:
            continue
        if tag is not None and (run.config.get("tag") or "") != tag:
            continue
        selected.append(run)
    return selected


def runs_under(paths: list[str]) -> list[Run]:
    """The complete runs of run directories and of folders holding runs at any depth (runs/, runs/<dataset>/<model>),
    oldest first. A run directory given by name must be complete."""
    found: dict[Path, Path] = {}
    for given in paths:
        path = Path(given)
        status = runs.read_status(path) if path.is_dir() else None
        if status is not None:
            if status != runs.STATUS_COMPLETE:
                raise UserError(f"run {path} is not complete (status: {status}): finish or resume it, or leave it out")
            candidates = [path]
        elif path.is_dir():
            candidates = [p.parent for p in sorted(path.rglob(runs.STATUS_FILE))
                          if runs.read_status(p.parent) == runs.STATUS_COMPLETE]
        else:
            raise UserError(f"{path} is neither a run directory nor a folder of runs: pass runs/ or a run directory")
        for run_dir in candidates:
            if (run_dir / runs.METRICS_FILE).is_file():
                found.setdefault(run_dir.resolve(), run_dir)
    return [Run.load(p) for p in _oldest_first(list(found.values()))]


def group_runs(selected: list[Run], allow_mixed_splits: bool = False) -> list[Group]:
    """Groups of runs that differ only by seed; one seed per group counted once (the newest run wins)."""
    by_dataset: dict[str, set[str]] = {}
    tasks: dict[str, set[str]] = {}
    for run in selected:
        by_dataset.setdefault(run.metrics["dataset"], set()).add(run.manifest["split_hash"])
        tasks.setdefault(run.metrics["dataset"], set()).add(run.task)
    for dataset, found in tasks.items():
        if len(found) > 1:
            raise UserError(f"runs on {dataset} mix tasks ({', '.join(sorted(found))}), whose metrics differ: compare "
                            "one task at a time: filter with --model/--tag, or give only that task's runs")
    mixed = {d: h for d, h in by_dataset.items() if len(h) > 1}
    if mixed and not allow_mixed_splits:
        dataset, hashes = next(iter(mixed.items()))
        raise UserError(
            f"runs on {dataset} use {len(hashes)} different splits ({', '.join(sorted(hashes))}): their numbers are "
            "not comparable; filter with --model/--tag, or pass --allow_mixed_splits to compare them anyway"
        )
    groups: dict[tuple, dict[int, Run]] = {}
    for run in selected:  # oldest first: a re-run of a seed replaces the earlier one
        groups.setdefault(run.group_key, {})[run.metrics["seed"]] = run
    out = [Group(sorted(by_seed.values(), key=lambda r: r.metrics["seed"])) for by_seed in groups.values()]
    return sorted(out, key=lambda g: (g.first.metrics["dataset"], g.label, g.first.group_key[3]))


# ---- the numbers of each group ---------------------------------------------------------------------------------


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def metric_columns(selection_metric: str, task: str = LEGACY_TASK) -> list[tuple[str, str]]:
    """(split, metric) pairs: the selection metric first, then the task's TABLE_METRICS."""
    order = [selection_metric] + [m for m in TABLE_METRICS[task] if m != selection_metric]
    return [("validation", m) for m in order] + [("test", m) for m in order]


def row_metric_columns(row: dict[str, Any]) -> list[tuple[str, str]]:
    """metric_columns of a table row (rows made by hand, without a task, are single-label), then the test calibration
    columns the row has (table_rows gives them to every row of a data set whose runs record them)."""
    return metric_columns(row["selection_metric"], row.get("task", LEGACY_TASK)) + [
        ("test", m) for m in CALIBRATION_COLUMNS if f"test_{m}_mean" in row]


def table_rows(groups: list[Group]) -> list[dict[str, Any]]:
    """One row per group, in the groups' order: numbers only (means and stds); formatting is each renderer's job."""
    rows = []
    for group in groups:
        run = group.first
        selection = run.metrics["selection_metric"]
        row: dict[str, Any] = {
            "dataset": run.metrics["dataset"], "model": group.label, "seeds": len(group.runs),
            "split_hash": run.manifest["split_hash"], "task": run.task, "selection_metric": selection,
            "params_total": run.manifest["parameters"]["total"],
            "params_trainable": run.manifest["parameters"]["trainable"],
            "size_mb": run.manifest["model_size_mb"],
        }
        for split, metric in metric_columns(selection, run.task):
            row[f"{split}_{metric}_mean"], row[f"{split}_{metric}_std"] = mean_std(group.values(split, metric))
        row["best_epoch_mean"], row["best_epoch_std"] = mean_std(
            [r.metrics["validation"]["best_epoch"] for r in group.runs if r.metrics["validation"].get("best_epoch")]
        )
        for key, name in (("train_runtime_s", "train_time_s"), ("train_samples_per_second", "samples_per_s"),
                          ("peak_memory_mb", "peak_memory_mb")):
            row[f"{name}_mean"], row[f"{name}_std"] = mean_std(group.manifest_values(key))
        rows.append(row)
    for metric in CALIBRATION_COLUMNS:  # a column for the data sets whose runs record it ("-" for older runs there)
        calibrated = {g.first.metrics["dataset"] for g in groups if g.values("test", metric)}
        for group, row in zip(groups, rows, strict=True):
            if row["dataset"] in calibrated:
                row[f"test_{metric}_mean"], row[f"test_{metric}_std"] = mean_std(group.values("test", metric))
    mark_best(rows)
    return rows


def mark_best(rows: list[dict[str, Any]]) -> None:
    """`best`: the metric columns in which a row has the best mean within its dataset (highest; lowest for a loss or
    an error: metrics.LOWER_IS_BETTER). Tied rows are all marked."""
    for row in rows:
        row["best"] = []
    for dataset in {r["dataset"] for r in rows}:
        subset = [r for r in rows if r["dataset"] == dataset]
        for split, metric in row_metric_columns(subset[0]):
            key = f"{split}_{metric}_mean"
            scored = [r for r in subset if r[key] is not None]
            if not scored:
                continue
            top = (max if greater_is_better(metric) else min)(r[key] for r in scored)
            for r in scored:
                if r[key] == top:
                    r["best"].append(f"{split}_{metric}")


@dataclass
class Verdict:
    """The winner on the test value of the selection metric, the runner-up and the margin between them."""

    winner: dict[str, Any]
    runner_up: dict[str, Any] | None
    metric: str
    margin: float | None

    @property
    def lower_is_better(self) -> bool:
        return not greater_is_better(self.metric)


def rank(rows: list[dict[str, Any]]) -> Verdict:
    """The verdict over the rows of one data set; a single model has no runner-up, a tie a margin of 0."""
    metric = rows[0]["selection_metric"]
    key = f"test_{metric}_mean"
    scored = [r for r in rows if r[key] is not None]
    ranked = sorted(scored, key=lambda r: r[key], reverse=greater_is_better(metric))
    runner = ranked[1] if len(ranked) > 1 else None
    margin = abs(ranked[0][key] - runner[key]) if runner else None
    return Verdict(ranked[0], runner, metric, margin)


# ---- how sure the verdict is: every model paired with the winner on the shared test examples ----------------------


@dataclass(frozen=True)
class Comparison:
    """One group against the winner of its data set on the test examples both were scored on (hf_project.stats).

    Its own scores are the TABLE_METRICS recomputed from its test predictions, averaged over its seeds, with 95%
    bootstrap intervals. Paired with the winner seed by seed (a run with the winner's run of the same seed), each
    `per_seed` result is this group minus the winner; `combined` is their mean, with an interval from resamples of
    the test examples shared by every seed and the per-seed p-values combined by stats.combine_p_values. The winner's
    own comparison, and a group that shares no seed with it, have no paired results."""

    model: str
    seeds: tuple[int, ...]  # the group's seeds, which its own scores average over
    scores: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    is_winner: bool = False
    paired_seeds: tuple[int, ...] = ()  # the seeds both this group and the winner ran, in order
    per_seed: tuple[PairedResult, ...] = ()  # this group - the winner, one per paired seed
    combined: PairedResult | None = None

    @property
    def paired(self) -> bool:
        return self.combined is not None

    def advantage(self, metric: str) -> tuple[float, tuple[float, float]]:
        """How far the winner is ahead of this group on `metric`, in the metric's direction (positive: the winner is
        better, by a higher score or a lower error), and its 95% interval."""
        assert self.combined is not None, "only a paired comparison has a difference"
        sign = -1 if greater_is_better(metric) else 1  # the differences are this group - the winner
        low, high = sorted(sign * v for v in self.combined.intervals[metric])
        return sign * self.combined.differences[metric], (low, high)


@dataclass(frozen=True)
class PairedComparisons:
    """Every group of one data set against its winner, and what a reader needs to reproduce the numbers."""

    dataset: str
    task: str
    winner: str
    metrics: tuple[str, ...]  # the TABLE_METRICS, the selection metric first when it is one of them
    comparisons: tuple[Comparison, ...]  # one per group, in the groups' (and rows') order
    num_examples: int
    split_hash: str
    samples: int  # bootstrap resamples of the test examples
    seed: int  # the seed they were drawn with

    @property
    def test(self) -> str:
        """The paired test: mcnemar (classification) or wilcoxon (regression), as hf_project.stats.paired_test."""
        return "wilcoxon" if self.task == "regression" else "mcnemar"

    @property
    def metric(self) -> str:
        """The metric the verdict's paired sentence speaks of: the selection metric when it is resampled."""
        return self.metrics[0]

    def of(self, model: str) -> Comparison:
        return next(c for c in self.comparisons if c.model == model)


def check_bootstrap(samples: int) -> None:
    if samples < 1:
        raise UserError(f"--bootstrap_samples {samples}: the bootstrap needs at least 1 resample (1000 by default)")


def compare_with_winner(groups: list[Group], rows: list[dict[str, Any]], samples: int = DEFAULT_BOOTSTRAP_SAMPLES,
                        seed: int = DEFAULT_SEED) -> PairedComparisons:
    """The groups of one data set (their table rows beside them) against the verdict's winner, on the test split they
    share: runs on different splits, or whose test rows differ, are refused with a one-line error. Every comparison
    draws the same `samples` resamples of the test examples from `seed`, so the numbers are the same on every build."""
    check_bootstrap(samples)
    hashes = sorted({r.manifest["split_hash"] for g in groups for r in g.runs})
    dataset = groups[0].first.metrics["dataset"]
    if len(hashes) > 1:
        raise UserError(f"runs on {dataset} use {len(hashes)} different splits ({', '.join(hashes)}): a paired "
                        "comparison needs one test set; filter with --model/--tag")
    verdict = rank(rows)
    winner = next(g for g, r in zip(groups, rows, strict=True) if r is verdict.winner)
    task, names = winner.first.task, winner.first.manifest.get("label_names")
    outcomes = aligned_outcomes(groups, winner.first, names)
    truth = outcomes[0][groups[0].first.metrics["seed"]].truth
    num_labels = len(names) if task == "single_label" else None
    ordered = (verdict.metric, *TABLE_METRICS[task]) if verdict.metric in TABLE_METRICS[task] else TABLE_METRICS[task]
    winning = next(outcomes[g] for g, group in enumerate(groups) if group is winner)
    comparisons = []
    for g, group in enumerate(groups):
        own = outcomes[g]
        seeds = tuple(sorted(own))
        means, intervals = mean_intervals(task, truth, [own[s].predicted for s in seeds], samples, seed, num_labels)
        comparison = Comparison(group.label, seeds, means, intervals, is_winner=group is winner)
        common = tuple(s for s in seeds if s in winning)
        if group is not winner and common:
            combined, per_seed = paired_over_seeds(task, truth, [own[s].predicted for s in common],
                                                   [winning[s].predicted for s in common], samples, seed, num_labels)
            comparison = Comparison(group.label, seeds, means, intervals, False, common, tuple(per_seed), combined)
        comparisons.append(comparison)
    return PairedComparisons(dataset, task, winner.label, tuple(dict.fromkeys(ordered)), tuple(comparisons),
                             len(truth), hashes[0], samples, seed)


def aligned_outcomes(groups: list[Group], reference: Run, names: list[str] | None) -> list[dict[int, Outcomes]]:
    """Each group's test outcomes by seed, classes numbered by `names`; every run must have the reference run's test
    rows, in its order, with its truth (a one-line error otherwise)."""
    first = reference.test_outcomes(names)
    out = []
    for group in groups:
        by_seed = {}
        for run in group.runs:
            found = run.test_outcomes(names)
            if found.source_rows != first.source_rows:
                raise UserError(f"the test rows of {run.path} are not those of {reference.path} (same split "
                                f"{reference.manifest['split_hash']}): a paired comparison needs the same test "
                                "examples in the same order")
            if not np.array_equal(found.truth, first.truth):
                raise UserError(f"the test labels of {run.path} differ from those of {reference.path} on the same "
                                "test rows: a paired comparison needs the same truth")
            by_seed[run.metrics["seed"]] = found
        out.append(by_seed)
    return out


def paired_by_data_set(groups: list[Group], rows: list[dict[str, Any]], samples: int = DEFAULT_BOOTSTRAP_SAMPLES,
                       seed: int = DEFAULT_SEED, allow_mixed_splits: bool = False) -> list[PairedComparisons]:
    """compare_with_winner for each data set of the rows (compare's tables may hold several). With
    `allow_mixed_splits`, a data set whose runs use several splits gets no paired comparison (logged) instead of an
    error."""
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        picked = [(g, r) for g, r in zip(groups, rows, strict=True) if r["dataset"] == dataset]
        if allow_mixed_splits and len({run.manifest["split_hash"] for g, _ in picked for run in g.runs}) > 1:
            logger.warning("runs on %s use several splits: no paired comparison with the winner", dataset)
            continue
        out.append(compare_with_winner([g for g, _ in picked], [r for _, r in picked], samples, seed))
    return out


# ---- hyperparameter searches -----------------------------------------------------------------------------------


@dataclass
class Study:
    model: str
    path: Path
    settings: dict[str, Any]
    trials: list[dict[str, str]]
    best: dict[str, Any] | None


def find_studies(runs_dir: str | Path, dataset: str, models: list[str] | None = None) -> list[Study]:
    """The hyperparameter searches of a data set: runs/<dataset>/<model>/search-*/."""
    studies = []
    for path in sorted(Path(runs_dir).glob(f"{dataset}/*/{runs.SEARCH_DIR_PREFIX}*/{runs.SEARCH_FILE}")):
        folder = path.parent
        if models and folder.parent.name not in models:
            continue
        trials = []
        if (folder / runs.TRIALS_FILE).is_file():
            with open(folder / runs.TRIALS_FILE, newline="") as f:
                trials = list(csv.DictReader(f))
        best = _read_json(folder / runs.BEST_FILE) if (folder / runs.BEST_FILE).is_file() else None
        studies.append(Study(folder.parent.name, folder, yaml.safe_load(path.read_text()) or {}, trials, best))
    return studies


# ---- the report ------------------------------------------------------------------------------------------------


@dataclass
class Report:
    """The complete runs of one data set, grouped over seeds: what every renderer shows."""

    dataset: str
    groups: list[Group]
    studies: list[Study] = field(default_factory=list)
    bootstrap_samples: int = DEFAULT_BOOTSTRAP_SAMPLES  # resamples of the test examples behind every interval
    bootstrap_seed: int = DEFAULT_SEED  # the seed they are drawn with
    rows: list[dict[str, Any]] = field(init=False)  # table_rows(groups), in the groups' order

    def __post_init__(self) -> None:
        check_bootstrap(self.bootstrap_samples)
        self.rows = table_rows(self.groups)

    @property
    def reference(self) -> Run:
        """The run whose files speak for all (data set, split, settings shared by every model)."""
        return self.groups[0].first

    @property
    def modality(self) -> str:
        return self.reference.modality

    @property
    def task(self) -> str:
        """The task every run of the report shares (group_runs refuses a mix)."""
        return self.reference.task

    @property
    def task_name(self) -> str:
        """The task in words: classification, multi-label classification, regression."""
        return TASK_NAMES[self.task]

    @property
    def thresholds(self) -> tuple[list[float], bool]:
        """Multi-label: the distinct thresholds the runs predicted test labels with, and whether any was tuned on
        validation ([] and False for other tasks)."""
        found = [r.threshold for g in self.groups for r in g.runs if r.threshold]
        return sorted({t["value"] for t in found}), any(t.get("tuned_on_validation") for t in found)

    @property
    def input_nouns(self) -> tuple[str, str]:
        """What one example is called, singular and plural: text(s), image(s), clip(s); text pair(s) for pairs."""
        from hf_project.plots import INPUT_NOUNS  # matplotlib: only the renderers that word inputs need it

        return ("text pair", "text pairs") if self.reference.pairs else INPUT_NOUNS[self.modality]

    @property
    def table_metrics(self) -> tuple[str, ...]:
        """The metrics tables show beside the selection metric, for this report's task."""
        return TABLE_METRICS[self.task]

    @property
    def selection_metric(self) -> str:
        return self.rows[0]["selection_metric"]

    @cached_property
    def verdict(self) -> Verdict:
        return rank(self.rows)

    @cached_property
    def paired(self) -> PairedComparisons:
        """Every group against the winner on the shared test examples (compare_with_winner), computed once."""
        return compare_with_winner(self.groups, self.rows, self.bootstrap_samples, self.bootstrap_seed)

    @property
    def winner(self) -> Group:
        """The group of the verdict's winner."""
        return next(g for g, r in zip(self.groups, self.rows, strict=True) if r is self.verdict.winner)

    @property
    def seeds(self) -> list[int]:
        return sorted({r.metrics["seed"] for g in self.groups for r in g.runs})

    @property
    def num_runs(self) -> int:
        return sum(len(g.runs) for g in self.groups)

    @cached_property
    def errors(self) -> ErrorAnalysis | None:
        """Where the winner's best run errs on the test set (None for a regression)."""
        return error_analysis(self.winner.best_run)

    @cached_property
    def costs(self) -> list[Cost]:
        """What each group costs to train beside its test score, in the report's order (model_costs)."""
        return model_costs(self)

    @property
    def sample_inputs_figure(self) -> Path | None:
        """The sample-inputs figure drawn by the runs at training time (None for runs older than it). Every run of a
        report has the same split, and the figure's examples depend on the split only, so any run's figure will do."""
        drawn = (r.figure(runs.SAMPLE_INPUTS_FIGURE) for g in self.groups for r in g.runs)
        return next((p for p in drawn if p.is_file()), None)


# Above this many classes a confusion matrix cannot be read at a column's or a slide's size: the paper moves it to a
# page of its own and the video shows the most confused pairs instead.
MANY_CLASSES = 12


@dataclass
class ClassScore:
    """One class (or label) of the winner's test report beside its number of training examples."""

    label: str
    f1: float
    precision: float
    recall: float
    support: int  # test examples of the class (carrying the label)
    train: int  # training examples of the class (carrying the label)


@dataclass
class ConfusedPair:
    """Test examples of class `true` predicted as `predicted`, and the most confident of those mistakes."""

    true: str
    predicted: str
    count: int
    share: float  # of the test examples of `true`
    example: str  # that mistake's `input` cell of predictions_test.csv (a text; a placeholder for images and clips)
    score: float | None  # the probability the model gave `predicted` on it


@dataclass
class ErrorAnalysis:
    """Where a classifier errs on the test set, from its run files: every class by F1 (best first), the Spearman
    correlation of F1 with the number of training examples over the classes, and the most confused pairs."""

    classes: list[ClassScore]
    correlation: float | None  # None with fewer than three classes or constant counts
    pairs: list[ConfusedPair]

    @property
    def scored(self) -> list[ClassScore]:
        """The classes with test examples (an F1 of a class absent from test says nothing), best first."""
        return [c for c in self.classes if c.support > 0]


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None when it is undefined."""
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def error_analysis(run: Run, num_pairs: int = 5) -> ErrorAnalysis | None:
    """The ErrorAnalysis of a classification run (None for a regression)."""
    if run.task not in CLASSIFICATION:
        return None
    train = {str(r["label"]): r["train"] for r in run.class_counts()}
    classes = [ClassScore(str(r["label"]), float(r["f1"]), float(r["precision"]), float(r["recall"]),
                          int(r["support"]), int(train.get(str(r["label"]), 0))) for r in run.test_report()]
    classes.sort(key=lambda c: (-c.f1, c.label))
    scored = [c for c in classes if c.support > 0]
    correlation = spearman([c.train for c in scored], [c.f1 for c in scored])
    return ErrorAnalysis(classes, correlation, confused_pairs(run, num_pairs) if run.task == "single_label" else [])


def confused_pairs(run: Run, k: int = 5) -> list[ConfusedPair]:
    """The k largest off-diagonal cells of a single-label run's test confusion matrix, in plots.order_confusions'
    order (the order of the run's confused-examples figure), each with the mistake the model was most sure of."""
    from hf_project.plots import order_confusions  # and matplotlib with it: only when errors are analysed

    labels, matrix = run.confusion_matrix()
    counts = np.asarray(matrix, dtype=np.int64)
    totals = counts.sum(axis=1)
    rows = run.predictions()
    pairs = []
    for i, j, count in order_confusions(counts)[:k]:
        true, predicted = labels[i], labels[j]
        mistakes = [r for r in rows if r["label"] == true and r["predicted"] == predicted]
        best = max(mistakes, key=lambda r: float(r.get("score") or 0.0)) if mistakes else {}
        score = best.get("score")
        pairs.append(ConfusedPair(str(true), str(predicted), count, float(count / max(totals[i], 1)),
                                  best.get("input", ""), float(score) if score not in (None, "") else None))
    return pairs


@dataclass
class Cost:
    """What one model costs to train (means over its seeds) and what it scores on the test set."""

    model: str
    from_scratch: bool
    parameters: int  # trainable
    train_seconds: float | None
    samples_per_second: float | None
    peak_memory_mb: float | None
    peak_memory_kind: str | None
    test: float | None  # the selection metric
    seeds: int


def model_costs(report: Report) -> list[Cost]:
    """One Cost per group, in the report's order: the paper's cost-versus-gain table (read it as Report.costs)."""
    def mean(values: list[float]) -> float | None:
        return statistics.fmean(values) if values else None

    metric = report.selection_metric
    out = []
    for group, row in zip(report.groups, report.rows, strict=True):
        run = group.first
        out.append(Cost(group.label, run.from_scratch, int(run.manifest["parameters"]["trainable"]),
                        mean(group.manifest_values("train_runtime_s")),
                        mean(group.manifest_values("train_samples_per_second")),
                        mean(group.manifest_values("peak_memory_mb")), run.manifest.get("peak_memory_kind"),
                        row.get(f"test_{metric}_mean"), len(group.runs)))
    return out


def validation_curves(groups: list[Group]) -> dict[str, list[list[tuple[int, float]]]]:
    """(step, validation loss) points of every run, by group label: the overlay figure of compare and the paper."""
    curves: dict[str, list[list[tuple[int, float]]]] = {}
    for group in groups:
        curves.setdefault(group.label, []).extend(group.validation_curves())
    return curves


def _one_data_set(selected: list[Run], where: str, dataset: str | None, **bootstrap: int) -> Report:
    if not selected:
        on = f" on {dataset}" if dataset else ""
        raise UserError(f"no complete runs{on} under {where}: train some with scripts/finetune.py (or `make demo`) "
                        "first")
    datasets = sorted({r.metrics["dataset"] for r in selected})
    if len(datasets) > 1:
        raise UserError(f"the runs under {where} cover several data sets ({', '.join(datasets)}): pick one with "
                        "--dataset")
    return Report(datasets[0], group_runs(selected), **bootstrap)


def build_report(runs_dir: str | Path = "runs", dataset: str | None = None, models: list[str] | None = None,
                 tag: str | None = None, bootstrap_samples: int = DEFAULT_BOOTSTRAP_SAMPLES,
                 bootstrap_seed: int = DEFAULT_SEED) -> Report:
    """The complete runs of one data set under runs_dir (filtered as compare filters them) and its searches; its
    intervals come from `bootstrap_samples` resamples of the test examples drawn with `bootstrap_seed`."""
    report = _one_data_set(select_runs(runs_dir, dataset, models, tag), str(runs_dir), dataset,
                           bootstrap_samples=bootstrap_samples, bootstrap_seed=bootstrap_seed)
    report.studies = find_studies(runs_dir, report.dataset, models)
    return report


def report_of(paths: list[str], dataset: str | None = None, bootstrap_samples: int = DEFAULT_BOOTSTRAP_SAMPLES,
              bootstrap_seed: int = DEFAULT_SEED) -> Report:
    """The report of run directories and folders of runs (runs_under); one data set."""
    selected = [r for r in runs_under(paths) if dataset is None or r.metrics["dataset"] == dataset]
    return _one_data_set(selected, ", ".join(paths), dataset, bootstrap_samples=bootstrap_samples,
                         bootstrap_seed=bootstrap_seed)
