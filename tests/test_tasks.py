"""Multi-label classification and regression (--task): the run contract, inference, resume, search and compare for
each, the losses and metrics they use, the iterative stratification of multi-label splits, and bad input."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import fortune_rows, write_csv
from test_cli import TINY
from test_inference import make_runs
from test_resume import EARLY_STOP, assert_same_run, eval_steps, interrupted, reference

from hf_project import cli, resume, runs
from hf_project.config import parse_args
from hf_project.data import prepare_data
from hf_project.data.splits import make_split
from hf_project.inference import Predictor, run_test_examples
from hf_project.metrics import calibration_scores, multi_label_scores, regression_scores
from hf_project.modalities.files import label_tensor
from hf_project.report import build_report
from hf_project.search import parse_search_args, run_search
from hf_project.tasks import LABEL_SET_SEPARATOR, MultiLabel, Regression

# ---- data: real cookies with derived labels -------------------------------------------------------------------


def multi_label_rows() -> list[dict[str, str]]:
    """Each cookie's category, plus `long` (over 150 characters) and `question` (it asks one): a label set per text."""
    return [{"text": r["text"], "tags": ";".join([r["label"]] + (["long"] if len(r["text"]) > 150 else [])
                                                 + (["question"] if "?" in r["text"] else []))}
            for r in fortune_rows()]


def regression_rows() -> list[dict[str, str]]:
    """The base-10 logarithm of each cookie's number of words, as a target to predict from its text."""
    return [{"text": r["text"], "score": round(math.log10(len(r["text"].split()) + 1), 4)} for r in fortune_rows()]


@pytest.fixture(scope="module")
def multi_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("multi") / "tags.csv", multi_label_rows())


@pytest.fixture(scope="module")
def reg_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("regression") / "words.csv", regression_rows())


MULTI = ["--label_column", "tags", "--label_delimiter", ";"]
REGRESSION = ["--label_column", "score", "--task", "regression"]


