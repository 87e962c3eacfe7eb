"""Comparison tables of complete runs: terminal, CSV, Markdown and LaTeX (booktabs), and the comparison figures.

Runs that differ only by seed form one group, reported as mean +/- std over its seeds. The runs, groups and rows are
hf_project.report's (re-exported here); this module only formats them. The same rows feed every format, so the
formats never disagree, and the paper's results table is to_latex's. Beside each data set's table, a second one pairs
every model with the winner on the shared test examples (report.compare_with_winner: bootstrap intervals and the
paired test's p-value); the paper's paired table is paired_latex's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hf_project import runs
from hf_project.metrics import TABLE_METRICS, greater_is_better
from hf_project.report import (
    METRIC_TITLES,
    NOT_GROUPING,
    PROPORTIONS,
    Comparison,
    Group,
    PairedComparisons,
    Run,
    group_runs,
    mark_best,
    mean_std,
    metric_columns,
    paired_by_data_set,
    row_metric_columns,
    select_runs,
    table_rows,
    validation_curves,
)

__all__ = [
    "METRIC_TITLES", "NOT_GROUPING", "Group", "Run", "cell", "group_runs", "interval_text", "latex_escape",
    "mark_best", "mean_std", "metric_columns", "p_text", "paired_by_data_set", "paired_caption", "paired_latex",
    "paired_table", "select_runs", "stat_text", "table_rows", "to_latex", "to_markdown", "to_terminal",
    "write_outputs",
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


def _markdown_table(caption: str, header: list[str], cells: list[list[str]]) -> str:
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    lines = [caption, "",
             "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in cells]
    return "\n".join(lines)


def to_markdown(rows: list[dict[str, Any]], mark: str = "**", paired: list[PairedComparisons] | None = None) -> str:
    """One table per data set; with `paired`, each data set's table of paired comparisons with its winner after it."""
    by_dataset = {p.dataset: p for p in paired or []}
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
        blocks.append(_markdown_table(_caption(dataset, subset), [title for _, title in columns], cells))
        if dataset in by_dataset:
            header, table = paired_table(by_dataset[dataset])
            blocks.append(_markdown_table(paired_caption(by_dataset[dataset]), header, table))
    return "\n\n".join(blocks) + "\n"


def to_terminal(rows: list[dict[str, Any]], paired: list[PairedComparisons] | None = None) -> str:
    """The Markdown tables with `*` after the best values instead of bold markers."""
    return to_markdown(rows, mark="", paired=paired)


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  # metric titles (Spearman ρ, R²): pdflatex's utf8 input knows neither
                  "ρ": r"$\rho$", "²": r"\textsuperscript{2}",
                  # the paired tables' differences, minus signs, dashes and multiplication sign
                  "Δ": r"$\Delta$", "−": r"$-$", "—": "---", "×": r"$\times$",
                  # '< 0.0001' (a p-value): the default OT1 font encoding has no < or > in text
                  "<": r"$<$", ">": r"$>$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(rows: list[dict[str, Any]], metrics_only: bool = False, caption: str | None = None,
             label: str | None = None, placement: str = "t", paired: list[PairedComparisons] | None = None) -> str:
    """One booktabs table per data set. `caption` and `label`, LaTeX as given (not escaped), replace the ones made
    from the data set's name (the paper's results table); `metrics_only` keeps the model, seeds and metric columns.
    With `paired`, each data set's table of paired comparisons with its winner follows its table."""
    by_dataset = {p.dataset: p for p in paired or []}
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
        if dataset in by_dataset:
            blocks.append(paired_latex(by_dataset[dataset], placement=placement).rstrip("\n"))
    return "\n\n".join(blocks) + "\n"


