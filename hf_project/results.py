"""What a finished run writes into its run directory (ARCHITECTURE.md's contract): metrics, predictions, the
classification report and confusion matrix, figures and the manifest, then the copy of the model in weights/."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from transformers import Trainer
from transformers.trainer_utils import PredictionOutput, TrainOutput

from hf_project import plots, runs
from hf_project.config import ExperimentConfig
from hf_project.data import PreparedData
from hf_project.data.labels import stratification_keys
from hf_project.metrics import ALL_METRIC_NAMES, TASK_METRICS
from hf_project.modalities import get_stage
from hf_project.modelcard import write_model_card
from hf_project.models.registry import ModelSpec
from hf_project.tasks import SingleLabel, Task

logger = logging.getLogger(__name__)


def write_run_inputs(run_dir: Path, cfg: ExperimentConfig, data: PreparedData) -> None:
    runs.write_yaml(run_dir / runs.CONFIG_FILE, cfg.to_dict())
    runs.write_json(run_dir / runs.SPLIT_FILE, data.split)
    runs.write_csv(run_dir / runs.CLASS_BALANCE_FILE, data.class_balance)


def best_validation_metrics(trainer: Trainer, metric: str) -> dict[str, Any]:
    """Validation metrics of the restored best checkpoint, read from the evaluation that selected it."""
    evals = [e for e in trainer.state.log_history if "eval_loss" in e]
    if not evals:  # training ended before its first evaluation (tiny max_steps): evaluate the final model
        trainer.evaluate()
        evals = [e for e in trainer.state.log_history if "eval_loss" in e]
    best_step = trainer.state.best_global_step
    chosen = next((e for e in evals if e["step"] == best_step), evals[-1])
    values = {k.removeprefix("eval_"): v for k, v in chosen.items() if k.startswith("eval_")}
    return {
        "best_step": chosen["step"],
        "best_epoch": chosen.get("epoch"),
        "selected_by": f"validation {metric}",
        **{k: values[k] for k in ("loss", *ALL_METRIC_NAMES) if k in values},
    }


def write_results(
    run_dir: Path,
    cfg: ExperimentConfig,
    spec: ModelSpec,
    data: PreparedData,
    trainer: Trainer,
    train_output: TrainOutput,
    validation: dict[str, Any],
    test: PredictionOutput,
    wall_time: float,
    memory: dict[str, Any],
    started_at: int = 0,
    input_facts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every result file of the run directory, then a copy of the model in weights/. `input_facts`: the modality
    stage's input_facts, recorded in the manifest."""
    task: Task = getattr(trainer, "task", SingleLabel())
    metrics, refs, outputs, report = scored_test(cfg, spec, data, task, test.predictions, validation,
                                                 test.metrics.get("test_loss"))
    metrics = {
        **metrics,
        "epochs_trained": trainer.state.epoch,
        "global_steps": trainer.state.global_step,
    }
    model_dir = run_dir / runs.MODEL_DIR
    figures = run_dir / runs.FIGURES_DIR
    trainer.model.config.update(task.model_settings())  # what inference needs to decide as the test did
    trainer.save_model(str(model_dir))
    runs.write_json(run_dir / runs.LOG_HISTORY_FILE, trainer.state.log_history)
    plots.plot_loss(trainer.state.log_history, figures / runs.LOSS_FIGURE, best_step=validation["best_step"],
                    title=f"{spec.name} on {data.name}")
    write_test_files(run_dir, data, task, refs, outputs, report, title=f"{spec.name}: test")
    runs.write_json(run_dir / runs.METRICS_FILE, metrics)
    run_manifest = {**manifest(cfg, spec, data, trainer, train_output, model_dir, wall_time, memory, started_at),
                    **(input_facts or {})}
    runs.write_json(run_dir / runs.MANIFEST_FILE, run_manifest)
    weights_dir = Path(cfg.train.weights_dir) / data.name / spec.name
    # in model/ before the copy, so that both copies carry it; from the dicts just written, so its numbers are theirs
    write_model_card(model_dir, weights_dir, metrics, run_manifest, cfg, data, task, refs, outputs, trainer)
    runs.copy_dir_atomic(model_dir, weights_dir)
    # Last: until every result is written, --resume can finish the run from its checkpoints without retraining.
    shutil.rmtree(run_dir / runs.CHECKPOINTS_DIR, ignore_errors=True)  # model/ holds the selected one
    logger.info("validation %s %.4f (step %s); %s; weights in %s",
                cfg.train.metric_for_best_model, validation.get(cfg.train.metric_for_best_model, float("nan")),
                validation["best_step"], task.summary(report), weights_dir)
    return metrics