@pytest.fixture(scope="module")
def multi_runs(multi_csv, tiny_bert, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("multi-runs")
    # pos_weight and a faster LSTM: else tiny models stay near the label frequencies (all below 0.5, the heads start
    # there) and predict no label at all
    return make_runs(root, ["--dataset", str(multi_csv), "--model", f"{tiny_bert},lstm", *MULTI, *TINY,
                            "--class_weights", "--lstm_learning_rate", "0.01"])


@pytest.fixture(scope="module")
def reg_runs(reg_csv, tiny_bert, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("regression-runs")
    return make_runs(root, ["--dataset", str(reg_csv), "--model", f"{tiny_bert},lstm", *REGRESSION, *TINY,
                            "--lstm_learning_rate", "0.01"])


def rows_of(run_dir: Path, name: str = runs.PREDICTIONS_FILE) -> list[dict[str, str]]:
    with open(run_dir / name, newline="") as f:
        return list(csv.DictReader(f))


def read(run_dir: Path, name: str) -> dict:
    return json.loads((run_dir / name).read_text())


COMMON_FILES = (runs.STATUS_FILE, runs.CONFIG_FILE, runs.MANIFEST_FILE, runs.SPLIT_FILE, runs.CLASS_BALANCE_FILE,
                runs.LOG_HISTORY_FILE, runs.METRICS_FILE, runs.PREDICTIONS_FILE, runs.REPORT_FILE,
                f"{runs.FIGURES_DIR}/{runs.LOSS_FIGURE}", f"{runs.FIGURES_DIR}/{runs.SAMPLE_INPUTS_FIGURE}",
                "model/config.json", "model/model.safetensors", "model/tokenizer.json")


def check_contract(run_dir: Path, task: str, figure: str) -> dict:
    for name in (*COMMON_FILES, f"{runs.FIGURES_DIR}/{figure}"):
        assert (run_dir / name).is_file() and (run_dir / name).stat().st_size > 0, f"{run_dir}/{name}"
    assert runs.read_status(run_dir) == runs.STATUS_COMPLETE and not (run_dir / runs.CHECKPOINTS_DIR).exists()
    metrics = read(run_dir, runs.METRICS_FILE)
    assert metrics["task"] == task
    config = yaml.safe_load((run_dir / runs.CONFIG_FILE).read_text())
    assert config["task"] == task and config["metric_for_best_model"] == metrics["selection_metric"]
    assert read(run_dir, runs.SPLIT_FILE)["task"] == task  # part of the split hash: labels depend on the task
    split = read(run_dir, runs.SPLIT_FILE)
    assert [int(r["source_row"]) for r in rows_of(run_dir)] == split["test"]["indices"]
    return metrics


# ---- multi-label -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["tiny-bert", "lstm"])
def test_multi_label_run_honours_the_contract(multi_runs, model):
    run_dir = next(p for name, p in multi_runs.items() if name.startswith(model))
    metrics = check_contract(run_dir, "multi_label", runs.PER_LABEL_FIGURE)
    assert not (run_dir / runs.FIGURES_DIR / runs.CONFUSION_FIGURE).exists()
    assert metrics["selection_metric"] == "micro_f1" and metrics["threshold"] == {"value": 0.5,
                                                                                  "tuned_on_validation": False}
    labels = read(run_dir, runs.MANIFEST_FILE)["label_names"]
    assert labels == ["food", "law", "long", "question", "startrek"]
    # the scores recomputed from the predictions file: label sets and the threshold on the stored probabilities
    rows = rows_of(run_dir)
    truth = np.array([[name in r["label"].split(LABEL_SET_SEPARATOR) for name in labels] for r in rows], dtype=int)
    probs = np.array([[float(r[f"p_{name}"]) for name in labels] for r in rows])
    predicted = np.array([[name in r["predicted"].split(LABEL_SET_SEPARATOR) for name in labels] for r in rows])
    np.testing.assert_array_equal(predicted, probs >= 0.5)
    assert metrics["test"] == pytest.approx({**multi_label_scores(truth, predicted), "loss": metrics["test"]["loss"],
                                             **calibration_scores(truth, probs, "multi_label"),
                                             "num_examples": len(rows)}, abs=1e-6)
    assert (run_dir / runs.FIGURES_DIR / runs.RELIABILITY_FIGURE).is_file()
    assert [r["correct"] == "True" for r in rows] == [bool((t == p).all()) for t, p in zip(truth, predicted,
                                                                                          strict=True)]
    # class_balance.csv counts the rows carrying each label; test's column agrees with the predictions file
    balance = {r["label"]: r for r in rows_of(run_dir, runs.CLASS_BALANCE_FILE)}
    assert [int(balance[name]["test"]) for name in labels] == truth.sum(axis=0).tolist()
    confusion = read(run_dir, runs.CONFUSION_FILE)
    assert confusion["kind"] == "per_label" and np.asarray(confusion["matrix"]).shape == (len(labels), 2, 2)
    model_config = read(run_dir, "model/config.json")
    assert model_config["problem_type"] == "multi_label_classification" and model_config["label_threshold"] == 0.5
    # every label's validation share is near the carve's 10% (iterative stratification)
    assert all(abs(int(r["validation"]) - 0.1 * (int(r["train"]) + int(r["validation"]))) <= 1.5
               for r in balance.values())


@pytest.mark.parametrize("model", ["tiny-bert", "lstm"])
def test_multi_label_predictor_equals_the_predictions_file(multi_runs, model):
    run_dir = next(p for name, p in multi_runs.items() if name.startswith(model))
    predictor = Predictor.load(run_dir)
    assert isinstance(predictor.task, MultiLabel)
    inputs, rows = run_test_examples(run_dir)
    predictions = predictor.predict(inputs, batch_size=5)
    names = predictor.label_names
    np.testing.assert_allclose([[p.probabilities[n] for n in names] for p in predictions],
                               [[float(r[f"p_{n}"]) for n in names] for r in rows], atol=1e-5)
    assert [p.row()["predicted"] for p in predictions] == [r["predicted"] for r in rows]
    assert [p.labels for p in predictions] == [[x for x in r["predicted"].split("|") if x] for r in rows]


def test_tuned_threshold_is_chosen_on_validation_and_saved_with_the_model(multi_csv, tmp_path):
    run_dir = make_runs(tmp_path, ["--dataset", str(multi_csv), "--model", "lstm", *MULTI, *TINY,
                                   "--tune_threshold", "--lstm_learning_rate", "0.01"])["lstm"]
    metrics = read(run_dir, runs.METRICS_FILE)
    threshold = metrics["threshold"]["value"]
    assert metrics["threshold"]["tuned_on_validation"] and 0.05 <= threshold <= 0.95
    assert read(run_dir, "model/config.json")["label_threshold"] == threshold
    rows = rows_of(run_dir)
    names = read(run_dir, runs.MANIFEST_FILE)["label_names"]
    for r in rows:  # the test predictions use the tuned threshold
        assert r["predicted"] == "|".join(n for n in names if float(r[f"p_{n}"]) >= threshold)
    assert Predictor.load(run_dir).task.threshold == threshold


def test_label_lists_are_read_as_multi_label_without_flags(tmp_path):
    rows = multi_label_rows()
    path = tmp_path / "tags.jsonl"
    path.write_text("\n".join(json.dumps({"text": r["text"], "label": r["tags"].split(";")}) for r in rows))
    data = prepare_data(parse_args(["--dataset", str(path)]).data, 2023)
    assert data.task == "multi_label" and data.label_names == ["food", "law", "long", "question", "startrek"]
    first = data.splits["train"][0]
    assert sorted(first["label"]) in ([0.0] * 4 + [1.0], [0.0] * 3 + [1.0] * 2, [0.0] * 2 + [1.0] * 3)


def test_iterative_stratification_splits_every_label_near_the_fraction():
    rng = np.random.default_rng(0)
    sets = [tuple(sorted({f"t{k}" for k in rng.choice(12, size=rng.integers(1, 4), p=np.arange(12, 0, -1) / 78)}))
            for _ in range(2000)]
    split = make_split({"train": len(sets)}, sets, 7, 0.2, 0.25, "fp")
    again = make_split({"train": len(sets)}, sets, 7, 0.2, 0.25, "fp")
    assert split == again  # seeded
    pool = split["train"]["indices"] + split["validation"]["indices"]
    carved = set(split["validation"]["indices"])
    # each label exactly as far as its count allows; the rows overall only near the fraction (a row of several labels
    # counts for each of them)
    for label in {t for s in sets for t in s}:
        members = [i for i in pool if label in sets[i]]
        assert abs(sum(i in carved for i in members) - 0.25 * len(members)) <= 1, label
    assert abs(len(carved) - 0.25 * len(pool)) <= 0.05 * len(pool)
    plain = make_split({"train": len(sets)}, None, 7, 0.2, 0.25, "fp")
    assert plain["test"] == split["test"]  # the test tail does not depend on the labels


def test_pos_weight_and_the_multi_label_loss():
    task = MultiLabel()
    train = [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]
    assert task.loss_weights(train, 2) == [1 / 3, 3.0]
    logits, labels = torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 0.0]])
    weight = torch.tensor([1 / 3, 3.0])
    expected = torch.nn.BCEWithLogitsLoss(pos_weight=weight)(logits, labels)
    assert torch.allclose(task.loss(logits, labels, weight), expected)


