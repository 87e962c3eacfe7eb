"""What the video shows: the slide frame (title band, page number) and one drawing per slide, from the report."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from hf_project import plots, runs
from hf_project.compare import TEST_TITLES, p_text, stat_text
from hf_project.metrics import greater_is_better
from hf_project.report import METRIC_TITLES, PROPORTIONS, Comparison, PairedComparisons, Report, fmt_params

# What the notebook slide's code passes to predict(), per modality.
EXAMPLE_INPUT = {"text": "'Beam me up, Scotty.'", "image": "'photo.png'", "audio": "'clip.wav'"}
# The figure of the winner on the test set, per task, as a missing one is named.
TEST_FIGURE_NAMES = {"single_label": "confusion matrix", "multi_label": "F1 per label figure",
                     "regression": "predicted against true figure"}


def _metric(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def new_slide(width: int, height: int, title: str, number: int, total: int) -> Figure:
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    FigureCanvasAgg(fig)
    fig.patch.set_facecolor("white")
    fig.add_artist(_band(fig))
    fig.text(0.04, 0.925, title, fontsize=30, weight="bold", color="white", va="center")
    fig.text(0.96, 0.03, f"{number}/{total}", fontsize=12, color="#666666", ha="right")
    fig.text(0.04, 0.03, "drafted by hf_project from the run directories", fontsize=10, color="#888888")
    return fig


def _band(fig: Figure) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((0, 0.85), 1, 0.15, transform=fig.transFigure, color="#1f3b63", zorder=-1)


def _bullets(fig: Figure, lines: list[str], top: float = 0.78, left: float = 0.06, size: int = 20) -> None:
    for k, line in enumerate(lines):
        fig.text(left, top - k * 0.075, line, fontsize=size, va="top", color="#222222")


def _picture(fig: Figure, path: Path, rect: list[float]) -> None:
    ax = fig.add_axes(rect)
    ax.imshow(np.asarray(Image.open(path).convert("RGB")))
    ax.set_axis_off()


def _table(fig: Figure, header: list[str], rows: list[list[str]], rect: list[float], bold_row: int | None) -> None:
    ax = fig.add_axes(rect)
    ax.set_axis_off()
    chars = [max(len(str(x)) for x in column) + 2 for column in zip(header, *rows, strict=True)]
    widths = [c / sum(chars) for c in chars]  # columns as wide as their longest text
    table = ax.table(cellText=rows, colLabels=header, loc="upper center", cellLoc="center", colWidths=widths)
    table.auto_set_font_size(False)
    # about 0.6 em per character: shrink the font until the widest line fits the table's width
    width_px = rect[2] * fig.get_figwidth() * fig.dpi
    table.set_fontsize(max(9, min(16, int(width_px / (0.6 * sum(chars)) * 72 / fig.dpi))))
    table.scale(1, 2.2)
    for (r, _), c in table.get_celld().items():
        if r == 0:
            c.set_text_props(weight="bold", color="white")
            c.set_facecolor("#1f3b63")
        elif bold_row is not None and r == bold_row + 1:
            c.set_text_props(weight="bold")
            c.set_facecolor("#e3ecf7")



# ---- one drawing per slide -------------------------------------------------------------------------------------


def draw_title(fig: Figure, report: Report) -> None:
    models = ", ".join(g.label for g in report.groups)
    _bullets(fig, [f"Models: {models}", f"Data: {report.dataset} ({report.modality})",
                   f"Runs: {report.num_runs} complete, split hash "
                   f"{report.reference.manifest['split_hash']}"], top=0.65, size=24)


def draw_data(fig: Figure, report: Report) -> None:
    ref = report.reference
    sizes = ref.manifest["dataset"]["sizes"]
    splits = [f"train {sizes['train']:,}", f"validation {sizes['validation']:,}", f"test {sizes['test']:,}",
              f"split seed {ref.split_seed}"]
    if report.task == "regression":
        _bullets(fig, [f"target: {ref.target_name}", *splits], size=20)
        stats = ref.target_statistics()
        rows = [[name, *(f"{v[s]:.0f}" if name == "n" else f"{v[s]:.3g}" for s in v)] for name, v in stats.items()]
        _table(fig, ["", *next(iter(stats.values()))], rows, [0.4, 0.15, 0.55, 0.6], None)
        return
    noun = "label" if report.task == "multi_label" else "class"
    counts = sorted(ref.class_counts(), key=lambda c: -c["train"])
    _bullets(fig, [f"{len(counts)} {'labels' if noun == 'label' else 'classes'}", *splits], size=20)
    ax = fig.add_axes([0.36, 0.12, 0.6, 0.68])
    shown = counts[:30]
    ax.barh(range(len(shown)), [c["train"] for c in shown], color="#3b6ea5")
    ax.set_yticks(range(len(shown)), [c["label"] for c in shown], fontsize=9 if len(shown) > 15 else 12)
    ax.invert_yaxis()
    ax.set_xlabel(f"training examples per {noun}" + (f" (largest 30 of {len(counts)})" if len(counts) > 30 else ""))


def draw_samples(fig: Figure, report: Report) -> None:
    path = report.sample_inputs_figure
    if path is None:
        _bullets(fig, ["(no sample inputs in the runs)"])
        return
    with Image.open(path) as im:
        aspect = im.width / im.height
    # as large as the area under the title band allows, centred, without distorting the figure
    width_px, height_px = fig.get_figwidth(), fig.get_figheight()
    h = 0.76
    w = min(0.92, h * aspect * height_px / width_px)
    h = w / aspect * width_px / height_px
    _picture(fig, path, [(1 - w) / 2, 0.08 + (0.76 - h) / 2, w, h])


def draw_models(fig: Figure, report: Report) -> None:
    rows = []
    for g in report.groups:
        run = g.first
        hyper = run.hyperparameters()
        rows.append([g.label, str(run.manifest["model"].get("class", "")), run.input_summary(),
                     fmt_params(run.manifest["parameters"]["total"]), f"{hyper['learning rate']:g}",
                     f"{hyper['epochs (max)']:g}", str(hyper["batch size"])])
    _table(fig, ["model", "class", "input", "parameters", "learning rate", "max epochs", "batch"], rows,
           [0.03, 0.15, 0.94, 0.65], None)


def draw_notebook(fig: Figure, report: Report) -> None:
    run = report.winner.best_run
    code = ["from hf_project.inference import Predictor",
            f"predictor = Predictor.load('weights/{report.dataset}/{run.metrics['model']}')",
            f"predictor.predict([{EXAMPLE_INPUT[report.modality]}])"]
    for k, line in enumerate(code):
        fig.text(0.06, 0.78 - k * 0.06, line, fontsize=17, family="monospace", color="#0b3d0b", va="top")
    header, table = prediction_table(run.predictions(limit=4), report)
    _table(fig, header, table, [0.05, 0.1, 0.9, 0.45], None)


def prediction_table(rows: list[dict[str, str]], report: Report) -> tuple[list[str], list[list[str]]]:
    """The notebook slide's table of test predictions (predictions_test.csv rows): its header and cells."""
    inputs = [shown_input(r["input"], report.modality) for r in rows]
    if report.task == "regression":
        return ["input", "true", "predicted", "error"], [
            [x, *(f"{float(r[k]):.3g}" for k in ("label", "predicted", "error"))] for x, r in zip(inputs, rows,
                                                                                                 strict=True)]
    if report.task == "multi_label":  # label sets are joined by "|" in the file
        return ["input", "labels", "predicted"], [
            [x, *(_clip(r[k].replace("|", ", ") or "(none)", 30) for k in ("label", "predicted"))]
            for x, r in zip(inputs, rows, strict=True)]
    return ["input", "label", "predicted", "score"], [
        [x, r["label"], r["predicted"], f"{float(r['score']):.2f}"] for x, r in zip(inputs, rows, strict=True)]


