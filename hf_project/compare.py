"""Side-by-side table of complete runs, read only from their run-directory files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hf_project import runs

COLUMNS = (
    ("model", "model"), ("seed", "seed"), ("params_total", "params"), ("params_trainable", "trainable"),
    ("size_mb", "MB"), ("val_selection", "val sel."), ("val_accuracy", "val acc"), ("val_macro_f1", "val F1"),
    ("test_accuracy", "test acc"), ("test_macro_f1", "test F1"), ("best_epoch", "best ep."),
    ("train_time_s", "train s"), ("train_samples_per_s", "samples/s"), ("peak_memory_mb", "peak MB"),
)


def run_row(run_dir: Path) -> dict[str, Any]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    val, test = metrics["validation"], metrics["test"]
    return {
        "dataset": metrics["dataset"], "model": metrics["model"], "seed": metrics["seed"],
        "split_hash": manifest["split_hash"], "run": str(run_dir),
        "params_total": manifest["parameters"]["total"], "params_trainable": manifest["parameters"]["trainable"],
        "size_mb": manifest["model_size_mb"], "selection_metric": metrics["selection_metric"],
        "val_selection": val.get(metrics["selection_metric"]),
        "val_accuracy": val.get("accuracy"), "val_macro_f1": val.get("macro_f1"),
        "test_accuracy": test["accuracy"], "test_macro_f1": test["macro_f1"], "best_epoch": val.get("best_epoch"),
        "train_time_s": manifest["train_runtime_s"], "train_samples_per_s": manifest["train_samples_per_second"],
        "peak_memory_mb": manifest["peak_memory_mb"],
    }


def latest_rows(runs_dir: str | Path = "runs", dataset: str | None = None) -> list[dict[str, Any]]:
    """The newest complete run per (dataset, model, seed)."""
    latest: dict[tuple, dict[str, Any]] = {}
    for run_dir in runs.find_runs(runs_dir):  # oldest first, so newer runs overwrite
        row = run_row(run_dir)
        if dataset is None or row["dataset"] == dataset:
            latest[(row["dataset"], row["model"], row["seed"])] = row
    return sorted(latest.values(), key=lambda r: (r["dataset"], -(r["val_selection"] or 0), r["model"]))


TWO_DECIMALS = {"size_mb", "best_epoch"}


def _fmt(value: Any, key: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if key in TWO_DECIMALS:
            return f"{value:.2f}"
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    if isinstance(value, int) and value >= 10_000:
        return f"{value / 1e6:.2f}M"
    return str(value)


def format_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table (also readable in a terminal), one block per dataset."""
    blocks = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        subset = [r for r in rows if r["dataset"] == dataset]
        cells = [[_fmt(r[key], key) for key, _ in COLUMNS] for r in subset]
        header = [title for _, title in COLUMNS]
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
        lines = [
            f"{dataset} (split {', '.join(sorted({r['split_hash'] for r in subset}))}; "
            f"selected on validation {subset[0]['selection_metric']})",
            "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
            "|" + "|".join("-" * (w + 2) for w in widths) + "|",
        ]
        lines += ["| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