# ---- regression ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["tiny-bert", "lstm"])
def test_regression_run_honours_the_contract(reg_runs, model):
    run_dir = next(p for name, p in reg_runs.items() if name.startswith(model))
    metrics = check_contract(run_dir, "regression", runs.SCATTER_FIGURE)
    assert not (run_dir / runs.CONFUSION_FILE).exists()
    assert not (run_dir / runs.FIGURES_DIR / runs.CONFUSION_FIGURE).exists()
    assert not (run_dir / runs.FIGURES_DIR / runs.RELIABILITY_FIGURE).exists()  # no probabilities to calibrate
    assert metrics["selection_metric"] == "rmse" and set(metrics["test"]) == {"loss", "rmse", "mae", "pearson",
                                                                             "spearman", "r2", "num_examples"}
    rows = rows_of(run_dir)
    truth, predicted = np.array([float(r["label"]) for r in rows]), np.array([float(r["predicted"]) for r in rows])
    assert metrics["test"] == pytest.approx({**regression_scores(truth, predicted), "loss": metrics["test"]["loss"],
                                             "num_examples": len(rows)})
    np.testing.assert_allclose([float(r["error"]) for r in rows], predicted - truth)
    # the true values are the data's own (not a float32 round trip)
    source = {i: r["score"] for i, r in enumerate(regression_rows())}
    assert [float(r["label"]) for r in rows] == [source[int(r["source_row"])] for r in rows]
    # standardised on the training split's statistics, saved with the model for inference
    stats = {r["statistic"]: r for r in rows_of(run_dir, runs.CLASS_BALANCE_FILE)}
    model_config = read(run_dir, "model/config.json")
    assert model_config["problem_type"] == "regression" and len(model_config["id2label"]) == 1
    assert model_config["target_mean"] == pytest.approx(float(stats["mean"]["train"]))
    assert model_config["target_std"] == pytest.approx(float(stats["std"]["train"]))
    assert metrics["target"]["standardized"] and metrics["target"]["mean"] == model_config["target_mean"]
    assert int(stats["n"]["test"]) == len(rows)
    # selection is lower-is-better: the chosen step has the lowest validation RMSE of all evaluations
    evals = [e for e in read(run_dir, runs.LOG_HISTORY_FILE) if "eval_rmse" in e]
    assert metrics["validation"]["rmse"] == min(e["eval_rmse"] for e in evals)
    assert len({e["eval_rmse"] for e in evals}) > 1  # else any step would pass


