"""compare: tables in every format carry the numbers of the runs' own files; seeds are aggregated correctly."""

from __future__ import annotations

import csv
import json
import shutil
import statistics

import pytest

from hf_project import runs
from hf_project.compare import group_runs, select_runs, table_rows, to_latex, to_markdown, write_outputs
from hf_project.config import parse_args
from hf_project.errors import UserError
from hf_project.training import run_experiment

TINY = ["--num_train_epochs", "2", "--per_device_train_batch_size", "16", "--max_length", "32",
        "--lstm_embedding_dim", "16", "--lstm_hidden_size", "16", "--logging_steps", "2"]


@pytest.fixture(scope="module")
def runs_dir(fortunes_csv, tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    base = ["--dataset", str(fortunes_csv), *TINY, "--runs_dir", str(root / "runs"), "--weights_dir", str(root / "w")]
    run_experiment(parse_args([*base, "--model", f"lstm,{tiny_bert}", "--seeds", "2023,2024,2025"]))
    return root / "runs"


def metrics_of(runs_dir, model: str) -> list[dict]:
    return [json.loads((p / "metrics.json").read_text()) for p in runs.find_runs(runs_dir) if p.parent.name == model]


def test_seeds_share_one_split_and_are_aggregated(runs_dir, tiny_bert):
    hashes = {json.loads((p / "split.json").read_text())["hash"] for p in runs.find_runs(runs_dir)}
    assert len(hashes) == 1 and len(runs.find_runs(runs_dir)) == 6
    rows = {r["model"]: r for r in table_rows(group_runs(select_runs(runs_dir)))}
    assert set(rows) == {"lstm", tiny_bert.name} and rows["lstm"]["seeds"] == 3
    for model, row in rows.items():
        for split in ("validation", "test"):
            values = [m[split]["macro_f1"] for m in metrics_of(runs_dir, model)]
            assert row[f"{split}_macro_f1_mean"] == pytest.approx(statistics.mean(values))
            assert row[f"{split}_macro_f1_std"] == pytest.approx(statistics.stdev(values))


def test_every_format_carries_the_run_numbers(runs_dir, tmp_path):
    selected = [r for r in select_runs(runs_dir, models=["lstm"]) if r.metrics["seed"] == 2024]
    groups = group_runs(selected)
    rows = table_rows(groups)
    paths = write_outputs(rows, groups, tmp_path)
    (metrics,) = [m for m in metrics_of(runs_dir, "lstm") if m["seed"] == 2024]
    with open(paths["csv"]) as f:
        (written,) = list(csv.DictReader(f))
    markdown, latex = paths["markdown"].read_text(), paths["latex"].read_text()
    assert markdown == to_markdown(rows) and latex == to_latex(rows)
    for split in ("validation", "test"):
        for metric in ("accuracy", "macro_f1"):
            value = metrics[split][metric]
            assert float(written[f"{split}_{metric}_mean"]) == value
            assert f"{value:.4f}" in markdown and f"{value:.4f}" in latex
    assert paths["loss_curves"].stat().st_size > 0 and paths["test_bars"].stat().st_size > 0


def test_best_value_marked_in_each_metric_column(runs_dir):
    rows = table_rows(group_runs(select_runs(runs_dir)))
    for column in ("validation_macro_f1", "test_accuracy"):
        best = max(rows, key=lambda r: r[f"{column}_mean"])
        assert column in best["best"]
        assert sum(column in r["best"] for r in rows) >= 1
    markdown, latex = to_markdown(rows), to_latex(rows)
    assert "**" in markdown and r"\textbf{" in latex and r"\toprule" in latex and r"$\pm$" in latex


def test_incomplete_runs_are_ignored(runs_dir, tmp_path):
    copy = tmp_path / "runs"
    shutil.copytree(runs_dir, copy)
    complete = runs.find_runs(copy)
    runs.set_status(complete[0], "running")
    runs.set_status(complete[1], "failed")
    (complete[2] / "status").unlink()
    assert len(select_runs(copy)) == len(complete) - 3


def test_different_splits_are_refused_unless_asked(runs_dir, fortunes_csv, tmp_path):
    copy = tmp_path / "runs"
    shutil.copytree(runs_dir, copy)
    run_experiment(parse_args(["--dataset", str(fortunes_csv), "--model", "lstm", *TINY, "--split_seed", "5",
                               "--runs_dir", str(copy), "--weights_dir", str(tmp_path / "w")]))
    with pytest.raises(UserError, match="different splits"):
        group_runs(select_runs(copy))
    assert len(group_runs(select_runs(copy), allow_mixed_splits=True)) == 3


def test_tag_filter(runs_dir, fortunes_csv, tmp_path):
    copy = tmp_path / "runs"
    shutil.copytree(runs_dir, copy)
    out = ["--runs_dir", str(copy), "--weights_dir", str(tmp_path / "w")]
    run_experiment(parse_args(["--dataset", str(fortunes_csv), "--model", "lstm", *TINY, "--tag", "wide",
                               "--lstm_hidden_size", "24", *out]))
    assert [r.config["tag"] for r in select_runs(copy, tag="wide")] == ["wide"]
    labels = [g.label for g in group_runs(select_runs(copy))]
    assert "lstm [wide]" in labels and "lstm" in labels


def test_metric_titles_cover_the_shared_metric_names():
    from hf_project.compare import METRIC_TITLES
    from hf_project.metrics import METRIC_NAMES
    from hf_project.report import TABLE_METRICS

    assert set(METRIC_NAMES) <= set(METRIC_TITLES) and set(TABLE_METRICS) <= set(METRIC_NAMES)


def test_metrics_only_latex_shows_the_full_tables_cells(runs_dir):
    """The paper's results table is to_latex with fewer columns: its cells are those of comparison.tex."""
    rows = table_rows(group_runs(select_runs(runs_dir)))
    short = to_latex(rows, metrics_only=True, caption="Results", label="tab:results", placement="tbp")
    assert short.startswith("\\begin{table}[tbp]") and "\\caption{Results}\n\\label{tab:results}\n" in short

    def cells(text: str) -> list[list[str]]:
        body = text.split("\\toprule\n")[1].split("\n\\bottomrule")[0].replace("\\midrule\n", "")
        return [line.removesuffix(" \\\\").split(" & ") for line in body.splitlines()]

    full, mine = cells(to_latex(rows)), cells(short)
    assert mine[0][:2] == ["model", "seeds"] and len(mine[0]) == 2 + 4
    keep = [full[0].index(title) for title in mine[0]]
    assert [[line[i] for i in keep] for line in full] == mine


def test_report_ranks_once_for_every_renderer(runs_dir):
    from hf_project.report import build_report

    report = build_report(runs_dir)
    assert report.dataset == "sample" and report.modality == "text" and report.num_runs == 6
    assert report.rows == table_rows(report.groups) and report.seeds == [2023, 2024, 2025]
    metric = report.selection_metric
    best = max(report.rows, key=lambda r: r[f"test_{metric}_mean"])
    assert report.verdict.winner is best and report.winner.label == best["model"]
    others = [r for r in report.rows if r is not best]
    assert report.verdict.margin == pytest.approx(best[f"test_{metric}_mean"] - others[0][f"test_{metric}_mean"])
    chosen = report.winner.best_run
    assert chosen.metrics["validation"][metric] == max(r.metrics["validation"][metric] for r in report.winner.runs)
    with pytest.raises(UserError, match="no complete runs on nowhere"):
        build_report(runs_dir, dataset="nowhere")
