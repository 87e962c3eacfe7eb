"""Training-curve, confusion-matrix, reliability and sample-input figures, rendered off-screen and written atomically.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas directly rather than through pyplot:
they never enter pyplot's global figure registry (so nothing leaks or needs closing across thousands of
calls), no display is needed, and importing this module does not switch the backend of a notebook.
"""

from __future__ import annotations

import logging
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hf_project import runs
from hf_project.config import DEFAULT_SEED

logger = logging.getLogger(__name__)

# Above this many classes the per-cell numbers become unreadable, so only colours are drawn.
MAX_ANNOTATED_CLASSES = 20


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save_atomic(fig: Figure, path: str | Path, dpi: int = 100) -> None:
    """Write ``fig`` to a temp file beside ``path`` and rename it over ``path`` (runs.atomic_path).

    Readers (a dashboard polling the run dir, a concurrent rsync) thus see either the old or the new
    image, never a truncated one. The temp file is created with mode 0o666 & ~umask like a plain write.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    with runs.atomic_path(path) as tmp, open(tmp, "xb") as handle:
        fig.savefig(handle, format=fmt, dpi=dpi)
        handle.flush()
        os.fsync(handle.fileno())
    logger.debug("Wrote %s", path)


def _series(log_history: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    # The final summary entry of Trainer.train() has "train_loss", not "loss", so it is skipped here.
    points = [(entry["step"], entry[key]) for entry in log_history if key in entry and "step" in entry]
    points.sort(key=lambda point: point[0])
    return [int(step) for step, _ in points], [float(value) for _, value in points]


def plot_loss(
    log_history: list[dict[str, Any]], path: str | Path, best_step: int | None = None, title: str = "",
    size: tuple[float, float] = (8, 5),
) -> None:
    """Plot training and validation loss against step from ``Trainer.state.log_history``.

    Either series may be missing (no logging steps reached, evaluation disabled); ``best_step``, when
    given, is drawn as a vertical dashed line with its own legend entry. ``size``: inches (the paper draws at print
    size, so its fonts stay legible).
    """
    fig = _new_figure(*size)
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


def _annotate(ax: Any, values: np.ndarray, normalize: bool, vmax: float, fontsize: float | None = None) -> None:
    num_classes = values.shape[0]
    fontsize = fontsize or (9 if num_classes <= 10 else 7)
    for (row, col), value in np.ndenumerate(values):
        if row != col and value < 0.005:  # an empty cell says nothing: left blank, the non-zero ones stand out
            continue
        text = f"{value:.2f}" if normalize else f"{int(value)}"
        # White text on the dark end of the colour map keeps the numbers legible.
        color = "white" if vmax > 0 and value > 0.6 * vmax else "black"
        ax.text(col, row, text, ha="center", va="center", fontsize=fontsize, color=color)


def _set_class_ticks(ax: Any, label_names: list[str], fontsize: float | None = None) -> None:
    num_classes = len(label_names)
    # Cells are ~0.38 in (about 27 pt) wide at any K, so 8 pt vertical labels fit even for 50 classes.
    fontsize = fontsize or (10 if num_classes <= 10 else 8)
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
    side: float | None = None,
    width: float | None = None,
    tick_size: float | None = None,
) -> None:
    """Draw a K x K confusion matrix (rows = true label, columns = predicted), readable for 2..50 classes.

    With ``normalize`` the colours (and annotations) are row fractions, i.e. per-class recall on the
    diagonal; rows of classes with no examples are drawn as zeros. ``side``: the height in inches (by default it
    grows with the classes); ``width``, when given, the width (the cells are then stretched to fill it, as on a
    landscape page); ``tick_size`` the class names' font size in points.
    """
    counts = np.asarray(matrix, dtype=float)
    _check_matrix(counts, label_names)
    num_classes = len(label_names)
    values = _normalise_rows(counts) if normalize else counts
    vmax = 1.0 if normalize else max(float(values.max()), 1.0)
    side = side or max(5.0, 0.38 * num_classes + 2.5)
    fig = _new_figure(width or side + 1.2, side)
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest",
                      aspect="auto" if width else "equal")
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of true label" if normalize else "count",
                 pad=0.01 if width else 0.05)
    _set_class_ticks(ax, label_names, tick_size)
    if num_classes <= MAX_ANNOTATED_CLASSES:
        _annotate(ax, values, normalize, vmax, tick_size - 1 if tick_size else None)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(title)
    _save_atomic(fig, path, dpi=100 if num_classes <= 20 else 120)


def plot_per_label_f1(per_label: list[dict[str, Any]], path: str | Path, title: str = "",
                      max_labels: int = 40) -> None:
    """Multi-label: the test F1 of each label as horizontal bars, most frequent labels first (the `max_labels` most
    frequent when there are more), each with its number of test examples."""
    rows = sorted(per_label, key=lambda r: (-r["support"], r["label"]))[:max_labels]
    fig = _new_figure(7.5, max(3.0, 0.26 * len(rows) + 1.4))
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    ax.barh(y, [r["f1"] for r in rows], color="C0")
    ax.set_yticks(y, [f"{r['label']} ({r['support']})" for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("test F1 (support in brackets)")
    shown = "" if len(rows) == len(per_label) else f" ({len(rows)} most frequent of {len(per_label)} labels)"
    ax.set_title(f"{title}{shown}")
    ax.grid(True, axis="x", alpha=0.3)
    _save_atomic(fig, path)


def plot_predicted_vs_true(references: Sequence[float], predictions: Sequence[float], path: str | Path,
                           title: str = "", quantity: str = "value") -> None:
    """Regression: predicted against true values, one dot per test example, with the y = x line of perfect
    predictions."""
    refs, preds = np.asarray(references, dtype=float), np.asarray(predictions, dtype=float)
    fig = _new_figure(5.5, 5.5)
    ax = fig.add_subplot()
    ax.scatter(refs, preds, s=8, alpha=0.4 if len(refs) > 200 else 0.8, color="C0", edgecolors="none")
    both = np.concatenate([refs, preds])
    low, high = float(both.min()), float(both.max())
    pad = 0.03 * (high - low or 1.0)
    ax.plot([low - pad, high + pad], [low - pad, high + pad], color="C3", linewidth=1, label="perfect prediction")
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(low - pad, high + pad)
    ax.set_aspect("equal")
    ax.set_xlabel(f"true {quantity}")
    ax.set_ylabel(f"predicted {quantity}")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    _save_atomic(fig, path)


def plot_reliability(bins: dict[str, Any], path: str | Path, title: str = "",
                     axes: tuple[str, str] = ("confidence", "accuracy")) -> None:
    """A reliability diagram from hf_project.metrics.reliability_bins: above, each bin's outcome rate (accuracy) as a
    bar, the gap between it and the bin's mean confidence hatched red, the diagonal of perfect calibration and the ECE
    in the title (bars below the diagonal: over-confident); below, how many predictions each bin holds. `axes` names
    the confidence and the outcome."""
    edges = np.asarray(bins["edges"], dtype=float)
    counts = np.asarray(bins["count"], dtype=float)
    accuracy, confidence = np.asarray(bins["accuracy"], dtype=float), np.asarray(bins["confidence"], dtype=float)
    filled = counts > 0
    left, width = edges[:-1], np.diff(edges)
    fig = _new_figure(6, 6.5)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="perfect calibration")
    top.bar(left[filled], accuracy[filled], width[filled], align="edge", color="C0", edgecolor="white",
            label=axes[1])
    top.bar(left[filled], np.abs(confidence - accuracy)[filled], width[filled], align="edge",
            bottom=np.minimum(confidence, accuracy)[filled], facecolor="none", edgecolor="C3", hatch="///",
            linewidth=1.2, label="gap to the bin's mean confidence")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel(axes[1])
    top.set_title(f"{title}{': ' if title else ''}ECE {bins['ece']:.3f} ({len(counts)} bins)")
    top.grid(True, alpha=0.3)
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(left, counts, width, align="edge", color="C7", edgecolor="white")
    bottom.set_yscale("log" if counts.max(initial=0) > 20 * max(np.median(counts[filled]), 1) else "linear")
    bottom.set_xlabel(axes[0])
    bottom.set_ylabel("predictions")
    bottom.grid(True, axis="y", alpha=0.3)
    _save_atomic(fig, path)


def plot_validation_curves(curves: dict[str, list[list[tuple[int, float]]]], path: str | Path,
                           title: str = "validation loss", size: tuple[float, float] = (8, 5)) -> None:
    """Validation loss vs step for several models overlaid: one colour per model, one line per seed; ``size`` in
    inches."""
    fig = _new_figure(*size)
    ax = fig.add_subplot()
    colours = [f"C{i % 10}" for i in range(len(curves))]
    for (label, seeds), colour in zip(curves.items(), colours, strict=True):
        for i, points in enumerate(seeds):
            if points:
                steps, losses = zip(*points, strict=True)
                ax.plot(steps, losses, color=colour, marker="o", markersize=3, linewidth=1.2,
                        alpha=1.0 if len(seeds) == 1 else 0.6, label=label if i == 0 else None)
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
    top = max((v for per_model in values.values() for s in per_model.values() for v in s if np.isfinite(v)),
              default=1.0)
    ax.set_ylim(0, 1 if top <= 1 else None)  # scores in [0, 1]; errors in the target's units (RMSE) as they come
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend()
    _save_atomic(fig, path)


# ---- sample inputs ---------------------------------------------------------------------------------------------
# Drawn at training time into the run's figures/: reports read only run files, and the raw inputs are not among
# them (a builtin or hub data set has no files to point at).
SAMPLE_INPUTS = runs.SAMPLE_INPUTS_FIGURE
SAMPLE_MAX_CLASSES = {"text": 8, "image": 10, "audio": 8}
SAMPLE_PER_CLASS = {"text": 2, "image": 4, "audio": 2}
INPUT_NOUNS = {"text": ("text", "texts"), "image": ("image", "images"), "audio": ("clip", "clips")}
SPECTROGRAM_RATE = 16000  # every clip is drawn at one rate, so the mel axes of all panels agree
SPECTROGRAM_MELS = 64
TEXT_CHARS = 200  # a text panel shows at most this many characters (three lines)


def pick_examples(labels: Sequence[int], modality: str, seed: int = DEFAULT_SEED) -> list[int]:
    """Row indices of a few examples of each of the first classes (label order), drawn with `seed`: the same rows
    for every model trained on one split, so all runs of a comparison show the same inputs."""
    per_class, max_classes = SAMPLE_PER_CLASS[modality], SAMPLE_MAX_CLASSES[modality]
    chosen: dict[int, list[int]] = {}
    for i in np.random.default_rng(seed).permutation(len(labels)):
        label = int(labels[i])
        if label < max_classes and len(chosen.setdefault(label, [])) < per_class:
            chosen[label].append(int(i))
    return [i for label in sorted(chosen) for i in chosen[label]]


def log_mel(wave: np.ndarray, sampling_rate: int = SPECTROGRAM_RATE, n_mels: int = SPECTROGRAM_MELS) -> np.ndarray:
    """(n_mels, frames) log-mel power in dB (80 dB range) of a mono waveform: 25 ms Hann windows every 10 ms."""
    from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

    win, hop = round(0.025 * sampling_rate), round(0.010 * sampling_rate)
    n_fft = 2 ** int(np.ceil(np.log2(win)))
    filters = mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=n_mels, min_frequency=20.0,
                              max_frequency=sampling_rate / 2, sampling_rate=sampling_rate, norm="slaney",
                              mel_scale="slaney")
    wave = np.asarray(wave, dtype=np.float32)
    if len(wave) < n_fft:  # a clip shorter than one window still gets a frame
        wave = np.pad(wave, (0, n_fft - len(wave)))
    # constant padding: reflect padding needs a clip longer than half a window
    return spectrogram(wave, window_function(win, "hann", frame_length=n_fft), frame_length=n_fft, hop_length=hop,
                       fft_length=n_fft, power=2.0, pad_mode="constant", mel_filters=filters, log_mel="dB",
                       db_range=80.0)


def draw_input(ax: Any, value: Any, modality: str, title: str = "", sampling_rate: int = SPECTROGRAM_RATE) -> None:
    """One input on `ax` (a matplotlib Axes, pyplot's too): an image as it is, a clip (mono waveform at
    `sampling_rate`) as its log-mel spectrogram, a text as wrapped lines."""
    if modality == "image":
        pixels = np.asarray(value.convert("RGB") if hasattr(value, "convert") else value)
        small = max(pixels.shape[:2]) < 64  # tiny images (8x8 digits) as crisp squares, not a blur
        ax.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None, interpolation="nearest" if small else None)
        ax.set_xticks([])
        ax.set_yticks([])
    elif modality == "audio":
        wave = np.asarray(value, dtype=np.float32)
        seconds = len(wave) / sampling_rate
        from transformers.audio_utils import hertz_to_mel

        low, high = (float(hertz_to_mel(f, "slaney")) for f in (20.0, sampling_rate / 2))
        ax.imshow(log_mel(wave, sampling_rate), origin="lower", aspect="auto", cmap="magma",
                  extent=(0.0, seconds, low, high), interpolation="nearest")
        # the vertical axis is mel-spaced; its ticks are named in Hz, which a reader can relate to the sound
        ticks = [f for f in (100, 500, 1000, 2000, 4000, 8000) if f < sampling_rate / 2]
        ax.set_yticks([float(hertz_to_mel(f, "slaney")) for f in ticks],
                      labels=[f"{f // 1000}k" if f >= 1000 else str(f) for f in ticks])
        ax.set_xlabel("seconds", fontsize=8)
        ax.set_ylabel("Hz (mel scale)", fontsize=8)
        ax.tick_params(labelsize=7)
    else:
        text = " ".join(str(value).split())
        text = text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"
        ax.text(0.0, 1.0, textwrap.fill(text, 72), transform=ax.transAxes, va="top", ha="left", fontsize=8,
                family="serif")
        ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9, **({"loc": "left", "weight": "bold"} if modality == "text" else {}))


def plot_sample_inputs(examples: Sequence[tuple[str, Any]], modality: str, path: str | Path,
                       num_classes: int | None = None, sampling_rate: int = SPECTROGRAM_RATE,
                       group: tuple[str, str] = ("class", "classes")) -> None:
    """A few (class name, input) pairs of the training split: one column per class (images, and the clips of up to
    four classes), else one row per class (texts, and images of fewer classes than examples per class) or per two
    classes (clips). `num_classes`, when larger than the classes shown, is said in the title; `group` names what the
    examples are grouped by in it (singular, plural): classes, labels (multi-label) or ranges of the target."""
    by_class: dict[str, list[Any]] = {}
    for label, value in examples:
        by_class.setdefault(label, []).append(value)
    if not by_class:
        raise ValueError("no examples to draw")
    per_class = max(len(v) for v in by_class.values())
    names = list(by_class)
    cells = []  # (row, column, class, input)
    image_rows = modality == "image" and len(names) < per_class  # few classes: one row each, the figure stays wide
    if image_rows:
        rows, cols = len(names), per_class
        cells = [(c, j, name, v) for c, name in enumerate(names) for j, v in enumerate(by_class[name])]
    elif modality == "image" or (modality == "audio" and len(names) <= 4):
        rows, cols = per_class, len(names)
        cells = [(j, c, name, v) for c, name in enumerate(names) for j, v in enumerate(by_class[name])]
    else:
        pair = 2 if modality == "audio" else 1  # two classes side by side: the figure stays within a page
        rows, cols = -(-len(names) // pair), per_class * pair
        cells = [(k // pair, (k % pair) * per_class + j, name, v)
                 for k, name in enumerate(names) for j, v in enumerate(by_class[name])]
    width, height = {"image": (1.15, 1.15), "audio": (2.6, 1.7), "text": (4.6, 0.85)}[modality]
    fig = _new_figure(max(3.0, width * cols), height * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for r, c, name, value in cells:
        ax = axes[r, c]
        ax.set_axis_on()
        # an image grid names each class once (above its column, or left of its row); spectrograms and texts name
        # every panel
        draw_input(ax, value, modality, title="" if modality == "image" and (r > 0 or image_rows) else name,
                   sampling_rate=sampling_rate)
        if image_rows and c == 0:
            ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
        if modality == "audio":  # axis names on the outer panels only
            if c > 0:
                ax.set_ylabel("")
            if r < rows - 1 and any(cell[:2] == (r + 1, c) for cell in cells):
                ax.set_xlabel("")
    singular, plural = INPUT_NOUNS[modality]
    title = f"training {plural if per_class > 1 else singular}: {per_class} per {group[0]}"
    if num_classes and num_classes > len(names):
        title += f", first {len(names)} of {num_classes} {group[1]}"
    fig.suptitle(title + (" (log-mel spectrograms)" if modality == "audio" else ""), fontsize=10)
    _save_atomic(fig, path, dpi=110)


CONFUSED_MAX_PAIRS = 6  # panels of the confused-examples figure


def order_confusions(matrix: Any) -> list[tuple[int, int, int]]:
    """(true class, predicted class, count) of every mistake in a confusion matrix (rows: true classes), largest
    first; ties by the share of the true class's examples, then by class order. The one order of the confused pairs:
    the confused-examples figure (most_confused) and the report's error analysis (hf_project.report.confused_pairs).
    Numpy only, so the report can use it without drawing anything."""
    counts = np.asarray(matrix, dtype=np.int64)
    totals = np.maximum(counts.sum(axis=1), 1)
    cells = [(int(i), int(j), int(counts[i, j])) for i, j in zip(*np.nonzero(counts), strict=True) if i != j]
    cells.sort(key=lambda c: (-c[2], -c[2] / totals[c[0]], c[0], c[1]))
    return cells


def most_confused(truth: Sequence[int], predicted: Sequence[int],
                  k: int = CONFUSED_MAX_PAIRS) -> list[tuple[int, int, int]]:
    """(true class, predicted class, count) of the k most frequent mistakes, in order_confusions' order."""
    truth, predicted = np.asarray(truth, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    if not len(truth):
        return []
    n = int(max(truth.max(), predicted.max())) + 1
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return order_confusions(matrix)[:k]


def plot_confused_examples(examples: Sequence[tuple[str, Any]], modality: str, path: str | Path,
                           sampling_rate: int = SPECTROGRAM_RATE) -> None:
    """One panel per (title, input): the test input of each confused pair that the model got wrong most
    confidently, titled 'true -> predicted'. Texts one per row; images and clips in rows of three."""
    if not examples:
        raise ValueError("no mistakes to draw")
    cols = 1 if modality == "text" else min(3, len(examples))
    rows = -(-len(examples) // cols)
    width, height = {"image": (2.0, 2.1), "audio": (2.6, 1.9), "text": (6.5, 0.8)}[modality]
    fig = _new_figure(width * cols, height * rows + 0.3)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for k, (title, value) in enumerate(examples):
        ax = axes[k // cols, k % cols]
        ax.set_axis_on()
        draw_input(ax, value, modality, title=title, sampling_rate=sampling_rate)
    _save_atomic(fig, path, dpi=110)
