"""Training-curve and confusion-matrix figures, rendered off-screen and written atomically.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas directly rather than through pyplot:
they never enter pyplot's global figure registry (so nothing leaks or needs closing across thousands of
calls), no display is needed, and importing this module does not switch the backend of a notebook.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

# Above this many classes the per-cell numbers become unreadable, so only colours are drawn.
MAX_ANNOTATED_CLASSES = 20


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save_atomic(fig: Figure, path: str | Path, dpi: int = 100) -> None:
    """Write ``fig`` to a temp file beside ``path`` and rename it over ``path``.

    Readers (a dashboard polling the run dir, a concurrent rsync) thus see either the old or the new
    image, never a truncated one. The temp file is created with mode 0o666 & ~umask like a plain write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lstrip(".").lower() or "png"
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as handle:
            fig.savefig(handle, format=fmt, dpi=dpi)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.debug("Wrote %s", path)


def _series(log_history: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    # The final summary entry of Trainer.train() has "train_loss", not "loss", so it is skipped here.
    points = [(entry["step"], entry[key]) for entry in log_history if key in entry and "step" in entry]
    points.sort(key=lambda point: point[0])
    return [int(step) for step, _ in points], [float(value) for _, value in points]


def plot_loss(
    log_history: list[dict[str, Any]], path: str | Path, best_step: int | None = None, title: str = ""
) -> None:
    """Plot training and validation loss against step from ``Trainer.state.log_history``.

    Either series may be missing (no logging steps reached, evaluation disabled); ``best_step``, when
    given, is drawn as a vertical dashed line with its own legend entry.
    """
    fig = _new_figure(8, 5)
    ax = fig.add_subplot()
    train_steps, train_loss = _series(log_history, "loss")
    eval_steps, eval_loss = _series(log_history, "eval_loss")
    if train_steps:
        # Markers keep a short series (a single logged step, say) visible; long ones read better as a line.
        marker = "." if len(train_steps) < 60 else None
        ax.plot(train_steps, train_loss, label="training loss", color="tab:blue", linewidth=1.2, marker=marker)
    if eval_steps:
        ax.plot(eval_steps, eval_loss, label="validation loss", color="tab:orange", marker="o", markersize=4)
    if best_step is not None:
        ax.axvline(
            best_step, color="tab:green", linestyle="--", linewidth=1.2, label=f"best step ({best_step})"
        )
    if not (train_steps or eval_steps):
        ax.text(0.5, 0.5, "no loss logged", transform=ax.transAxes, ha="center", va="center", color="gray")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    _save_atomic(fig, path)


def _normalise_rows(matrix: np.ndarray) -> np.ndarray:
    support = matrix.sum(axis=1, keepdims=True)
    # Rows of classes absent from the data stay 0 instead of becoming NaN from 0 / 0.
    return np.divide(matrix, support, out=np.zeros(matrix.shape, dtype=float), where=support > 0)


def _annotate(ax: Any, values: np.ndarray, normalize: bool, vmax: float) -> None:
    num_classes = values.shape[0]
    fontsize = 9 if num_classes <= 10 else 7
    for (row, col), value in np.ndenumerate(values):
        text = f"{value:.2f}" if normalize else f"{int(value)}"
        # White text on the dark end of the colour map keeps the numbers legible.
        color = "white" if vmax > 0 and value > 0.6 * vmax else "black"
        ax.text(col, row, text, ha="center", va="center", fontsize=fontsize, color=color)


def _set_class_ticks(ax: Any, label_names: list[str]) -> None:
    num_classes = len(label_names)
    # Cells are ~0.38 in (about 27 pt) wide at any K, so 8 pt vertical labels fit even for 50 classes.
    fontsize = 10 if num_classes <= 10 else 8
    ticks = np.arange(num_classes)
    rotation = 45 if num_classes <= 10 else 90
    ax.set_xticks(ticks, labels=label_names, rotation=rotation, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, labels=label_names)
    ax.tick_params(labelsize=fontsize)


def _check_matrix(matrix: np.ndarray, label_names: list[str]) -> None:
    num_classes = len(label_names)
    if matrix.shape != (num_classes, num_classes):
        raise ValueError(f"Confusion matrix shape {matrix.shape} does not match {num_classes} label names")


def plot_confusion_matrix(
    matrix: list[list[int]],
    label_names: list[str],
    path: str | Path,
    normalize: bool = True,
    title: str = "",
) -> None:
    """Draw a K x K confusion matrix (rows = true label, columns = predicted), readable for 2..50 classes.

    With ``normalize`` the colours (and annotations) are row fractions, i.e. per-class recall on the
    diagonal; rows of classes with no examples are drawn as zeros.
    """
    counts = np.asarray(matrix, dtype=float)
    _check_matrix(counts, label_names)
    num_classes = len(label_names)
    values = _normalise_rows(counts) if normalize else counts
    vmax = 1.0 if normalize else max(float(values.max()), 1.0)
    side = max(5.0, 0.38 * num_classes + 2.5)
    fig = _new_figure(side + 1.2, side)
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of true label" if normalize else "count")
    _set_class_ticks(ax, label_names)
    if num_classes <= MAX_ANNOTATED_CLASSES:
        _annotate(ax, values, normalize, vmax)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(title)
    _save_atomic(fig, path, dpi=100 if num_classes <= 20 else 120)


def plot_validation_curves(curves: dict[str, list[list[tuple[int, float]]]], path: str | Path,
                           title: str = "validation loss") -> None:
    """Validation loss vs step for several models overlaid: one colour per model, one line per seed."""
    fig = _new_figure(8, 5)
    ax = fig.add_subplot()
    colours = [f"C{i % 10}" for i in range(len(curves))]
    for (label, runs), colour in zip(curves.items(), colours, strict=True):
        for i, points in enumerate(runs):
            if points:
                steps, losses = zip(*points, strict=True)
                ax.plot(steps, losses, color=colour, marker="o", markersize=3, linewidth=1.2,
                        alpha=1.0 if len(runs) == 1 else 0.6, label=label if i == 0 else None)
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    _save_atomic(fig, path)


def plot_metric_bars(values: dict[str, dict[str, list[float]]], path: str | Path, title: str = "test metrics") -> None:
    """Grouped bars of test metrics per model: the mean over seeds, the error bar one standard deviation."""
    fig = _new_figure(max(6, 1.6 * len(values) + 2), 4.5)
    ax = fig.add_subplot()
    metrics = sorted({m for per_model in values.values() for m in per_model})
    width = 0.8 / max(len(metrics), 1)
    x = np.arange(len(values))
    for j, metric in enumerate(metrics):
        series = [values[label].get(metric) or [np.nan] for label in values]
        means = [float(np.mean(s)) for s in series]
        stds = [float(np.std(s, ddof=1)) if len(s) > 1 else 0.0 for s in series]
        ax.bar(x + (j - (len(metrics) - 1) / 2) * width, means, width, yerr=stds, capsize=3,
               label=metric.replace("_", "-"))
    ax.set_xticks(x, list(values), rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend()
    _save_atomic(fig, path)