@pytest.mark.parametrize("model", ["tiny-bert", "lstm"])
def test_regression_predictor_equals_the_predictions_file(reg_runs, model):
    run_dir = next(p for name, p in reg_runs.items() if name.startswith(model))
    predictor = Predictor.load(run_dir)
    assert isinstance(predictor.task, Regression) and predictor.task.std != 1.0
    inputs, rows = run_test_examples(run_dir)
    predictions = predictor.predict(inputs, batch_size=5)
    np.testing.assert_allclose([p.value for p in predictions], [float(r["predicted"]) for r in rows], rtol=1e-5)
    assert all(p.score is None and p.probabilities == {} for p in predictions)


@pytest.mark.parametrize(("task", "metric", "pick"), [("regression", "rmse", min), ("multi_label", "micro_f1", max)])
def test_compare_marks_the_best_in_the_tasks_direction(reg_runs, multi_runs, task, metric, pick):
    made = reg_runs if task == "regression" else multi_runs
    report = build_report(next(iter(made.values())).parents[2])
    key = f"test_{metric}"
    values = {r["model"]: r[f"{key}_mean"] for r in report.rows}
    assert len(set(values.values())) == 2, values  # else both rows would be marked
    best = pick(values, key=values.get)
    assert [r["model"] for r in report.rows if key in r["best"]] == [best]
    assert report.verdict.winner["model"] == best


def test_targets_can_stay_unstandardised(reg_csv, tmp_path):
    run_dir = make_runs(tmp_path, ["--dataset", str(reg_csv), "--model", "lstm", *REGRESSION, *TINY,
                                   "--no_standardize_targets", "--num_train_epochs", "1"])["lstm"]
    metrics = read(run_dir, runs.METRICS_FILE)
    assert metrics["target"] == {"column": "score", "standardized": False, "mean": 0.0, "std": 1.0}


def test_regression_loss_is_the_mse_of_standardised_targets():
    task = Regression(mean=10.0, std=2.0, standardized=True)
    logits, labels = torch.tensor([[0.5], [-1.0]]), torch.tensor([12.0, 9.0])
    assert torch.isclose(task.loss(logits, labels, None), torch.tensor(((0.5 - 1.0) ** 2 + (-1.0 + 0.5) ** 2) / 2))
    np.testing.assert_allclose(task.outputs(logits.numpy()), [11.0, 8.0])
    with pytest.raises(ValueError):
        task.loss_weights([1.0, 2.0], 1)


