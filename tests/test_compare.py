"""compare: tables in every format carry the numbers of the runs' own files; seeds are aggregated correctly."""

from __future__ import annotations

import csv
import json
import shutil
import statistics

import pytest
from conftest import REPO_ROOT
from task_runs import (  # noqa: F401 (fixtures)
    HAND_SPLIT,
    multi_label_runs_fixture,
    regression_runs_fixture,
    write_hand_run,
    write_task_runs,
)

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
    from hf_project.metrics import ALL_METRIC_NAMES, CALIBRATION_METRIC_NAMES, TABLE_METRICS, TASK_METRICS, TASKS

    assert set(ALL_METRIC_NAMES) | {"loss", *CALIBRATION_METRIC_NAMES} == set(METRIC_TITLES)
    assert set(TABLE_METRICS) == set(TASKS)
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
    assert mine[0][:2] == ["model", "seeds"] and len(mine[0]) == 2 + 4 + ("test ECE" in mine[0])
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


# ---- how sure the comparison is: runs made by hand, example by example --------------------------------------------

NAMES = ["a", "b", "c"]
TRUTH = ["a"] * 10 + ["b"] * 10 + ["c"] * 10


def one_way(errors: int = 10) -> list[str]:
    """TRUTH with its first `errors` examples (all of class a) predicted as b."""
    return ["b"] * errors + TRUTH[errors:]


