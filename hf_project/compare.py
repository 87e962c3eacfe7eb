"""Side-by-side comparison of complete runs, read only from their run-directory files.

Runs that differ only by seed form one group, reported as mean +/- std over its seeds. The same rows feed
the terminal table, the CSV, the Markdown and the LaTeX (booktabs) table, so the formats never disagree.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hf_project import runs
from hf_project.config import config_from_dict
from hf_project.errors import UserError
from hf_project.metrics import greater_is_better

# Settings that do not change what a run computes, or that define the group itself.
NOT_GROUPING = {"seed", "runs_dir", "weights_dir", "cache_dir", "dataloader_num_workers", "tag"}
METRICS = ("accuracy", "macro_f1", "weighted_f1")
METRIC_TITLES = {"accuracy": "acc", "macro_f1": "macro-F1", "weighted_f1": "weighted-F1", "loss": "loss"}


@dataclass
class Run:
    path: Path
    metrics: dict[str, Any]
    manifest: dict[str, Any]
    config: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> Run:
        def read_json(name: str) -> dict[str, Any]:
            return json.loads((path / name).read_text())

        return cls(path, read_json("metrics.json"), read_json("manifest.json"),
                   yaml.safe_load((path / "config.yaml").read_text()))

    @property
    def group_key(self) -> tuple[str, str, str, str]:
        # Through the dataclasses, a setting added after a run was made takes its default, as it did then.
        try:
            full = config_from_dict(self.config).to_dict()
        except (UserError, TypeError):
            full = self.config
        settings = {k: v for k, v in full.items() if k not in NOT_GROUPING}
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]
        return self.metrics["dataset"], self.metrics["model"], self.config.get("tag") or "", digest

    def log_history(self) -> list[dict[str, Any]]:
        return json.loads((self.path / "log_history.json").read_text())


@dataclass
class Group:
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


def group_runs(selected: list[Run], allow_mixed_splits: bool = False) -> list[Group]:
    """Groups of runs that differ only by seed; one seed per group counted once (the newest run wins)."""
    by_dataset: dict[str, set[str]] = {}
    for run in selected:
        by_dataset.setdefault(run.metrics["dataset"], set()).add(run.manifest["split_hash"])
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


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def metric_columns(selection_metric: str) -> list[tuple[str, str]]:
    """(split, metric) pairs, the selection metric first."""
    order = [selection_metric] + [m for m in ("accuracy", "macro_f1") if m != selection_metric]
    return [("validation", m) for m in order] + [("test", m) for m in order]


def table_rows(groups: list[Group]) -> list[dict[str, Any]]:
    """One row per group: numbers only (means and stds); formatting is each writer's job."""
    rows = []
    for group in groups:
        run = group.first
        selection = run.metrics["selection_metric"]
        row: dict[str, Any] = {
            "dataset": run.metrics["dataset"], "model": group.label, "seeds": len(group.runs),
            "split_hash": run.manifest["split_hash"], "selection_metric": selection,
            "params_total": run.manifest["parameters"]["total"],
            "params_trainable": run.manifest["parameters"]["trainable"],
            "size_mb": run.manifest["model_size_mb"],
        }
        for split, metric in metric_columns(selection):
            row[f"{split}_{metric}_mean"], row[f"{split}_{metric}_std"] = mean_std(group.values(split, metric))
        row["best_epoch_mean"], row["best_epoch_std"] = mean_std(
            [r.metrics["validation"]["best_epoch"] for r in group.runs if r.metrics["validation"].get("best_epoch")]
        )
        for key, name in (("train_runtime_s", "train_time_s"), ("train_samples_per_second", "samples_per_s"),
                          ("peak_memory_mb", "peak_memory_mb")):
            row[f"{name}_mean"], row[f"{name}_std"] = mean_std(group.manifest_values(key))
        rows.append(row)
    mark_best(rows)
    return rows


def mark_best(rows: list[dict[str, Any]]) -> None:
    """`best`: the metric columns in which a row has the best mean within its dataset (highest; lowest for a loss).
    Tied rows are all marked."""
    for row in rows:
        row["best"] = []
    for dataset in {r["dataset"] for r in rows}:
        subset = [r for r in rows if r["dataset"] == dataset]
        for split, metric in metric_columns(subset[0]["selection_metric"]):
            key = f"{split}_{metric}_mean"
            scored = [r for r in subset if r[key] is not None]
            if not scored:
                continue
            top = (max if greater_is_better(metric) else min)(r[key] for r in scored)
            for r in scored:
                if r[key] == top:
                    r["best"].append(f"{split}_{metric}")


# ---- formatting: one cell function, three writers -------------------------------------------------------


def _columns(selection: str) -> list[tuple[str, str]]:
    """(row key prefix, title) of the displayed columns."""
    metric_cols = [(f"{s}_{m}", f"{'val' if s == 'validation' else 'test'} {METRIC_TITLES[m]}")
                   for s, m in metric_columns(selection)]
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
    return (f"{dataset}: split {hashes}; checkpoints selected on validation "
            f"{METRIC_TITLES[subset[0]['selection_metric']]}; best value of each metric marked")


def to_markdown(rows: list[dict[str, Any]], mark: str = "**") -> str:
    blocks = []
    for dataset, subset in _datasets(rows):
        columns = _columns(subset[0]["selection_metric"])
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
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(rows: list[dict[str, Any]]) -> str:
    blocks = []
    for dataset, subset in _datasets(rows):
        columns = _columns(subset[0]["selection_metric"])
        lines = [r"\begin{table}[t]", r"\centering", r"\small",
                 rf"\caption{{{latex_escape(_caption(dataset, subset))}}}",
                 rf"\label{{tab:{latex_escape(dataset)}}}",
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
    curves = {}
    for group in groups:
        for run in group.runs:
            history = run.log_history()
            points = [(e["step"], e["eval_loss"]) for e in history if "eval_loss" in e]
            curves.setdefault(group.label, []).append(points)
    plots.plot_validation_curves(curves, paths["loss_curves"])
    bars = {g.label: {m: g.values("test", m) for m in ("accuracy", "macro_f1")} for g in groups}
    plots.plot_metric_bars(bars, paths["test_bars"])
    return paths