def scored_test(cfg: ExperimentConfig, spec: ModelSpec, data: PreparedData, task: Task, predictions: np.ndarray,
                validation: dict[str, Any], loss: float | None) -> tuple[dict[str, Any], np.ndarray, np.ndarray,
                                                                       dict[str, Any]]:
    """The one test evaluation of any model, neural or linear, from its raw test outputs (logits): metrics.json's
    common entries (the `test` entry: loss, the task's scores, the calibration of a classifier's temperature-scaled
    outputs, the number of examples), the references, the outputs (probabilities, or values in the target's units)
    and the task's report."""
    outputs = task.outputs(predictions)
    refs = np.asarray(data.references("test"))
    report = task.report(refs, outputs, data.label_names)
    metrics = {
        "model": spec.name,
        "dataset": data.name,
        "task": data.task,
        "seed": cfg.train.seed,
        "selection_metric": cfg.train.metric_for_best_model,
        **task.record(),
        "validation": validation,
        "test": {"loss": loss, **{k: report[k] for k in TASK_METRICS[data.task]}, **task.calibration(refs, outputs),
                 "num_examples": int(len(refs))},
    }
    return metrics, refs, outputs, report


def write_test_files(run_dir: Path, data: PreparedData, task: Task, refs: np.ndarray, outputs: np.ndarray,
                     report: dict[str, Any], title: str) -> None:
    """What every run writes of its one test evaluation, neural or linear: the predictions, the per-class report,
    the confusion matrix, the task's figure, the reliability diagram, and the figures of inputs (samples, the
    surest mistakes)."""
    figures = run_dir / runs.FIGURES_DIR
    runs.write_csv(run_dir / runs.PREDICTIONS_FILE, prediction_rows(data, task, outputs, refs))
    runs.write_csv(run_dir / runs.REPORT_FILE, report["per_class"])
    confusion = task.confusion(report, data.label_names)
    if confusion is not None:
        runs.write_json(run_dir / runs.CONFUSION_FILE, confusion)
    task.draw(report, refs, outputs, data.label_names, figures / task.figure, title=title)
    task.draw_calibration(refs, outputs, figures / runs.RELIABILITY_FIGURE, title=title)
    write_sample_inputs(data, figures / runs.SAMPLE_INPUTS_FIGURE)
    if data.task == "single_label":
        write_confused_examples(data, refs, outputs, figures / runs.CONFUSED_FIGURE)


def write_sample_inputs(data: PreparedData, path: Path) -> None:
    """A few training inputs per class (the same rows for every model of the split), for the paper and the video,
    which read only run files. A figure that cannot be drawn is not worth the trained model: it is only warned of."""
    try:
        train = data.splits["train"]
        keys, titles = sample_groups(data)
        rows = plots.pick_examples(keys, data.modality, data.split["seed"])
        values = get_stage(data.modality).display_values(list(train.select(rows)[data.modality]))
        examples = [(titles[keys[i]], v) for i, v in zip(rows, values, strict=True)]
        group = {"single_label": ("class", "classes"), "multi_label": ("label", "labels"),
                 "regression": ("range", "ranges")}[data.task]
        plots.plot_sample_inputs(examples, data.modality, path, num_classes=len(titles), group=group)
    except Exception as err:  # noqa: BLE001
        logger.warning("no sample-inputs figure: %s", err)