def shown_input(value: str, modality: str) -> str:
    """A test input as the notebook slide shows it: a text's start; an image or clip by its folder and file name
    (the author's absolute path says nothing), or by its test row when the data set has no files."""
    if modality == "text":
        return _clip(value, 40)
    row = re.fullmatch(r"<(?:image|audio) (\d+)>", value)
    if row:
        return f"test {plots.INPUT_NOUNS[modality][0]} {row.group(1)}"
    return _clip("/".join(Path(value).parts[-2:]), 40)


def _clip(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def draw_training(fig: Figure, report: Report) -> None:
    pictures = [g.best_run.figure(runs.LOSS_FIGURE) for g in report.groups[:3]]
    pictures = [p for p in pictures if p.is_file()]
    if not pictures:
        _bullets(fig, ["(no loss curves in the runs)"])
        return
    width = 0.92 / len(pictures)
    for k, path in enumerate(pictures):
        _picture(fig, path, [0.04 + k * width, 0.1, width - 0.01, 0.72])


def draw_results(fig: Figure, report: Report) -> None:
    metric = report.selection_metric

    def cell_text(row: dict[str, Any], key: str) -> str:
        mean, std = row.get(f"{key}_mean"), row.get(f"{key}_std")
        return _metric(mean) + (f" ± {std:.3f}" if std is not None and row["seeds"] > 1 else "")

    rows = [[r["model"], str(r["seeds"]), cell_text(r, f"validation_{metric}"),
             *(cell_text(r, f"test_{m}") for m in report.table_metrics)] for r in report.rows]
    bold = next((k for k, r in enumerate(report.rows) if r is report.verdict.winner), None)
    header = ["model", "seeds", f"val {METRIC_TITLES[metric]}",
              *(f"test {METRIC_TITLES[m]}" for m in report.table_metrics)]
    _table(fig, header, rows, [0.05, 0.36, 0.9, 0.46], bold)
    paired = report.paired
    others = [c for c in paired.comparisons if not c.is_winner][:3]
    lines = [paired_line(paired, c) for c in others]
    if lines:
        lines.append(f"Paired on the same {paired.num_examples:,} test examples; 95% CI from {paired.samples:,} "
                     f"bootstrap resamples (seed {paired.seed})")
    for k, line in enumerate(lines):
        fig.text(0.06, 0.31 - k * 0.055, line, fontsize=15 if k < len(others) else 12, va="top",
                 color="#222222" if k < len(others) else "#666666")


def paired_line(paired: PairedComparisons, c: Comparison) -> str:
    """The results slide's line of one model against the winner: the winner's paired advantage, its 95% interval
    and the paired test's p-value."""
    if not c.paired:
        return f"{c.model}: no seed in common with {paired.winner}, not paired"
    metric = paired.metric
    gap, (low, high) = c.advantage(metric)
    ahead = gap >= 0
    if not ahead:  # how far behind, and its interval
        gap, low, high = -gap, -high, -low
    higher = greater_is_better(metric) == ahead  # the winner's score is higher (or lower, for an error)
    unit = " points" if metric in PROPORTIONS else ""
    seeds = f" (mean of {len(c.paired_seeds)} seeds)" if len(c.paired_seeds) > 1 else ""
    return (f"{paired.winner} {'ahead of' if ahead else 'behind'} {c.model}: "
            f"{stat_text(metric, gap)}{unit} {'higher' if higher else 'lower'} {METRIC_TITLES[metric]}, "
            f"95% CI [{stat_text(metric, low)}, {stat_text(metric, high)}]{seeds}, "
            f"{TEST_TITLES[paired.test]} = {p_text(c.combined.p_value)}")


def draw_test_figure(fig: Figure, report: Report) -> None:
    """The winner's figure of the test set, as its run drew it: confusion matrix, F1 per label, predicted values."""
    path = report.winner.best_run.test_figure
    if path.is_file():
        _picture(fig, path, [0.05, 0.08, 0.9, 0.75])  # a square matrix or scatter as high as it fits, wide bars wider
    else:
        _bullets(fig, [f"(no {TEST_FIGURE_NAMES[report.task]} in the run)"])


def draw_conclusion(fig: Figure, report: Report) -> None:
    v = report.verdict
    key = f"test_{v.metric}_mean"
    lower = "" if greater_is_better(v.metric) else " (lower is better)"
    lines = [f"Best on test {METRIC_TITLES[v.metric]}{lower}: {v.winner['model']} ({_metric(v.winner[key])})"]
    if v.runner_up is not None:
        lines.append(f"Runner-up: {v.runner_up['model']} ({_metric(v.runner_up[key])})")
    lines += [f"Seeds per model: {v.winner['seeds']}", "Weights, notebook and paper reproduce every number"]
    _bullets(fig, lines, size=22)