def write_outputs(rows: list[dict[str, Any]], groups: list[Group], out_dir: str | Path,
                  paired: list[PairedComparisons] | None = None) -> dict[str, Path]:
    """comparison.csv / .md / .tex and the two figures, atomically, under out_dir; with `paired`, the paired
    comparisons with each data set's winner in every table (paired_csv_columns in the CSV)."""
    from hf_project import plots

    out = Path(out_dir)
    by_model = {(p.dataset, c.model): (p, c) for p in paired or [] for c in p.comparisons}
    csv_rows = [{**{k: v for k, v in r.items() if k != "best"}, "best": " ".join(r["best"]),
                 **(paired_csv_columns(*by_model[r["dataset"], r["model"]])
                    if (r["dataset"], r["model"]) in by_model else {})} for r in rows]
    fields = list(dict.fromkeys(k for r in csv_rows for k in r))  # data sets of other tasks have other columns
    csv_rows = [{k: r.get(k, "") for k in fields} for r in csv_rows]
    paths = {"csv": out / "comparison.csv", "markdown": out / "comparison.md", "latex": out / "comparison.tex",
             "loss_curves": out / "validation_loss.png", "test_bars": out / "test_metrics.png"}
    runs.write_csv(paths["csv"], csv_rows)
    runs.atomic_write_text(paths["markdown"], to_markdown(rows, paired=paired))
    runs.atomic_write_text(paths["latex"], to_latex(rows, paired=paired))
    plots.plot_validation_curves(validation_curves(groups), paths["loss_curves"])
    bars = {g.label: {m: g.values("test", m) for m in TABLE_METRICS[g.first.task]} for g in groups}
    plots.plot_metric_bars(bars, paths["test_bars"])
    return paths


# ---- the paired comparison with the winner: one more table per data set ------------------------------------------

MINUS, DASH = "−", "—"
TEST_TITLES = {"mcnemar": "McNemar p", "wilcoxon": "Wilcoxon p"}
TEST_RULES = {"single_label": "exact McNemar test on the test examples only one of the two models gets right",
              "multi_label": "exact McNemar test on the test examples whose whole label set only one of the two "
                             "models gets right",
              "regression": "Wilcoxon signed-rank test on the paired squared errors"}


def stat_text(metric: str, value: float, signed: bool = False) -> str:
    """A score or a difference as the paired tables show it: proportions (accuracy, F1) in points (x100, one
    decimal), other metrics with 3 decimals; `signed` puts + before a positive value; minus is U+2212."""
    spec = ("+" if signed else "") + (".1f" if metric in PROPORTIONS else ".3f" if abs(value) < 1000 else ".4g")
    value = value * 100 if metric in PROPORTIONS else value
    text = format(value, spec)
    if float(text) == 0:  # no "-0.0"
        text = format(0.0, spec)
    return text.replace("-", MINUS)


def interval_text(metric: str, value: float, interval: tuple[float, float], signed: bool = False) -> str:
    """'81.2 [77.0, 85.1]': a value and its 95% interval."""
    low, high = (stat_text(metric, v, signed) for v in interval)
    return f"{stat_text(metric, value, signed)} [{low}, {high}]"


def p_text(p: float) -> str:
    """A p-value with 3 significant digits ('0.00195', '1'); below 0.0001, '< 0.0001'."""
    return "< 0.0001" if p < 1e-4 else f"{p:.3g}"


def paired_table(paired: PairedComparisons) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the paired table: per model its own test scores with their intervals, then the difference
    from the winner with its interval and the paired test's p-value (combined over seeds); a model paired over several
    seeds is followed by one row per seed. The winner's differences are a dash."""
    metrics = paired.metrics
    header = ["model", "seeds", *(f"test {METRIC_TITLES[m]} [95% CI]" for m in metrics),
              *(f"Δ {METRIC_TITLES[m]} [95% CI]" for m in metrics), TEST_TITLES[paired.test]]
    rows = []
    for c in paired.comparisons:
        own = [interval_text(m, c.scores[m], c.intervals[m]) for m in metrics]
        if c.is_winner:
            vs = [DASH] * (len(metrics) + 1)
        elif not c.paired:
            vs = ["no common seed"] * len(metrics) + [DASH]
        else:
            vs = _paired_cells(metrics, c.combined)
        rows.append([c.model, str(len(c.seeds)), *own, *vs])
        if len(c.seeds) > 1 and c.paired:
            rows += [[f"seed {seed}", "", *[""] * len(metrics), *_paired_cells(metrics, result)]
                     for seed, result in zip(c.paired_seeds, c.per_seed, strict=True)]
    return header, rows


