"""compare: tables in every format carry the numbers of the runs' own files; seeds are aggregated correctly."""

from __future__ import annotations

import csv
import json
import shutil
import statistics

import pytest
from task_runs import multi_label_runs_fixture, regression_runs_fixture, write_task_runs  # noqa: F401 (fixtures)

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
    from hf_project.compare import METRIC_TITLES, latex_escape
    from hf_project.metrics import ALL_METRIC_NAMES, TABLE_METRICS, TASK_METRICS, TASKS

    assert set(ALL_METRIC_NAMES) | {"loss"} == set(METRIC_TITLES) and set(TABLE_METRICS) == set(TASKS)
    assert all(set(TABLE_METRICS[task]) <= set(TASK_METRICS[task]) for task in TASKS)
    # pdflatex reads the titles of the paper's tables: nothing outside ASCII may reach it unescaped
    assert all(latex_escape(title).isascii() for title in METRIC_TITLES.values())


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
    assert report.task == "single_label" and all(r.task == "single_label" for g in report.groups for r in g.runs)
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


# ---- multi-label and regression runs (tests/task_runs.py writes their files) --------------------------------------


def best_of(rows: list[dict], column: str, lowest: bool) -> dict:
    return (min if lowest else max)(rows, key=lambda r: r[f"{column}_mean"])


def test_regression_marks_the_lowest_rmse_and_the_highest_pearson(regression_runs):
    rows = table_rows(group_runs(select_runs(regression_runs)))
    assert {r["task"] for r in rows} == {"regression"} and {r["selection_metric"] for r in rows} == {"rmse"}
    for split in ("validation", "test"):
        lowest, highest = best_of(rows, f"{split}_rmse", lowest=True), best_of(rows, f"{split}_pearson", lowest=False)
        assert [r["model"] for r in rows if f"{split}_rmse" in r["best"]] == [lowest["model"]] == ["minilm"]
        assert [r["model"] for r in rows if f"{split}_pearson" in r["best"]] == [highest["model"]]
    markdown = to_markdown(rows)
    assert "| val RMSE" in markdown and "test Pearson r" in markdown and "lowest for RMSE" in markdown
    assert "acc" not in markdown and "F1" not in markdown
    latex = to_latex(rows)
    assert "test Pearson r" in latex and r"\textbf{" in latex and latex.isascii()


def test_regression_verdict_and_best_run_prefer_the_lowest_rmse(regression_runs):
    from hf_project.report import build_report

    report = build_report(regression_runs)
    assert report.task == "regression" and report.table_metrics == ("rmse", "pearson")
    lowest = min(report.rows, key=lambda r: r["test_rmse_mean"])
    assert report.verdict.winner is lowest and report.verdict.lower_is_better and report.winner.label == "minilm"
    highest = max(r["test_rmse_mean"] for r in report.rows)
    assert report.verdict.margin == pytest.approx(highest - lowest["test_rmse_mean"])
    for group in report.groups:  # the checkpoint figures show: the seed with the lowest validation RMSE
        assert group.best_run.metrics["validation"]["rmse"] == min(r.metrics["validation"]["rmse"] for r in group.runs)
    run = report.reference
    assert run.confusion_matrix() is None and run.test_figure.name == runs.SCATTER_FIGURE
    assert run.target_statistics()["n"] == {"train": 160.0, "validation": 20.0, "test": 20.0}
    assert [row["bin"] for row in run.test_report()] == [1, 2, 3, 4, 5]
    assert "class weights" not in run.hyperparameters() and run.hyperparameters()["standardised targets"] == "yes"
    with pytest.raises(ValueError, match="no classes"):
        run.class_counts()


def test_multi_label_marks_the_highest_f1_and_the_lowest_hamming_loss(multi_label_runs, tmp_path):
    rows = table_rows(group_runs(select_runs(multi_label_runs)))
    for column in ("validation_micro_f1", "test_micro_f1", "test_macro_f1"):
        assert [r["model"] for r in rows if column in r["best"]] == [best_of(rows, column, lowest=False)["model"]]
    assert "micro-F1" in to_markdown(rows) and "acc" not in to_markdown(rows)
    by_hamming = table_rows(group_runs(select_runs(write_task_runs(tmp_path, "multi_label", selection="hamming_loss",
                                                                   figures=False))))
    assert by_hamming[0]["selection_metric"] == "hamming_loss"
    for split in ("validation", "test"):
        lowest = best_of(by_hamming, f"{split}_hamming_loss", lowest=True)
        assert [r["model"] for r in by_hamming if f"{split}_hamming_loss" in r["best"]] == [lowest["model"]]
    assert "lowest for Hamming loss" in to_markdown(by_hamming)


def test_multi_label_runs_read_as_labels(multi_label_runs):
    from hf_project.report import build_report

    report = build_report(multi_label_runs)
    run = report.winner.best_run
    labels, matrices = run.confusion_matrix()
    assert labels == run.manifest["label_names"] and all(len(m) == 2 and len(m[0]) == 2 for m in matrices)
    assert run.test_figure.name == runs.PER_LABEL_FIGURE and run.test_figure.is_file()
    assert report.thresholds == ([0.4, 0.45], True) and run.hyperparameters()["threshold"] == "tuned"
    assert [c["label"] for c in run.class_counts()] == labels


def test_a_data_set_of_mixed_tasks_is_refused(tmp_path):
    runs_dir = write_task_runs(tmp_path / "a", "multi_label", dataset="mixed", figures=False)
    regression = write_task_runs(tmp_path / "b", "regression", dataset="mixed", figures=False)
    shutil.copytree(regression / "mixed" / "lstm", runs_dir / "mixed" / "lstm-regression")
    with pytest.raises(UserError, match=r"runs on mixed mix tasks \(multi_label, regression\).*--model/--tag"):
        group_runs(select_runs(runs_dir))
    assert len(group_runs(select_runs(runs_dir, models=["minilm"]))) == 1  # one task: fine


def test_write_outputs_plots_the_tasks_metrics(regression_runs, tmp_path, monkeypatch):
    from hf_project import plots

    drawn = {}
    monkeypatch.setattr(plots, "plot_metric_bars", lambda values, path: drawn.update(values))
    groups = group_runs(select_runs(regression_runs))
    paths = write_outputs(table_rows(groups), groups, tmp_path)
    assert {m for per_model in drawn.values() for m in per_model} == {"rmse", "pearson"}
    with open(paths["csv"]) as f:
        assert {r["task"] for r in csv.DictReader(f)} == {"regression"}