def test_regression_scores_against_their_definitions():
    truth, predicted = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 1.5, 3.5, 4.0])
    scores = regression_scores(truth, predicted)
    error = predicted - truth
    assert scores["rmse"] == pytest.approx(np.sqrt(np.mean(error ** 2)))
    assert scores["mae"] == pytest.approx(np.mean(np.abs(error)))
    assert scores["r2"] == pytest.approx(1 - np.sum(error ** 2) / np.sum((truth - truth.mean()) ** 2))
    assert scores["pearson"] == pytest.approx(np.corrcoef(truth, predicted)[0, 1])
    assert scores["spearman"] == pytest.approx(np.corrcoef([1, 2, 3, 4], [1.5, 1.5, 3, 4])[0, 1])
    assert regression_scores(truth, np.full(4, 2.5))["pearson"] == 0.0  # constant predictions: no correlation


def test_multi_label_scores_against_their_definitions():
    truth = np.array([[1, 0, 1], [0, 1, 0]])
    predicted = np.array([[1, 0, 0], [0, 1, 0]])
    scores = multi_label_scores(truth, predicted)
    assert scores["hamming_loss"] == pytest.approx(1 / 6)
    assert scores["subset_accuracy"] == 0.5
    assert scores["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 0 + 1))  # tp 2, fp 0, fn 1
    assert scores["samples_f1"] == pytest.approx((2 / 3 + 1) / 2)
    assert scores["macro_f1"] == pytest.approx((1 + 1 + 0) / 3)


def test_labels_become_the_tensor_each_loss_takes():
    assert label_tensor([1, 0, 2]).dtype == torch.long
    assert label_tensor([[1.0, 0.0], [0.0, 1.0]]).dtype == torch.float32
    assert label_tensor([0.25, 3.5]).dtype == torch.float32


# ---- resume and search -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["multi_label", "regression"])
def test_interrupted_run_resumes_to_the_same_numbers(task, multi_csv, reg_csv, tmp_path_factory, tmp_path,
                                                     monkeypatch):
    data, flags = (multi_csv, MULTI) if task == "multi_label" else (reg_csv, REGRESSION)
    settings = [*EARLY_STOP, *flags, "--num_train_epochs", "3"]
    expected = reference(data, tmp_path_factory, settings)
    step = eval_steps(expected)[-2]
    run_dir = interrupted(data, tmp_path, settings, step, monkeypatch)
    assert runs.read_status(run_dir) == runs.STATUS_FAILED
    resume.resume_run(str(run_dir))
    assert_same_run(run_dir, expected)
    assert read(run_dir, runs.METRICS_FILE)["task"] == task


def search_lstm(tmp_path: Path, data: Path, flags: list[str], trials: int, highest_rate: float,
                retrain: bool) -> dict:
    """A search of the tiny LSTM's learning rate (1e-3 to `highest_rate`) on `data`: its result for the LSTM."""
    space = tmp_path / "space.yaml"
    rate = {"learning_rate": {"low": 1e-3, "high": highest_rate, "log": True}}
    space.write_text(yaml.safe_dump({"pretrained": rate, "lstm": rate}))
    cfg, s = parse_search_args(["--dataset", str(data), "--model", "lstm", "--trials", str(trials), "--search_space",
                                str(space), "--runs_dir", str(tmp_path / "runs"), "--weights_dir",
                                str(tmp_path / "weights"), *flags, *TINY])
    return run_search(cfg, s.search_space, s.trials, retrain=retrain)["lstm"]


@pytest.mark.parametrize(("task", "metric", "direction"), [("regression", "rmse", "minimize"),
                                                        ("multi_label", "micro_f1", "maximize")])
def test_search_follows_the_tasks_metric(reg_csv, multi_csv, tmp_path, task, metric, direction):
    data, flags = (reg_csv, REGRESSION) if task == "regression" else (multi_csv, MULTI)
    result = search_lstm(tmp_path, data, flags, trials=3, highest_rate=5e-2, retrain=False)
    with open(Path(result["search_dir"]) / runs.TRIALS_FILE) as f:
        values = [float(r[f"validation_{metric}"]) for r in csv.DictReader(f)]
    assert len(values) == 3 and result["best_value"] == (min if direction == "minimize" else max)(values)
    assert yaml.safe_load((Path(result["search_dir"]) / runs.SEARCH_FILE).read_text())["direction"] == direction


# ---- bad input -------------------------------------------------------------------------------------------------


def one_line_error(argv: list[str], capsys) -> str:
    from hf_project.training import run_experiment

    assert cli.run(lambda: run_experiment(parse_args(argv))) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and not any("Traceback" in line for line in err), err
    return err[-1]


def bad_file(tmp_path: Path, name: str, rows: list[dict]) -> str:
    path = tmp_path / name
    if name.endswith(".jsonl"):
        path.write_text("\n".join(json.dumps(r) for r in rows))
    else:
        write_csv(path, rows)
    return str(path)


def test_bad_task_input_is_a_one_line_error_before_training(tmp_path, capsys, reg_csv, multi_csv, fortunes_csv):
    texts = [r["text"] for r in fortune_rows()][:60]
    out = ["--runs_dir", str(tmp_path / "runs"), "--weights_dir", str(tmp_path / "weights"), "--model", "lstm"]
    cases = {
        "only in test": (["--train_file", bad_file(tmp_path, "train.jsonl", [{"text": t, "label": ["a"]}
                                                                              for t in texts[:40]]),
                          "--test_file", bad_file(tmp_path, "test.jsonl", [{"text": t, "label": ["a", "zeta"]}
                                                                            for t in texts[40:]])],
                         "zeta in the test split never occur in train"),
        "empty list": (["--dataset", bad_file(tmp_path, "empty.jsonl", [{"text": t, "label": [] if i == 7 else ["a"]}
                                                                        for i, t in enumerate(texts)])],
                       "empty label list"),
        "nan target": (["--dataset", bad_file(tmp_path, "nan.csv", [{"text": t, "y": "nan" if i == 3 else i / 7}
                                                                    for i, t in enumerate(texts)]),
                        "--label_column", "y", "--task", "regression"], "missing (NaN)"),
        "text target": (["--dataset", bad_file(tmp_path, "words.csv", [{"text": t, "y": "high" if i == 3 else i}
                                                                       for i, t in enumerate(texts)]),
                         "--label_column", "y", "--task", "regression"], "'high'"),
        "continuous": (["--dataset", str(reg_csv), "--label_column", "score"], "pass --task regression"),
        "weights": (["--dataset", str(reg_csv), *REGRESSION, "--class_weights"], "a regression has none"),
        "tuning": (["--dataset", str(fortunes_csv), "--tune_threshold"], "leave it out"),
        "metric": (["--dataset", str(reg_csv), *REGRESSION, "--metric_for_best_model", "accuracy"],
                   "not a regression metric"),
        "lists as single": (["--dataset", bad_file(tmp_path, "lists.jsonl", [{"text": t, "label": ["a"]}
                                                                             for t in texts]),
                             "--task", "single_label"], "pass --task multi_label"),
        "unknown task": (["--dataset", str(fortunes_csv), "--task", "ranking"], "--task must be"),
        "delimiter on numbers": (["--dataset", bad_file(tmp_path, "ints.csv", [{"text": t, "label": i % 2}
                                                                               for i, t in enumerate(texts)]),
                                  "--label_delimiter", ";"], "leave --label_delimiter out"),
    }
    for name, (argv, message) in cases.items():
        err = one_line_error([*argv, *out], capsys)
        assert message in err, (name, err)
    assert not (tmp_path / "runs").exists() or runs.find_runs(tmp_path / "runs", complete_only=False) == []


def test_a_new_multi_label_head_starts_from_the_label_frequencies(multi_csv, tiny_bert, tmp_path):
    from hf_project.models.registry import resolve
    from hf_project.training import new_model, prepare_experiment, prepare_inputs

    cfg = parse_args(["--dataset", str(multi_csv), "--model", str(tiny_bert), *MULTI, *TINY,
                      "--cache_dir", str(tmp_path)])
    experiment = prepare_experiment(cfg)
    data, spec = experiment.data, resolve(str(tiny_bert))
    model = new_model(experiment.cfg, spec, data, prepare_inputs(experiment.cfg, spec, data, tmp_path))
    frequency = np.asarray(data.references("train")).mean(axis=0)
    probabilities = torch.sigmoid(model.classifier.bias.detach()).numpy()
    np.testing.assert_allclose(probabilities, frequency, rtol=1e-5)
    assert MultiLabel().initial_bias([[1.0, 0.0]] * 3 + [[0.0, 1.0]]) == pytest.approx([math.log(3), -math.log(3)])
