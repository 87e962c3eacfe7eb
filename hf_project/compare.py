"""Comparison tables of complete runs: terminal, CSV, Markdown and LaTeX (booktabs), and the comparison figures.

Runs that differ only by seed form one group, reported as mean +/- std over its seeds. The runs, groups and rows are
hf_project.report's (re-exported here); this module only formats them. The same rows feed every format, so the
formats never disagree, and the paper's results table is to_latex's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hf_project import runs
from hf_project.metrics import TABLE_METRICS, greater_is_better
from hf_project.report import (
    METRIC_TITLES,
    NOT_GROUPING,
    Group,
    Run,
    group_runs,
    mark_best,
    mean_std,
    metric_columns,
    row_metric_columns,
    select_runs,
    table_rows,
    validation_curves,
)

__all__ = [
    "METRIC_TITLES", "NOT_GROUPING", "Group", "Run", "cell", "group_runs", "latex_escape", "mark_best", "mean_std",
    "metric_columns", "select_runs", "table_rows", "to_latex", "to_markdown", "to_terminal", "write_outputs",
]


# ---- formatting: one cell function, three writers -------------------------------------------------------


def _columns(row: dict[str, Any], metrics_only: bool = False) -> list[tuple[str, str]]:
    """(row key prefix, title) of the columns displayed for the rows of `row`'s data set; with `metrics_only`, the
    model, seeds and metrics."""
    metric_cols = [(f"{s}_{m}", f"{'val' if s == 'validation' else 'test'} {METRIC_TITLES[m]}")
                   for s, m in row_metric_columns(row)]
    if metrics_only:
        return [("model", "model"), ("seeds", "seeds"), *metric_cols]
    return [("model", "model"), ("seeds", "seeds"), ("params_total", "params"), ("params_trainable", "trainable"),
            ("size_mb", "size MB"), *metric_cols, ("best_epoch", "epochs to best"),
            ("train_time_s", "train s"), ("samples_per_s", "train samples/s"), ("peak_memory_mb", "peak MB")]


def _number(value: float, key: str) -> str:
    if key.startswith(("validation_", "test_")):
        return f"{value:.4f}"
    if key == "best_epoch":
        return f"{value:.2f}"
    return f"{value:.1f}"


def cell(row: dict[str, Any], key: str) -> tuple[str, bool]:
    """(text, is best) of one cell: mean +/- std for groups of several seeds."""
    if key in ("model", "seeds", "size_mb", "params_total", "params_trainable"):
        value = row[key]
        if key.startswith("params"):
            return f"{value / 1e6:.2f}M", False
        return (f"{value:.2f}" if key == "size_mb" else str(value)), False
    mean, std = row[f"{key}_mean"], row[f"{key}_std"]
    if mean is None:
        return "-", False
    text = _number(mean, key)
    if row["seeds"] > 1:
        text += f" ± {_number(std, key)}"
    return text, key in row["best"]


def _datasets(rows: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    names = list(dict.fromkeys(r["dataset"] for r in rows))
    return [(d, [r for r in rows if r["dataset"] == d]) for d in names]


def _caption(dataset: str, subset: list[dict[str, Any]]) -> str:
    hashes = ", ".join(sorted({r["split_hash"] for r in subset}))
    lowest = list(dict.fromkeys(METRIC_TITLES[m] for _, m in row_metric_columns(subset[0]) if not greater_is_better(m)))
    return (f"{dataset}: split {hashes}; checkpoints selected on validation "
            f"{METRIC_TITLES[subset[0]['selection_metric']]}; best value of each metric marked"
            + (f" (lowest for {', '.join(lowest)})" if lowest else ""))


def to_markdown(rows: list[dict[str, Any]], mark: str = "**") -> str:
    blocks = []
    for dataset, subset in _datasets(rows):
        columns = _columns(subset[0])
        cells = []
        for row in subset:
            line = []
            for key, _ in columns:
                text, best = cell(row, key)
                line.append(f"{mark}{text}{mark}" if best and mark else (f"{text} *" if best else text))
            cells.append(line)
        header = [title for _, title in columns]
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
        lines = [_caption(dataset, subset), "",
                 "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
                 "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        lines += ["| " + " | ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in cells]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def to_terminal(rows: list[dict[str, Any]]) -> str:
    """The Markdown table with `*` after the best values instead of bold markers."""
    return to_markdown(rows, mark="")


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  # metric titles (Spearman ρ, R²): pdflatex's utf8 input knows neither
                  "ρ": r"$\rho$", "²": r"\textsuperscript{2}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(rows: list[dict[str, Any]], metrics_only: bool = False, caption: str | None = None,
             label: str | None = None, placement: str = "t") -> str:
    """One booktabs table per data set. `caption` and `label`, LaTeX as given (not escaped), replace the ones made
    from the data set's name (the paper's results table); `metrics_only` keeps the model, seeds and metric columns."""
    blocks = []
    for dataset, subset in _datasets(rows):
        columns = _columns(subset[0], metrics_only)
        lines = [rf"\begin{{table}}[{placement}]", r"\centering", r"\small",
                 rf"\caption{{{latex_escape(_caption(dataset, subset)) if caption is None else caption}}}",
                 rf"\label{{{'tab:' + latex_escape(dataset) if label is None else label}}}",
                 r"\begin{tabular}{l" + "r" * (len(columns) - 1) + "}", r"\toprule",
                 " & ".join(latex_escape(title) for _, title in columns) + r" \\", r"\midrule"]
        for row in subset:
            out = []
            for key, _ in columns:
                text, best = cell(row, key)
                text = latex_escape(text).replace("±", r"$\pm$")
                out.append(rf"\textbf{{{text}}}" if best else text)
            lines.append(" & ".join(out) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def write_outputs(rows: list[dict[str, Any]], groups: list[Group], out_dir: str | Path) -> dict[str, Path]:
    """comparison.csv / .md / .tex and the two figures, atomically, under out_dir."""
    from hf_project import plots

    out = Path(out_dir)
    csv_rows = [{**{k: v for k, v in r.items() if k != "best"}, "best": " ".join(r["best"])} for r in rows]
    paths = {"csv": out / "comparison.csv", "markdown": out / "comparison.md", "latex": out / "comparison.tex",
             "loss_curves": out / "validation_loss.png", "test_bars": out / "test_metrics.png"}
    runs.write_csv(paths["csv"], csv_rows)
    runs.atomic_write_text(paths["markdown"], to_markdown(rows))
    runs.atomic_write_text(paths["latex"], to_latex(rows))
    plots.plot_validation_curves(validation_curves(groups), paths["loss_curves"])
    bars = {g.label: {m: g.values("test", m) for m in TABLE_METRICS[g.first.task]} for g in groups}
    plots.plot_metric_bars(bars, paths["test_bars"])
    return paths