def write_confused_examples(data: PreparedData, refs: np.ndarray, outputs: np.ndarray, path: Path) -> None:
    """The test inputs of the most confused pairs of classes (plots.most_confused), each the mistake the model was
    surest of: the paper and the video show them beside the confused-pairs table, since the raw images and clips
    are not among the run files. Not drawn when the model makes no mistake; only warned of when it cannot be."""
    try:
        chosen = np.asarray(outputs).argmax(-1)
        pairs = plots.most_confused(refs, chosen)
        if not pairs:
            path.unlink(missing_ok=True)
            return
        confidence = np.asarray(outputs).max(-1)
        rows = [max(np.flatnonzero((refs == t) & (chosen == p)), key=lambda i: confidence[i]) for t, p, _ in pairs]
        values = get_stage(data.modality).display_values(list(data.splits["test"].select(
            [int(i) for i in rows])[data.modality]))
        names = data.label_names
        plots.plot_confused_examples([(f"{names[t]} \u2192 {names[p]} ({n}x; p={confidence[i]:.2f})", v)
                                      for (t, p, n), i, v in zip(pairs, rows, values, strict=True)],
                                     data.modality, path)
    except Exception as err:  # noqa: BLE001
        logger.warning("no confused-examples figure: %s", err)


def sample_groups(data: PreparedData) -> tuple[list[int], dict[int, str]]:
    """The group of each training row in the sample-inputs figure, and the groups' titles: the classes; for
    multi-label data each row's most frequent label; for a regression the quintiles of the target."""
    labels = data.references("train")
    if data.task == "multi_label":
        counts = np.asarray(labels).sum(axis=0)
        keys = [int(np.argmax(np.where(np.asarray(row) > 0, counts, -1))) for row in labels]
        return keys, {k: data.label_names[k] for k in sorted(set(keys))}
    if data.task == "regression":
        keys = stratification_keys("regression", labels)
        values, groups = np.asarray(labels), np.asarray(keys)
        ranges = {k: (values[groups == k].min(), values[groups == k].max()) for k in sorted(set(keys))}
        return keys, {k: f"{data.label_names[0]} {low:.3g}" + (f" to {high:.3g}" if high > low else "")
                      for k, (low, high) in ranges.items()}
    return labels, dict(enumerate(data.label_names))


def prediction_rows(data: PreparedData, task: Task, outputs: np.ndarray, refs: np.ndarray) -> list[dict]:
    """predictions_test.csv: each test example's row, source row and input, then the task's columns (truth,
    prediction, ...)."""
    source_rows = data.split["test"]["indices"]
    inputs = get_stage(data.modality).describe_split(data.splits["test"])
    return [{"row": i, "source_row": source_rows[i], "input": inputs[i],
             **task.row(refs[i], outputs[i], data.label_names)} for i in range(len(refs))]


def manifest(
    cfg: ExperimentConfig,
    spec: ModelSpec,
    data: PreparedData,
    trainer: Trainer,
    train_output: TrainOutput,
    model_dir: Path,
    wall_time: float,
    memory: dict[str, Any],
    started_at: int = 0,
) -> dict[str, Any]:
    """manifest.json; `memory` is this model's PeakMemory reading, `started_at` the step training continued from."""
    model = trainer.model
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    size = sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))
    return {
        "command": runs.command_line(),
        "seed": cfg.train.seed,
        "full_determinism": cfg.train.full_determinism,
        "model": {"name": spec.name, "checkpoint": spec.checkpoint, "from_scratch": spec.from_scratch,
                  "class": type(model).__name__,
                  "source": dict(zip(("description", "package"), spec.source, strict=True)) if spec.source else None},
        "versions": runs.package_versions(),
        "git": runs.git_state(),
        "device": {**runs.device_info(), "num_processes": trainer.args.world_size,
                   "distributed_type": str(trainer.args.distributed_state.distributed_type)},
        "mixed_precision": trainer.accelerator.mixed_precision,
        "resumed_from": f"checkpoint-{started_at}" if started_at else None,
        "dataset": {"name": data.name, "modality": data.modality, "fingerprint": data.fingerprint,
                    "num_labels": data.num_labels,
                    "sizes": {k: len(v) for k, v in data.splits.items()}},
        "split_hash": data.split["hash"],
        "label_names": data.label_names,
        "parameters": {"total": total, "trainable": trainable},
        "model_size_mb": round(size / 1e6, 3),
        "wall_time_s": round(wall_time, 2),
        "train_runtime_s": train_output.metrics.get("train_runtime"),
        "train_samples_per_second": train_output.metrics.get("train_samples_per_second"),
        **memory,
    }
