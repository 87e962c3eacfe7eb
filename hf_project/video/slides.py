"""What the video shows of the report: one drawing per slide (title, data, samples, models, training, results, the
winner's test figure, conclusion), from the report of the runs, made of the shapes of hf_project.video.layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from hf_project.compare import TEST_TITLES, p_text, stat_text
from hf_project.metrics import greater_is_better
from hf_project.report import (
    MANY_CLASSES,
    METRIC_TITLES,
    PROPORTIONS,
    Comparison,
    PairedComparisons,
    Report,
    Run,
    fmt_params,
)
from hf_project.video.layout import (
    ACCENT,
    CODE_INK,
    CONTENT,
    DPI,
    GAP,
    INK,
    MIN_FONT,
    MUTED,
    PLACEHOLDER,
    PX,
    Box,
    aspect,
    card,
    card_axes,
    clip,
    columns,
    fit_line,
    hbars,
    paragraphs,
    picture,
    pixels,
    style_axes,
    table,
    text_width,
    wrap,
)
from hf_project.video.talk import Presenter

# The figure of the winner on the test set, per task, as a missing one is named.
TEST_FIGURE_NAMES = {"single_label": "confusion matrix", "multi_label": "F1 per label figure",
                     "regression": "predicted against true figure"}


def _metric(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def draw_title(fig: Figure, report: Report, presenter: Presenter) -> None:
    """The presenter's name and student number (placeholders in red when missing), what the talk is about, and a
    picture of the data (the runs' sample inputs) or, without one, the test scores."""
    left, right = CONTENT.split_x(0.5)
    card(fig, left)
    inner = left.inset(0.025, 0.04)

    def field(value: str, missing: bool, scale: float) -> tuple[str, dict[str, Any]]:
        return value, ({"scale": scale, "weight": "bold", "color": PLACEHOLDER, "style": "italic"} if missing else
                       {"scale": scale, "weight": "bold"})
    sizes = report.reference.manifest["dataset"]["sizes"]
    labels = len(report.reference.manifest["label_names"])
    what = ("regression of " + report.reference.target_name if report.task == "regression" else
            f"{labels} {'labels' if report.task == 'multi_label' else 'classes'}")
    models = ", ".join(g.label for g in report.groups)
    paragraphs(fig, inner, [
        ("Presented by", {"scale": 0.62, "color": MUTED}),
        field(presenter.shown_name, presenter.name is None, 1.3),
        ("Student number", {"scale": 0.62, "color": MUTED}),
        field(presenter.shown_number, presenter.student_number is None, 1.05),
        (f"{len(report.groups)} models: {models}", {"scale": 0.75}),
        (f"{report.dataset}: {sum(sizes.values()):,} {report.input_nouns[1]}, {what}", {"scale": 0.75}),
        (f"{report.num_runs} complete runs, one split ({report.reference.manifest['split_hash']})",
         {"scale": 0.62, "color": MUTED}),
    ], largest=34, smallest=14, spacing=0.6)
    figure = report.sample_inputs_figure
    if figure is None or report.modality == "text":  # the runs' figure of texts is too small to read here
        _score_bars(fig, right, report)
        return
    width_px, height_px = pixels(fig, right)
    share = min(1.0, width_px / aspect(figure) / height_px + 0.04)  # the picture at the column's full width
    if share > 0.72:
        picture(fig, figure, right.inset(0.01, 0.02))
        return
    top, bottom = right.split_y(share)
    picture(fig, figure, top.inset(0.006, 0.012))
    _score_bars(fig, bottom, report)


def _score_bars(fig: Figure, box: Box, report: Report) -> None:
    """The test score of the selection metric per model, with its 95% bootstrap interval (report.paired)."""
    paired = report.paired
    metric = paired.metric
    comparisons = list(paired.comparisons)
    values = [c.scores[metric] for c in comparisons]
    low = [v - c.intervals[metric][0] for v, c in zip(values, comparisons, strict=True)]
    high = [c.intervals[metric][1] - v for v, c in zip(values, comparisons, strict=True)]
    size = 14
    labels = [c.model for c in comparisons]
    label_px = max(text_width(label, size) for label in labels) + 16
    width_px, height_px = pixels(fig, box)
    ax = card_axes(fig, box, left=min(0.45, label_px / width_px + 0.03), bottom=0.05 + 2 * size * PX / height_px,
               top=0.05 + 3 * size * PX / height_px, right=0.12)
    best = {c.model for c in comparisons if c.is_winner}
    ax.barh(range(len(values)), values, xerr=[low, high], capsize=6,
            color=[ACCENT if m in best else "#9fb3cf" for m in labels], error_kw={"elinewidth": 2})
    ax.set_yticks(range(len(values)), labels)
    ax.invert_yaxis()
    style_axes(ax, size)
    for k, v in enumerate(values):
        ax.text(v + high[k], k, f"  {v:.3f}", va="center", fontsize=size, color=INK)
    lower = "" if greater_is_better(metric) else " (lower is better)"
    fig.text(box.x + 0.012, box.top - 0.02, f"Test {METRIC_TITLES[metric]}{lower} with its 95% interval",
             fontsize=size + 2, color=INK, va="top", weight="bold")
    top = max(v + h for v, h in zip(values, high, strict=True))
    ax.set_xlim(0, top * 1.2 if top > 0 else 1)


def draw_data(fig: Figure, report: Report) -> None:
    ref = report.reference
    sizes = ref.manifest["dataset"]["sizes"]
    left, right = CONTENT.split_x(0.34)
    card(fig, left)
    facts = [(f"{sizes['train']:,} train", {}), (f"{sizes['validation']:,} validation", {}),
             (f"{sizes['test']:,} test", {}),
             (f"one split, seed {ref.split_seed}, shared by every model", {"scale": 0.7, "color": MUTED})]
    if report.task == "regression":
        stats = ref.target_statistics()
        paragraphs(fig, left.inset(0.02, 0.04), [(f"target: {ref.target_name}", {"weight": "bold"}), *facts],
                   largest=26)
        top, bottom = right.split_y(0.5)
        rows = [[name, *(f"{v[s]:.0f}" if name == "n" else f"{v[s]:.3g}" for s in v)] for name, v in stats.items()]
        card(fig, top)
        table(fig, top.inset(0.012, 0.02), ["", *next(iter(stats.values()))], rows, largest=18, align_top=False,
              row_ems=1.6)
        values = [float(r["label"]) for r in ref.predictions()]
        ax = card_axes(fig, bottom, left=0.08, bottom=0.2, top=0.14)
        ax.hist(values, bins=20, color=ACCENT)
        style_axes(ax)
        ax.set_xlabel(ref.target_name)
        ax.set_title(f"{ref.target_name} on the {len(values):,} test examples", loc="left", color=INK)
        return
    noun = "label" if report.task == "multi_label" else "class"
    counts = sorted(ref.class_counts(), key=lambda c: -c["train"])
    imbalance = counts[0]["train"] / max(1, counts[-1]["train"])
    paragraphs(fig, left.inset(0.02, 0.04), [
        (f"{len(counts)} {'labels' if noun == 'label' else 'classes'}", {"weight": "bold", "scale": 1.2}), *facts,
        (f"{'most / least frequent label' if noun == 'label' else 'largest / smallest class'}: "
         f"{imbalance:.1f}x", {"scale": 0.85})], largest=26)
    shown = counts[:30]
    size = 14 if len(shown) <= 15 else MIN_FONT
    label_px = max(text_width(str(c["label"]), size) for c in shown) + 14
    ax = card_axes(fig, right, left=min(0.45, label_px / pixels(fig, right)[0] + 0.02), bottom=0.12, top=0.04)
    ax.barh(range(len(shown)), [c["train"] for c in shown], color=ACCENT)
    ax.set_yticks(range(len(shown)), [str(c["label"]) for c in shown])
    ax.invert_yaxis()
    style_axes(ax, size)
    ax.tick_params(axis="x", labelsize=14)
    ax.set_xlabel(f"training examples per {noun}" + (f" (largest 30 of {len(counts)})" if len(counts) > 30 else ""),
                  fontsize=14)
    ax.set_ylim(len(shown) - 0.5, -0.5)


SAMPLE_TEXT_CLASSES = 4  # classes whose texts the samples slide shows (two each)
SAMPLE_TEXTS = 8


def sample_texts(report: Report) -> list[tuple[str, str]]:
    """(label, text) of the test texts the samples slide shows: the first two of each of the largest
    SAMPLE_TEXT_CLASSES classes (single-label), else the first SAMPLE_TEXTS with their label sets or target values."""
    rows = report.reference.predictions()
    if report.task == "regression":
        name = report.reference.target_name
        return [(f"{name} = {float(r['label']):.3g}", r["input"]) for r in rows[:SAMPLE_TEXTS]]
    if report.task == "multi_label":
        return [(r["label"].replace("|", ", ") or "(no label)", r["input"]) for r in rows[:SAMPLE_TEXTS]]
    counts = sorted(report.reference.class_counts(), key=lambda c: -c["test"])
    shown = [c["label"] for c in counts[:SAMPLE_TEXT_CLASSES]]
    return [(label, r["input"]) for label in sorted(shown) for r in [r for r in rows if r["label"] == label][:2]]


def draw_samples(fig: Figure, report: Report) -> None:
    """Texts drawn as text, large (the runs' figure of them is too small to read on a slide); images and clips as
    the runs drew them at training time (sample inputs figure)."""
    if report.modality == "text":
        examples = sample_texts(report)
        per_row = 2
        nrows = max(1, -(-len(examples) // per_row))
        height = (CONTENT.h - GAP * (nrows - 1)) / nrows
        for k, (label, text) in enumerate(examples):
            column = columns(CONTENT, per_row)[k % per_row]
            box = Box(column.x, CONTENT.top - (k // per_row + 1) * height - (k // per_row) * GAP, column.w, height)
            card(fig, box)
            inner = box.inset(0.012, 0.016)
            width_px, height_px = pixels(fig, inner)
            lines = wrap(" ".join(text.split()), width_px, 15)
            fit = max(1, int((height_px - 1.6 * 15 * PX) / (1.3 * 15 * PX)))
            if len(lines) > fit:
                lines = [*lines[: fit - 1], fit_line(fig, lines[fit - 1] + " …", width_px, 15)]
            fig.text(inner.x, inner.top, fit_line(fig, label, width_px, 15, "bold"), fontsize=15, weight="bold",
                     color=ACCENT, va="top")
            fig.text(inner.x, inner.top - 1.6 * 15 * PX / (fig.get_figheight() * DPI), "\n".join(lines),
                     fontsize=15, color=INK, va="top", linespacing=1.3)
        return
    path = report.sample_inputs_figure
    if path is None:
        paragraphs(fig, CONTENT, [("(no sample inputs in the runs)", {})])
        return
    width_px, height_px = pixels(fig, CONTENT)
    share = aspect(path) * height_px / width_px + 0.02
    if share > 0.72:
        picture(fig, path, CONTENT.inset(0.008, 0.015))
        return
    # a narrow picture: beside it, how each model reads these inputs
    left, right = CONTENT.split_x(share)
    picture(fig, path, left.inset(0.008, 0.015))
    card(fig, right)
    items: list[tuple[str, dict[str, Any]]] = [("How each model reads them", {"weight": "bold"})]
    for group in report.groups:
        items += [(group.label, {"weight": "bold", "color": ACCENT, "scale": 0.9}),
                  (group.first.input_summary(), {"scale": 0.9})]
    sizes = report.reference.manifest["dataset"]["sizes"]
    items.append((f"{sum(sizes.values()):,} {report.input_nouns[1]} in all", {"scale": 0.8, "color": MUTED}))
    paragraphs(fig, right.inset(0.02, 0.04), items, largest=24, spacing=0.35)


def _number(value: object) -> str:
    """A hyperparameter as a slide shows it: numbers in their shortest form, anything else ('-' for a linear
    baseline, which has no learning rate or epochs) as it is."""
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def draw_models(fig: Figure, report: Report) -> None:
    rows = []
    for g in report.groups:
        run = g.first
        hyper = run.hyperparameters()
        rows.append([g.label, str(run.manifest["model"].get("class", "")), run.input_summary(),
                     fmt_params(run.manifest["parameters"]["total"]), _number(hyper["learning rate"]),
                     _number(hyper["epochs (max)"]), str(hyper["batch size"])])
    header = ["model", "class", "input", "parameters", "learning rate", "max epochs", "batch"]
    top, bottom = CONTENT.split_y(min(0.6, 0.24 + 0.08 * len(rows)))
    card(fig, top)
    table(fig, top.inset(0.01, 0.02), header, rows, largest=22, align_top=False)
    seconds = _manifest_values(report, "train_runtime_s")
    minutes = all(v is not None for v in seconds) and max(seconds) >= 120
    params = [g.first.manifest["parameters"]["total"] for g in report.groups]
    panels = [("parameters", params, [fmt_params(p) for p in params]),
              (f"training time ({'minutes' if minutes else 'seconds'})",
               [v / 60 if minutes else v for v in seconds] if all(v is not None for v in seconds) else seconds, ".1f"),
              ("peak memory (MB)", _manifest_values(report, "peak_memory_mb"), ".0f")]
    panels = [p for p in panels if all(v is not None for v in p[1])]
    boxes = columns(bottom, len(panels))
    for box, (title, values, fmt) in zip(boxes, panels, strict=True):
        hbars(fig, box, [g.label for g in report.groups], values, title, fmt)


def _manifest_values(report: Report, key: str, factor: float = 1.0) -> list[float | None]:
    """A manifest number of each group (the mean over its seeds), None where the runs do not record it."""
    out = []
    for g in report.groups:
        values = g.manifest_values(key)
        out.append(float(np.mean(values)) * factor if values else None)
    return out


def draw_training(fig: Figure, report: Report) -> None:
    """Each model's training and validation loss (its run best on validation), drawn on the slide at its size."""
    groups = report.groups[:3]
    boxes = columns(CONTENT, len(groups))
    for box, group in zip(boxes, groups, strict=True):
        run = group.best_run
        history = run.log_history()
        ax = card_axes(fig, box, left=0.16, bottom=0.13, top=0.1, right=0.04)
        train = sorted((e["step"], e["loss"]) for e in history if "loss" in e and "step" in e)
        valid = sorted((e["step"], e["eval_loss"]) for e in history if "eval_loss" in e and "step" in e)
        if train:
            ax.plot(*zip(*train, strict=True), color="tab:blue", linewidth=2, label="training loss")
        if valid:
            ax.plot(*zip(*valid, strict=True), color="tab:orange", marker="o", markersize=6, linewidth=2.5,
                    label="validation loss")
        best = run.metrics["validation"].get("best_step")
        if best is not None:
            ax.axvline(best, color="tab:green", linestyle="--", linewidth=2, label=f"best step ({best})")
        if not (train or valid):
            ax.text(0.5, 0.5, "no loss logged", transform=ax.transAxes, ha="center", fontsize=16, color=MUTED)
        style_axes(ax)
        ax.grid(True, alpha=0.3)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(group.label, loc="left", weight="bold", color=INK)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=13, frameon=False)


def results_table(report: Report) -> tuple[list[str], list[list[str]], set[tuple[int, int]]]:
    """The results slide's table: header, cells, and the (row, column) cells to mark: in each metric column the best
    mean (highest; lowest for a loss or an error, metrics.LOWER_IS_BETTER), all of them when tied. Never a row."""
    metric = report.selection_metric
    metric_columns = [("validation", metric), *(("test", m) for m in report.table_metrics)]

    def cell_text(row: dict[str, Any], key: str) -> str:
        mean, std = row.get(f"{key}_mean"), row.get(f"{key}_std")
        return _metric(mean) + (f" ± {std:.3f}" if std is not None and row["seeds"] > 1 else "")

    rows = [[r["model"], str(r["seeds"]), *(cell_text(r, f"{s}_{m}") for s, m in metric_columns)] for r in report.rows]
    bold = set()
    for c, (split, m) in enumerate(metric_columns, 2):
        key = f"{split}_{m}_mean"
        scored = [r[key] for r in report.rows if r.get(key) is not None]
        if not scored:
            continue
        best = (max if greater_is_better(m) else min)(scored)
        bold |= {(k, c) for k, r in enumerate(report.rows) if r.get(key) == best}
    lower = {m for _, m in metric_columns if not greater_is_better(m)}
    header = ["model", "seeds", *(f"{'val' if s == 'validation' else 'test'} {METRIC_TITLES[m]}"
                                  + (" (lower is better)" if m in lower else "") for s, m in metric_columns)]
    return header, rows, bold


def draw_results(fig: Figure, report: Report) -> None:
    header, rows, bold = results_table(report)
    top, bottom = CONTENT.split_y(min(0.5, 0.2 + 0.075 * len(rows)))
    card(fig, top)
    table(fig, top.inset(0.01, 0.02), header, rows, bold, largest=22, align_top=False)
    chart, notes = bottom.split_x(0.5)
    _score_bars(fig, chart, report)
    card(fig, notes)
    paired = report.paired
    others = [c for c in paired.comparisons if not c.is_winner][:3]
    items: list[tuple[str, dict[str, Any]]] = [("Paired with the winner on the same test examples",
                                                {"weight": "bold", "scale": 0.9})]
    items += [(paired_line(paired, c), {}) for c in others]
    items.append((f"95% CI from {paired.samples:,} bootstrap resamples (seed {paired.seed}) of the "
                  f"{paired.num_examples:,} test examples; bold: the best value of each column",
                  {"scale": 0.8, "color": MUTED}))
    paragraphs(fig, notes.inset(0.015, 0.03), items, largest=18, smallest=12)


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
    p = p_text(c.combined.p_value)
    line = (f"{paired.winner} {'ahead of' if ahead else 'behind'} {c.model}: "
            f"{stat_text(metric, gap)}{unit} {'higher' if higher else 'lower'} {METRIC_TITLES[metric]}, "
            f"95% CI [{stat_text(metric, low)}, {stat_text(metric, high)}]{seeds}, "
            f"{TEST_TITLES[paired.test]} {p if p.startswith('<') else '= ' + p}")
    if c.combined.a_only is not None:  # McNemar asks who is right more often, which the macro-F1 winner may not be
        line += (f" (of the examples only one gets right, {c.model} gets {c.combined.a_only:,}, "
                 f"{paired.winner} {c.combined.b_only:,})")
    return line


def draw_test_figure(fig: Figure, report: Report) -> None:
    """The winner's figure of the test set, as its run drew it (confusion matrix, F1 per label, predicted against
    true values), beside the table it comes with: its hardest classes or labels, or its errors per range of the true
    value."""
    run = report.winner.best_run
    path = run.test_figure
    header, rows, title = report_table(run)
    if not path.is_file():
        paragraphs(fig, CONTENT, [(f"(no {TEST_FIGURE_NAMES[report.task]} in the run)", {})])
        return
    if not rows:
        picture(fig, path, CONTENT.inset(0.006, 0.012))
        return
    if report.task == "single_label" and len(run.manifest["label_names"]) > MANY_CLASSES and report.errors.pairs:
        confusions_beside_report(fig, report, header, rows, title)
        return
    ratio = aspect(path)
    width_px, height_px = pixels(fig, CONTENT)
    if ratio > 1.6:  # wide bars: the picture across the slide, the table under it
        share = min(0.52, width_px / ratio / height_px + 0.03)
        first, second = CONTENT.split_y(share)
    else:  # a square matrix or scatter as high as it fits, the table beside it
        first, second = CONTENT.split_x(min(0.66, max(0.4, ratio * height_px / width_px)))
    picture(fig, path, first.inset(0.006, 0.012))
    if rows:
        below = titled_table(fig, second, title, header, rows)
        notes = mistakes(report)
        if notes and below.h > 0.1:
            paragraphs(fig, below, [(note, {}) for note in notes], largest=18, smallest=MIN_FONT)


def mistakes(report: Report) -> list[str]:
    """A classifier's most frequent mistakes on the test set (the three largest confusions of report.errors); none
    for other tasks."""
    if report.task != "single_label":
        return []
    found = report.errors.pairs[:3]
    if not found:
        return ["No mistakes on the test set"]
    return ["Most frequent mistakes:", *(f"{p.true} taken for {p.predicted}: {p.count} time{'s' if p.count > 1 else ''}"
                                         for p in found)]


def confusions_beside_report(fig: Figure, report: Report, header: list[str], rows: list[list[str]],
                             title: str) -> None:
    """Many classes: the most frequent confusions as a table (a matrix of them is unreadable at slide size) beside
    the hardest classes."""
    left, right = CONTENT.split_x(0.5)
    pairs = [[p.true, p.predicted, str(p.count), f"{p.share:.0%}"] for p in report.errors.pairs]
    titled_table(fig, left, "Most frequent confusions", ["true class", "taken for", "n", "of class"], pairs)
    titled_table(fig, right, title, header, rows)


def titled_table(fig: Figure, box: Box, title: str, header: list[str], rows: list[list[str]]) -> Box:
    """A card over box holding a bold title and a table under it; returns the room left in the card below the
    table (its height negative when there is none)."""
    card(fig, box)
    inner = box.inset(0.012, 0.03)
    size = paragraphs(fig, Box(inner.x, inner.top - 0.08, inner.w, 0.08), [(title, {"weight": "bold"})], largest=18)
    heading = 1.6 * size * PX / (fig.get_figheight() * DPI)
    used = table(fig, Box(inner.x, inner.y, inner.w, inner.h - heading), header, rows, largest=18)
    return Box(inner.x, inner.y, inner.w, inner.h - heading - used - 0.03)


def report_table(run: Run) -> tuple[list[str], list[list[str]], str]:
    """The run's per-class (per-label) report, hardest first, or a regression's errors per range of the true value:
    header, rows and title, for the slide beside the test figure."""
    rows = run.test_report()
    if not rows:
        return [], [], ""
    if run.task == "regression":
        return (["true values", "n", "RMSE", "bias"],
                [[f"{r['low']:.3g} to {r['high']:.3g}", str(r["n"]), f"{r['rmse']:.3f}", f"{r['bias']:+.3f}"]
                 for r in rows], "Errors per fifth of the true values")
    scored = sorted((r for r in rows if r.get("support", 0) > 0), key=lambda r: r["f1"])[:8]
    noun = "labels" if run.task == "multi_label" else "classes"
    return (["label" if run.task == "multi_label" else "class", "precision", "recall", "F1", "n"],
            [[clip(str(r["label"]), 22), f"{r['precision']:.2f}", f"{r['recall']:.2f}", f"{r['f1']:.2f}",
              str(r["support"])] for r in scored], f"Hardest {noun} (lowest F1 first)")


def draw_conclusion(fig: Figure, report: Report, presenter: Presenter) -> None:
    v = report.verdict
    key = f"test_{v.metric}_mean"
    lower = "" if greater_is_better(v.metric) else " (lower is better)"
    left, right = CONTENT.split_x(0.52)
    card(fig, left)
    items: list[tuple[str, dict[str, Any]]] = [
        (f"Best on test {METRIC_TITLES[v.metric]}{lower}: {v.winner['model']} ({_metric(v.winner[key])})",
         {"weight": "bold"})]
    if v.runner_up is not None:
        items.append((f"Runner-up: {v.runner_up['model']} ({_metric(v.runner_up[key])})", {}))
        comparison = report.paired.of(v.runner_up["model"])
        if comparison.paired:
            items.append((paired_line(report.paired, comparison), {"scale": 0.8}))
    seeds = v.winner["seeds"]
    items.append((f"{seeds} seed{'s' if seeds > 1 else ''} per model" + (
        ": more seeds would show the seed-to-seed noise" if seeds == 1 else ""), {"scale": 0.9}))
    items.append((f"{presenter.shown_name} ({presenter.shown_number})",
                  {"scale": 0.8, "color": PLACEHOLDER if presenter.name is None else MUTED}))
    paragraphs(fig, left.inset(0.02, 0.04), items, largest=30, spacing=0.7)
    card(fig, right)
    inner = right.inset(0.02, 0.04)
    run = report.winner.best_run
    commands = ["# every number again, from the runs", "python scripts/compare.py",
                "python scripts/build_paper.py", "jupyter notebook notebooks/walkthrough.ipynb",
                "# retrain the winner, check its numbers",
                "python scripts/reproduce.py \\", *_path_lines(_shown_path(run.path)),
                "# predict with its weights",
                "python scripts/predict.py \\", f"  weights/{report.dataset}/{run.metrics['model']} inputs.csv"]
    paragraphs(fig, inner, [("Reproduce", {"weight": "bold", "family": "sans-serif", "scale": 1.3}),
                            *((c, {"family": "monospace", "color": MUTED if c.startswith("#") else CODE_INK})
                              for c in commands)], largest=18, smallest=MIN_FONT, spacing=0.45)


def _path_lines(path: str) -> list[str]:
    """A long run path on two indented lines, cut after its model's folder."""
    head, _, name = path.rpartition("/")
    return [f"  {head}/", f"    {name}"] if head and len(path) > 36 else [f"  {path}"]


def _shown_path(path: Path) -> str:
    """A run directory as a reader can type it: relative to here when it is under it, else from runs/ on."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        parts = path.parts
        return str(Path(*parts[parts.index("runs"):])) if "runs" in parts else str(Path(*parts[-3:]))