def _paired_cells(metrics: tuple[str, ...], result: Any) -> list[str]:
    return [*(interval_text(m, result.differences[m], result.intervals[m], signed=True) for m in metrics),
            p_text(result.p_value)]


def paired_caption(paired: PairedComparisons) -> str:
    """What the paired table holds and how to reproduce it, in plain words (escape it for LaTeX)."""
    points = any(m in PROPORTIONS for m in paired.metrics)
    several = any(len(c.paired_seeds) > 1 for c in paired.comparisons)
    return (f"{paired.dataset}: each model against {paired.winner} (the winner) on the same {paired.num_examples:,} "
            f"test examples (split {paired.split_hash}); Δ = model − {paired.winner}"
            + ("; scores and Δ of accuracy and F1 in points (×100)" if points else "")
            + f"; 95% CI: percentile intervals from {paired.samples:,} bootstrap resamples of the test examples "
            f"(bootstrap seed {paired.seed}); p: {TEST_RULES[paired.task]}"
            + ("; over several seeds, runs are paired by seed: Δ is the mean of the per-seed differences (each "
               "resample scores every seed) and p the largest per-seed p when every seed favours the same model, "
               "else 1" if several else ""))


def paired_latex(paired: PairedComparisons, caption: str | None = None, label: str | None = None,
                 placement: str = "t") -> str:
    """The paired table in booktabs; each interval goes on a line of its own under its value, so the table fits a
    page's width. `caption` and `label`, LaTeX as given, replace the ones made from the data set's name."""
    header, rows = paired_table(paired)
    lines = [rf"\begin{{table}}[{placement}]", r"\centering", r"\small", r"\setlength{\tabcolsep}{4pt}",
             rf"\caption{{{latex_escape(paired_caption(paired)) if caption is None else caption}}}",
             rf"\label{{{'tab:paired-' + latex_escape(paired.dataset) if label is None else label}}}",
             r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\toprule",
             " & ".join(latex_escape(title.replace(" [95% CI]", "")).replace(" p", " $p$") for title in header)
             + r" \\", r"\midrule"]
    for row in rows:
        split = [text.split(" [", 1) for text in row]
        first = [latex_escape(parts[0]) for parts in split]
        if not row[1]:  # a seed's row under its model's
            first[0] = r"\quad " + first[0]
        lines.append(" & ".join(first) + r" \\")
        if any(len(parts) > 1 for parts in split):
            lines.append(" & ".join(r"{\footnotesize " + latex_escape("[" + parts[1]) + "}" if len(parts) > 1 else ""
                                    for parts in split) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def paired_csv_columns(paired: PairedComparisons, c: Comparison) -> dict[str, Any]:
    """A row's paired numbers in comparison.csv: its own intervals, the winner it is compared with, the combined
    difference, interval and p-value, and, over several seeds, each seed's (columns seed_<seed>_...)."""
    out: dict[str, Any] = {}
    for m in paired.metrics:
        out[f"test_{m}_ci_low"], out[f"test_{m}_ci_high"] = c.intervals[m]
    out.update({"vs": paired.winner, "paired_seeds": " ".join(map(str, c.paired_seeds)),
                "paired_test": paired.test, "bootstrap_samples": paired.samples, "bootstrap_seed": paired.seed})
    results = [("", c.combined)] if c.combined else []
    if len(c.per_seed) > 1:
        results += [(f"seed_{s}_", r) for s, r in zip(c.paired_seeds, c.per_seed, strict=True)]
    for prefix, result in results:
        for m in paired.metrics:
            out[f"{prefix}delta_{m}"] = result.differences[m]
            out[f"{prefix}delta_{m}_ci_low"], out[f"{prefix}delta_{m}_ci_high"] = result.intervals[m]
        out.update({f"{prefix}p_value": result.p_value, f"{prefix}only_this_right": result.a_only,
                    f"{prefix}only_winner_right": result.b_only})
    return out
