"""search: Optuna on validation only, one kind of space for every model, seeded and resumable studies, the best
trial retrained as a normal run."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import REPO_ROOT

from hf_project import cli, search, training
from hf_project.errors import UserError
from hf_project.runs import find_runs, read_status
from hf_project.search import config_field, load_search_space, parse_search_args, run_search
from hf_project.training import ClassificationTrainer

TINY = ["--per_device_train_batch_size", "16", "--max_length", "32", "--logging_steps", "2",
        "--lstm_embedding_dim", "16", "--lstm_hidden_size", "16"]
TRAINING = {
    "learning_rate": {"low": 1.0e-3, "high": 5.0e-3, "log": True},
    "per_device_train_batch_size": {"choices": [16, 32]},
    "num_train_epochs": {"low": 1, "high": 2},
    "weight_decay": {"low": 0.0, "high": 0.1},
    "warmup_ratio": {"low": 0.0, "high": 0.2},
}
SPACE = {
    "pretrained": TRAINING,
    "lstm": {**TRAINING, "learning_rate": {"low": 2.0e-3, "high": 1.0e-2, "log": True},
             "hidden_size": {"choices": [8, 16]}, "num_layers": {"low": 1, "high": 2},
             "dropout": {"low": 0.0, "high": 0.3}, "embedding_dim": {"choices": [8, 16]}},
}


@pytest.fixture(scope="module")
def space_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("space") / "search.yaml"
    path.write_text(yaml.safe_dump(SPACE))
    return path


def argv(fortunes_csv: Path, root: Path, models: str, space: Path, *extra: str, trials: int = 2) -> list[str]:
    return ["--dataset", str(fortunes_csv), "--model", models, "--trials", str(trials), "--search_space", str(space),
            "--runs_dir", str(root / "runs"), "--weights_dir", str(root / "weights"), *TINY, *extra]


def run(args: list[str], retrain: bool = True) -> dict:
    cfg, s = parse_search_args(args)
    return run_search(cfg, s.search_space, s.trials, study=s.study, retrain=retrain)


def table(result: dict) -> list[dict]:
    with open(Path(result["search_dir"]) / "trials.csv") as f:
        return list(csv.DictReader(f))


class Tripwire:
    """Stands in for the test split while the search runs: any use of it is recorded and fails."""

    def __init__(self, log: list[str]) -> None:
        object.__setattr__(self, "log", log)

    def _touched(self, what: str):
        self.log.append(what)
        raise AssertionError(f"the search read the test split ({what})")

    def __getattr__(self, name):
        return self._touched(f".{name}")

    def __len__(self):
        return self._touched("len()")

    def __getitem__(self, key):
        return self._touched(f"[{key!r}]")

    def __iter__(self):
        return self._touched("iter()")


@pytest.fixture(scope="module")
def searched(fortunes_csv, tiny_bert, space_file, tmp_path_factory):
    """Two trials each for a tiny transformer and the LSTM; test is a tripwire except while the best is retrained."""
    root = tmp_path_factory.mktemp("search")
    touched, retrained = [], []
    real_prepare, real_retrain = training.prepare_data, search.retrain_best
    test_split = {}

    def prepare(args, seed):
        data = real_prepare(args, seed)
        test_split["real"] = data.splits["test"]
        data.splits["test"] = Tripwire(touched)
        return data

    def retrain(cfg, spec, data):
        data.splits["test"] = test_split["real"]  # the retrained run reads test, once
        try:
            retrained.append(spec.name)
            return real_retrain(cfg, spec, data)
        finally:
            data.splits["test"] = Tripwire(touched)

    # Integers in an experiment YAML stay integers: a trial must still get the fractional values it samples.
    experiment = root / "experiment.yaml"
    experiment.write_text("weight_decay: 0\nwarmup_ratio: 0\nnum_train_epochs: 3\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training, "prepare_data", prepare)
        mp.setattr(search, "retrain_best", retrain)
        results = run(argv(fortunes_csv, root, f"{tiny_bert},lstm", space_file, "--config", str(experiment)))
    return {"root": root, "results": results, "touched": touched, "retrained": retrained, "bert": tiny_bert.name}


def test_test_split_is_never_read_during_the_search(searched):
    assert searched["touched"] == []
    assert searched["retrained"] == [searched["bert"], "lstm"]  # the only phase that may read test


def test_trials_table_and_study_are_stored_beside_the_runs(searched):
    root, results = searched["root"], searched["results"]
    assert set(results) == {searched["bert"], "lstm"}
    for model, result in results.items():
        search_dir = Path(result["search_dir"])
        assert search_dir.parent == root / "runs" / "sample" / model and search_dir.name.startswith("search-")
        assert (search_dir / "study.db").is_file() and not (search_dir / "checkpoints").exists()
        rows = table(result)
        section = "lstm" if model == "lstm" else "pretrained"
        assert [r["trial"] for r in rows] == ["0", "1"] and {r["state"] for r in rows} == {"complete"}
        for row in rows:
            assert 0.0 <= float(row["validation_macro_f1"]) <= 1.0
            assert all(row[knob] != "" for knob in SPACE[section])
            assert "hidden_size" not in row or section == "lstm"
        assert result["best_value"] == max(float(r["validation_macro_f1"]) for r in rows)
        assert [r["best"] for r in rows].count("True") == 1
    # The search folders are not runs: only the two retrained runs are found.
    assert sorted(p.parent.name for p in find_runs(root / "runs")) == sorted(results)


def test_best_trial_is_retrained_as_a_tagged_run(searched):
    for model, result in searched["results"].items():
        run_dir = Path(result["run_dir"])
        assert read_status(run_dir) == "complete" and run_dir.parent.name == model
        for name in ("metrics.json", "manifest.json", "split.json", "predictions_test.csv", "model/config.json"):
            assert (run_dir / name).is_file(), name
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert config["tag"] == "search-best" and "," not in config["model"]
        for knob, value in result["params"].items():
            assert config[config_field(knob, model == "lstm")] == value, knob
        metrics = json.loads((run_dir / "metrics.json").read_text())
        # Same configuration, same seeding: the retrained run is the run its trial scored.
        assert metrics["validation"]["macro_f1"] == result["best_value"]
        assert metrics["test"]["num_examples"] == 36
        assert (searched["root"] / "weights" / "sample" / model / "config.json").is_file()


def test_same_search_same_trials(searched, fortunes_csv, space_file, tmp_path):
    again = run(argv(fortunes_csv, tmp_path, "lstm", space_file), retrain=False)["lstm"]
    first = searched["results"]["lstm"]
    assert again["study"] == first["study"]  # named after the settings, not the folders
    drop = ("duration_s",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in table(again)] == \
        [{k: v for k, v in r.items() if k not in drop} for r in table(first)]


def test_interrupted_study_resumes_with_only_the_missing_trials(fortunes_csv, space_file, tmp_path, monkeypatch):
    args = argv(fortunes_csv, tmp_path, "lstm", space_file)
    real_evaluate = ClassificationTrainer.evaluate

    def interrupted(self, *a, **kw):
        if getattr(self, "_trial", None) is not None and self._trial.number == 1:
            raise KeyboardInterrupt
        return real_evaluate(self, *a, **kw)

    with monkeypatch.context() as mp:
        mp.setattr(ClassificationTrainer, "evaluate", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run(args, retrain=False)
    (search_dir,) = (tmp_path / "runs" / "sample" / "lstm").glob("search-*")
    with open(search_dir / "trials.csv") as f:
        assert [r["state"] for r in csv.DictReader(f)] == ["complete", "fail"]
    storage = f"sqlite:///{search_dir / 'study.db'}"
    study = optuna.load_study(study_name=search_dir.name.removeprefix("search-"), storage=storage)
    study.ask()  # a trial left running, as by a killed process
    first = study.trials[0]

    calls = []
    real_run_trials = search.run_trials
    monkeypatch.setattr(search, "run_trials", lambda *a, **kw: calls.append(a[6]) or real_run_trials(*a, **kw))
    result = run(args, retrain=False)["lstm"]
    assert calls == [1]  # only the missing trial
    trials = optuna.load_study(study_name=result["study"], storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "FAIL", "COMPLETE"]
    assert trials[0].datetime_complete == first.datetime_complete and trials[0].params == first.params
    assert trials[3].params != first.params  # a resumed sampler does not replay the first trials
    assert len(table(result)) == 4
    # Asking again for the same number of trials runs nothing; a study name cannot be reused for other settings.
    calls.clear()
    run(args, retrain=False)
    assert calls == []
    with pytest.raises(UserError, match="other settings"):
        run([*args, "--study", result["study"], "--max_length", "24"], retrain=False)


def write_space(tmp_path: Path, space: dict) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def without(section: dict, knob: str) -> dict:
    return {k: v for k, v in section.items() if k != knob}


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({**SPACE, "lstm": {**SPACE["lstm"], "hiden_size": {"choices": [8]}}}, "unknown key 'hiden_size'"),
        ({**SPACE, "pretrained": {**TRAINING, "dropout": {"low": 0.0, "high": 0.5}}}, "an LSTM knob"),
        ({**SPACE, "lstm": without(SPACE["lstm"], "weight_decay")}, "'lstm' lacks 'weight_decay'"),
        ({**SPACE, "pretrained": without(TRAINING, "warmup_ratio")}, "'pretrained' lacks 'warmup_ratio'"),
        ({"pretrained": TRAINING}, "no 'lstm' section"),
        ({**SPACE, "cnn": TRAINING}, "unknown section"),
        ({**SPACE, "pretrained": {**TRAINING, "learning_rate": {"low": 0.1, "high": 0.01}}}, "must be below"),
        ({**SPACE, "pretrained": {**TRAINING, "learning_rate": {"low": 0.0, "high": 0.1, "log": True}}}, "> 0"),
        ({**SPACE, "pretrained": {**TRAINING, "num_train_epochs": {"low": 1.5, "high": 3}}}, "not an integer"),
        ({**SPACE, "pretrained": {**TRAINING, "weight_decay": 0.01}}, "must be {low"),
        ({**SPACE, "lstm": {**SPACE["lstm"], "dropout": {"choices": [0.1, 1.5]}}}, r"in \[0, 1\)"),
    ],
)
def test_bad_search_spaces_are_one_line_errors(tmp_path, space, message):
    with pytest.raises(UserError, match=message) as err:
        load_search_space(write_space(tmp_path, space))
    assert "\n" not in str(err.value)


def test_shipped_space_is_valid_and_fair():
    space = load_search_space(REPO_ROOT / "configs" / "search.yaml")
    assert [k.name for k in space.sections["pretrained"]] == list(TRAINING)
    assert [k.name for k in space.sections["lstm"]] == list(SPACE["lstm"])
    first = (REPO_ROOT / "configs" / "search.yaml").read_text().splitlines()[0]
    assert first.startswith("# python scripts/search.py ") and "--search_space configs/search.yaml" in first


def load_script():
    spec = importlib.util.spec_from_file_location("search_script", REPO_ROOT / "scripts" / "search.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--trials", "0"], "--trials must be at least 1"),
        (["--models", "lstm"], "--models or --model, not both"),
        (["--seeds", "1,2"], "--seeds does not apply"),
        (["--trial", "3"], "not used"),  # unknown flags are errors, abbreviations too
        (["--search_space", "missing.yaml"], "does not exist"),
    ],
)
def test_bad_input_is_a_one_line_error(fortunes_csv, space_file, tmp_path, capsys, extra, message):
    args = argv(fortunes_csv, tmp_path, "lstm", space_file)
    if extra[0] == "--search_space":
        args = [a if a != str(space_file) else extra[1] for a in args]
    else:
        args += extra
    assert cli.run(lambda: load_script().main(args)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and message in err[-1]
    assert not (tmp_path / "runs" / "sample").exists()


def test_experiment_yaml_and_flags_work_as_for_finetune(tmp_path, space_file):
    experiment = tmp_path / "exp.yaml"
    experiment.write_text("dataset: fortunes\nmodel: minilm,lstm\nmax_length: 64\nlstm_learning_rate: 0.002\n")
    cfg, args = parse_search_args(["--config", str(experiment), "--model", "lstm", "--trials", "3", "--seed", "7"])
    assert cfg.model.model_names == ["lstm"] and cfg.data.max_length == 64 and cfg.train.seed == 7
    alias, _ = parse_search_args(["--config", str(experiment), "--models", "lstm", "--trials", "3", "--seed", "7"])
    assert alias == cfg  # the older spelling still works
    assert args.trials == 3 and args.search_space is None  # configs/search.yaml by default
    cfg, _ = parse_search_args(["--config", str(experiment)])
    assert cfg.model.model_names == ["minilm", "lstm"]
    (tmp_path / "bad.yaml").write_text("trials: 3\n")  # search flags are flags, not experiment keys
    with pytest.raises(UserError, match="unknown key"):
        parse_search_args(["--config", str(tmp_path / "bad.yaml")])