def compare_script(argv: list[str]) -> str:
    """scripts/compare.py as a user runs it; returns what it printed as the table."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("compare_script", REPO_ROOT / "scripts" / "compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def paired_of(runs_dir, **kwargs):
    from hf_project.report import paired_by_data_set

    groups = group_runs(select_runs(runs_dir))
    rows = table_rows(groups)
    return rows, paired_by_data_set(groups, rows, **kwargs)


def test_ten_disagreements_one_way_are_mcnemar_p_0_00195_in_every_table(tmp_path):
    write_hand_run(tmp_path, "minilm", 2023, TRUTH, TRUTH, NAMES)
    runs_dir = write_hand_run(tmp_path, "lstm", 2023, TRUTH, one_way(), NAMES)
    rows, paired = paired_of(runs_dir, samples=200)
    ((lstm, minilm),) = [p.comparisons for p in paired]
    assert paired[0].winner == "minilm" and minilm.is_winner and not minilm.paired
    assert (lstm.combined.a_only, lstm.combined.b_only) == (0, 10)
    assert lstm.combined.p_value == pytest.approx(0.001953125)
    assert lstm.advantage("accuracy")[0] == pytest.approx(1 / 3) and lstm.advantage("accuracy")[1][0] > 0
    paths = write_outputs(rows, group_runs(select_runs(runs_dir)), tmp_path / "out", paired)
    markdown, latex = paths["markdown"].read_text(), paths["latex"].read_text()
    assert markdown.count("0.00195") == 1 and "| McNemar p |" in markdown and "200 bootstrap resamples" in markdown
    assert "−33.3 [" in markdown and markdown.count(" — |") == 3  # the winner's differences and p: dashes
    assert "McNemar $p$" in latex and "0.00195" in latex and latex.isascii()
    with open(paths["csv"]) as f:
        written = {r["model"]: r for r in csv.DictReader(f)}
    assert float(written["lstm"]["p_value"]) == pytest.approx(0.001953125) and written["lstm"]["vs"] == "minilm"
    assert float(written["lstm"]["delta_accuracy"]) == pytest.approx(-1 / 3) and written["minilm"]["p_value"] == ""
    assert written["lstm"]["only_winner_right"] == "10" and written["lstm"]["bootstrap_samples"] == "200"


def test_identical_predictions_give_p_1_and_an_interval_of_0(tmp_path):
    write_hand_run(tmp_path, "minilm", 2023, TRUTH, one_way(4), NAMES)
    runs_dir = write_hand_run(tmp_path, "lstm", 2023, TRUTH, one_way(4), NAMES)
    rows, paired = paired_of(runs_dir)
    other = next(c for c in paired[0].comparisons if not c.is_winner)
    assert other.combined.p_value == 1.0
    assert other.combined.intervals == {"macro_f1": (0.0, 0.0), "accuracy": (0.0, 0.0)}
    assert "+0.0 [+0.0, +0.0]" in to_markdown(rows, paired=paired)


def test_two_reruns_give_byte_identical_tables(tmp_path):
    for seed in (2023, 2024):
        write_hand_run(tmp_path, "minilm", seed, TRUTH, one_way(seed - 2021), NAMES)
        write_hand_run(tmp_path, "lstm", seed, TRUTH, one_way(8) if seed == 2023 else ["c"] * 5 + TRUTH[5:], NAMES)
    runs_dir = str(tmp_path / "runs")
    outputs = []
    for out in ("first", "second"):
        printed = compare_script(["--runs_dir", runs_dir, "--out_dir", str(tmp_path / out), "--bootstrap_samples",
                                  "300"])
        outputs.append((printed, *((tmp_path / out / name).read_bytes()
                                   for name in ("comparison.csv", "comparison.md", "comparison.tex"))))
    assert outputs[0] == outputs[1]
    markdown = outputs[0][2].decode()
    assert "300 bootstrap resamples" in markdown and "(bootstrap seed 2023)" in markdown
    assert "| seed 2023 |" in markdown and "| seed 2024 |" in markdown  # the per-seed results under the combined
    other = compare_script(["--runs_dir", runs_dir, "--out_dir", str(tmp_path / "other"), "--bootstrap_samples",
                            "300", "--bootstrap_seed", "7"])
    assert "(bootstrap seed 7)" in other and other != outputs[0][0]


def test_mixed_splits_and_misaligned_test_rows_are_refused(tmp_path):
    from hf_project.report import compare_with_winner

    write_hand_run(tmp_path, "minilm", 2023, TRUTH, TRUTH, NAMES)
    runs_dir = write_hand_run(tmp_path, "lstm", 2023, TRUTH, one_way(), NAMES, split_hash="0000aaaa0000aaaa")
    groups = group_runs(select_runs(runs_dir), allow_mixed_splits=True)
    with pytest.raises(UserError, match="2 different splits.*a paired comparison needs one test set"):
        compare_with_winner(groups, table_rows(groups))
    assert paired_of_mixed(groups) == []  # compare --allow_mixed_splits: the table, without paired numbers
    moved = write_hand_run(tmp_path / "moved", "lstm", 2023, TRUTH, one_way(), NAMES,
                           source_rows=[100 + (i + 1) % 30 for i in range(30)])
    write_hand_run(tmp_path / "moved", "minilm", 2023, TRUTH, TRUTH, NAMES)
    groups = group_runs(select_runs(moved))
    with pytest.raises(UserError, match=f"same split {HAND_SPLIT}.*same test examples in the same order") as error:
        compare_with_winner(groups, table_rows(groups))
    assert "\n" not in str(error.value)


def paired_of_mixed(groups):
    from hf_project.report import paired_by_data_set

    return paired_by_data_set(groups, table_rows(groups), allow_mixed_splits=True)


def test_models_without_a_common_seed_are_not_paired(tmp_path):
    write_hand_run(tmp_path, "minilm", 2023, TRUTH, TRUTH, NAMES)
    runs_dir = write_hand_run(tmp_path, "lstm", 2024, TRUTH, one_way(), NAMES)
    rows, paired = paired_of(runs_dir, samples=50)
    lstm = paired[0].of("lstm")
    assert not lstm.paired and lstm.paired_seeds == () and lstm.intervals["accuracy"][1] < 1
    assert "no common seed" in to_markdown(rows, paired=paired)


def test_ece_column_only_when_the_runs_record_it(tmp_path):
    write_hand_run(tmp_path / "old", "minilm", 2023, TRUTH, TRUTH, NAMES)
    old = write_hand_run(tmp_path / "old", "lstm", 2023, TRUTH, one_way(), NAMES)
    assert "ECE" not in to_markdown(table_rows(group_runs(select_runs(old))))
    write_hand_run(tmp_path / "new", "minilm", 2023, TRUTH, TRUTH, NAMES, test_extra={"ece": 0.05, "brier": 0.1,
                                                                                     "nll": 0.2})
    new = write_hand_run(tmp_path / "new", "lstm", 2023, TRUTH, one_way(), NAMES, test_extra={"ece": 0.02})
    rows = table_rows(group_runs(select_runs(new)))
    assert [r["model"] for r in rows if "test_ece" in r["best"]] == ["lstm"]  # the lowest ECE is the best
    markdown = to_markdown(rows)
    assert "| test ECE " in markdown and "**0.0200**" in markdown and "lowest for ECE" in markdown
    assert "test ECE" in to_latex(rows, metrics_only=True)
    # runs before the metric beside runs with it: the column stays, "-" for the older runs
    mixed = write_hand_run(tmp_path / "new", "bert", 2023, TRUTH, one_way(3), NAMES)
    rows = table_rows(group_runs(select_runs(mixed)))
    assert next(r for r in rows if r["model"] == "bert")["test_ece_mean"] is None
    assert cell_of(rows, "bert", "test_ece") == "-"


def cell_of(rows, model, key):
    from hf_project.compare import cell

    return cell(next(r for r in rows if r["model"] == model), key)[0]


@pytest.mark.parametrize("task", ["multi_label", "regression"])
def test_paired_scores_are_the_runs_own_metrics(task, multi_label_runs, regression_runs):
    """The scores recomputed from each run's predictions are those of its metrics.json; the test is the task's."""
    from hf_project.report import build_report

    report = build_report(multi_label_runs if task == "multi_label" else regression_runs, bootstrap_samples=100)
    paired = report.paired
    assert paired.test == ("mcnemar" if task == "multi_label" else "wilcoxon") and paired.winner == "minilm"
    for comparison, row in zip(paired.comparisons, report.rows, strict=True):
        assert comparison.model == row["model"] and comparison.seeds == (2023, 2024)
        for metric in paired.metrics:
            assert comparison.scores[metric] == pytest.approx(row[f"test_{metric}_mean"])
            low, high = comparison.intervals[metric]
            assert low <= row[f"test_{metric}_mean"] <= high
    lstm = paired.of("lstm")
    assert lstm.paired_seeds == (2023, 2024) and len(lstm.per_seed) == 2
    gap, (low, high) = lstm.advantage(paired.metric)
    assert gap > 0 and low < high  # minilm is the better model: a higher micro-F1, a lower RMSE
    markdown = to_markdown(report.rows, paired=[paired])
    assert ("Wilcoxon p" if task == "regression" else "McNemar p") in markdown
