"""Fair hyperparameter search: Optuna through `Trainer.hyperparameter_search`, on the validation split only.

Every model of a comparison gets the same number of trials over the same kinds of knobs (configs/search.yaml: one
section for pretrained models, one for the LSTM), a seeded TPE sampler, and the data, split and budget of a normal
run. Each model's study is stored in SQLite, so running the same command again resumes it; the best trial is then
retrained through the normal training path as a complete run tagged `search-best` (the only time test is read).

    runs/<dataset>/<model>/search-<study>/     (no `status` file: never mistaken for a run)
      study.db       the Optuna study
      search.yaml    base configuration, search space and objective of the study
      trials.csv     one row per trial: number, state, validation score, parameters
      best.json      the best trial and the run directory it was retrained into
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import DatasetDict
from transformers import TrainerCallback, enable_full_determinism, set_seed

from hf_project import runs
from hf_project.config import ExperimentConfig, TrainArguments, parse_args_with, read_yaml_mapping
from hf_project.data import PreparedData
from hf_project.device import distributed_state
from hf_project.errors import UserError
from hf_project.metrics import greater_is_better
from hf_project.models.registry import ModelSpec
from hf_project.training import (
    build_trainer,
    check_trainable,
    new_model,
    prepare_experiment,
    prepare_inputs,
    run_one,
)

logger = logging.getLogger(__name__)

DEFAULT_SPACE = runs.REPO_ROOT / "configs" / "search.yaml"
BEST_TAG = "search-best"
# Knobs every model family searches; the LSTM adds its architecture. The Trainer sets the first kind on its
# TrainingArguments for each trial (knob -> attribute); the architecture reaches the model through model_init.
TRAINING_KNOBS = {
    "learning_rate": "learning_rate",
    "per_device_train_batch_size": "per_device_train_batch_size",
    "num_train_epochs": "num_train_epochs",
    "weight_decay": "weight_decay",
    "warmup_ratio": "warmup_steps",  # a float below 1 is a fraction of the steps in transformers 5
}
LSTM_KNOBS = ("hidden_size", "num_layers", "dropout", "embedding_dim")
SECTIONS = {"pretrained": tuple(TRAINING_KNOBS), "lstm": (*TRAINING_KNOBS, *LSTM_KNOBS)}
INT_KNOBS = {"per_device_train_batch_size", "num_train_epochs", "hidden_size", "num_layers", "embedding_dim"}
FRACTION_KNOBS = {"warmup_ratio", "dropout"}  # in [0, 1)
NON_NEGATIVE_KNOBS = {"weight_decay"}  # the others must be > 0


@dataclass
class SearchArguments:
    trials: int = field(
        default=10,
        metadata={"help": "Trials per model, the same for every model compared; a re-run adds only the missing ones."},
    )
    search_space: str | None = field(
        default=None, metadata={"help": "YAML search space (a 'pretrained' and an 'lstm' section); "
                                        "default configs/search.yaml."},
    )
    study: str | None = field(
        default=None, metadata={"help": "Study name (default: a hash of the settings, so the same command resumes)."},
    )
    models: str | None = field(
        default=None, metadata={"help": "Older spelling of --model, kept so older commands work; use --model."},
    )

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise UserError(f"--trials must be at least 1, got {self.trials}")
        if self.study is not None and not re.fullmatch(r"[\w.-]+", self.study):
            raise UserError(f"--study {self.study!r}: use letters, digits, '.', '_' or '-' only")


def parse_search_args(argv: list[str] | None = None) -> tuple[ExperimentConfig, SearchArguments]:
    """The experiment flags and YAML of scripts/finetune.py, plus the search's own flags."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    cfg, search = parse_args_with(argv, SearchArguments)
    if search.models is not None:
        if any(a == "--model" or a.startswith("--model=") for a in argv):
            raise UserError("give the models once: --models or --model, not both")
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, model=search.models))
    return cfg, search


# ---- the search space -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Knob:
    """One searched hyperparameter: a range (`low`, `high`, optional `log` or `step`) or a list of `choices`."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] | None = None

    def suggest(self, trial: Any) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.name in INT_KNOBS:
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def to_dict(self) -> dict[str, Any]:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass(frozen=True)
class SearchSpace:
    path: str
    sections: dict[str, tuple[Knob, ...]]

    def knobs_for(self, spec: ModelSpec) -> tuple[Knob, ...]:
        return self.sections["lstm" if spec.from_scratch else "pretrained"]

    def to_dict(self) -> dict[str, Any]:
        return {section: {k.name: k.to_dict() for k in knobs} for section, knobs in self.sections.items()}


def load_search_space(path: str | Path | None = None) -> SearchSpace:
    """Both sections, the same training knobs in each; anything unknown or unfair is a one-line error."""
    path = Path(path) if path else DEFAULT_SPACE
    raw = read_yaml_mapping(path, "search space", "check --search_space (e.g. configs/search.yaml)",
                            f"with the sections {' and '.join(SECTIONS)}")
    unknown = sorted(set(raw) - set(SECTIONS))
    missing = [s for s in SECTIONS if s not in raw]
    if unknown or missing:
        problem = f"unknown section(s) {', '.join(map(str, unknown))}" if unknown else f"no {missing[0]!r} section"
        raise UserError(f"search space {path}: {problem}; it needs exactly the sections {' and '.join(SECTIONS)}")
    sections = {}
    for section, allowed in SECTIONS.items():
        values = raw[section]
        if not isinstance(values, dict) or not values:
            raise UserError(f"search space {path}: section {section!r} must map knob names to ranges")
        for name in values:
            if name not in allowed:
                hint = ("an LSTM knob: pretrained models keep their architecture" if name in LSTM_KNOBS
                        else f"valid ones: {', '.join(allowed)}")
                raise UserError(f"search space {path}: unknown key {name!r} in section {section!r} ({hint})")
        sections[section] = tuple(_knob(path, section, name, values[name]) for name in allowed if name in values)
    # Fair by construction: a training knob searched for one family is searched for the other too.
    pretrained, lstm = ({k.name for k in sections[s] if k.name in TRAINING_KNOBS} for s in SECTIONS)
    for name in sorted(pretrained ^ lstm):
        has, lacks = ("pretrained", "lstm") if name in pretrained else ("lstm", "pretrained")
        raise UserError(
            f"search space {path}: section {lacks!r} lacks {name!r}, which {has!r} searches: "
            "every model family must search the same kinds of knobs"
        )
    return SearchSpace(str(path), sections)


def _knob(path: Path, section: str, name: str, spec: Any) -> Knob:
    where = f"search space {path}: {section}.{name}"
    if not isinstance(spec, dict):
        raise UserError(f"{where} must be {{low: .., high: ..}} (optional log/step) or {{choices: [..]}}, got {spec!r}")
    keys = set(spec)
    integer = name in INT_KNOBS
    if "choices" in keys:
        choices = spec["choices"]
        if keys != {"choices"} or not isinstance(choices, list) or not choices:
            raise UserError(f"{where}: 'choices' must be a non-empty list and stand alone")
        for value in choices:
            _check_value(where, name, value, integer)
        return Knob(name, choices=tuple(choices))
    unknown = sorted(keys - {"low", "high", "log", "step"})
    if unknown or not {"low", "high"} <= keys:
        raise UserError(f"{where}: give low and high (optional log, step) or choices; unknown key(s): "
                        f"{', '.join(unknown) or 'none'}")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    _check_value(where, name, low, integer)
    _check_value(where, name, high, integer)
    if not low < high:
        raise UserError(f"{where}: low ({low}) must be below high ({high})")
    if not isinstance(log, bool):
        raise UserError(f"{where}: log must be true or false, got {log!r}")
    if step is not None and (log or isinstance(step, bool) or not isinstance(step, int | float) or step <= 0
                             or (integer and not isinstance(step, int))):
        raise UserError(f"{where}: step must be a positive {'integer' if integer else 'number'} and not used with log")
    if log and low <= 0:
        raise UserError(f"{where}: a log range needs low > 0, got {low}")
    return Knob(name, low=low, high=high, log=log, step=step)


def _check_value(where: str, name: str, value: Any, integer: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        raise UserError(f"{where}: {value!r} is not {'an integer' if integer else 'a number'}")
    if name in FRACTION_KNOBS and not 0 <= value < 1:
        raise UserError(f"{where}: {value} must be in [0, 1)")
    if name in NON_NEGATIVE_KNOBS and value < 0:
        raise UserError(f"{where}: {value} must be >= 0")
    if name not in FRACTION_KNOBS | NON_NEGATIVE_KNOBS and value <= 0:
        raise UserError(f"{where}: {value} must be > 0")


def config_field(knob: str, from_scratch: bool) -> str:
    """The configuration field a knob sets: the LSTM has its own learning rate, epochs and architecture fields."""
    if knob in LSTM_KNOBS or (from_scratch and knob in ("learning_rate", "num_train_epochs")):
        return f"lstm_{knob}"
    return knob


def apply_params(cfg: ExperimentConfig, spec: ModelSpec, params: dict[str, Any]) -> ExperimentConfig:
    """The configuration of one trial: what a normal run with these parameters would be given."""
    train_fields = {f.name for f in dataclasses.fields(TrainArguments)}
    train, model = {}, {}
    for knob, value in params.items():
        name = config_field(knob, spec.from_scratch)
        value = float(value) if knob == "num_train_epochs" else value  # an epoch count is a float field
        (train if name in train_fields else model)[name] = value
    return dataclasses.replace(
        cfg, train=dataclasses.replace(cfg.train, **train), model=dataclasses.replace(cfg.model, **model)
    )


def sample_params(trial: Any, knobs: tuple[Knob, ...]) -> dict[str, Any]:
    # Optuna returns the same value when a trial asks again, so model_init and hp_space agree.
    return {knob.name: knob.suggest(trial) for knob in knobs}


# ---- running it -------------------------------------------------------------------------------------------------


def run_search(
    cfg: ExperimentConfig, space_path: str | Path | None, trials: int, study: str | None = None, retrain: bool = True
) -> dict[str, dict[str, Any]]:
    """Search every model of `cfg.model.model` on the shared split; returns {model: summary of its search}."""
    if trials < 1:
        raise UserError(f"--trials must be at least 1, got {trials}")
    if cfg.train.seeds:
        raise UserError("--seeds does not apply to a search (it runs at --seed): retrain the best run's "
                        "config.yaml with scripts/finetune.py --seeds ... afterwards")
    space = load_search_space(space_path)
    if distributed_state().num_processes > 1:
        raise UserError("the search runs in one process: start it with python scripts/search.py, not accelerate launch")
    experiment = prepare_experiment(cfg)
    cfg = experiment.cfg  # the task found in the data, and its selection metric
    for _, spec in experiment.models:  # before any study is made
        check_trainable(spec)
    results = {}
    for name, spec in experiment.models:
        results[spec.name] = search_model(cfg.for_run(name, cfg.train.seed), spec, experiment.data, space, trials,
                                          study, retrain)
    for name, result in results.items():
        logger.info("%s: best trial %s of %s, validation %s %.4f; retrained run %s", name, result["best_trial"],
                    result["study"], cfg.train.metric_for_best_model, result["best_value"], result.get("run_dir"))
    return results


def without_test(data: PreparedData) -> PreparedData:
    """What the trials may see: train and validation only."""
    splits = DatasetDict({part: data.splits[part] for part in ("train", "validation")})
    split = {k: v for k, v in data.split.items() if k != "test"}
    # The modality stages key their caches by split["hash"]: these two splits must not pass for all three.
    split["hash"] = f"{data.split['hash']}:train+validation"
    return dataclasses.replace(data, splits=splits, split=split)


def study_key(cfg: ExperimentConfig, spec: ModelSpec, data: PreparedData, knobs: tuple[Knob, ...]) -> str:
    """What makes two searches the same study: settings, split and space, not output folders or the trial count."""
    searched = {config_field(k.name, spec.from_scratch) for k in knobs}
    ignored = {"runs_dir", "weights_dir", "tag", "seeds", "dataloader_num_workers", "cache_dir", "report_to",
               *searched}
    if spec.from_scratch:  # the LSTM reads its own learning rate, and its own epochs once those are searched
        ignored |= {"learning_rate"} | ({"num_train_epochs"} if "lstm_num_train_epochs" in searched else set())
    settings = {k: v for k, v in cfg.to_dict().items()
                if k not in ignored and not (k.startswith("lstm_") and not spec.from_scratch)}
    payload = {"settings": settings, "checkpoint": spec.checkpoint, "split": data.split["hash"],
               "space": {k.name: k.to_dict() for k in knobs}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def search_model(
    cfg: ExperimentConfig,
    spec: ModelSpec,
    data: PreparedData,
    space: SearchSpace,
    trials: int,
    study_name: str | None = None,
    retrain: bool = True,
) -> dict[str, Any]:
    """Run the missing trials of this model's study, write the table, retrain the best trial as a normal run."""
    import optuna

    knobs = space.knobs_for(spec)
    metric = cfg.train.metric_for_best_model
    direction = "maximize" if greater_is_better(metric) else "minimize"
    key = study_key(cfg, spec, data, knobs)
    name = study_name or key[:10]
    search_dir = Path(cfg.train.runs_dir) / data.name / spec.name / f"{runs.SEARCH_DIR_PREFIX}{name}"
    search_dir.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{(search_dir / runs.STUDY_FILE).resolve()}"
    study = optuna.create_study(storage=storage, study_name=name, direction=direction, load_if_exists=True)
    _claim_study(study, key, search_dir)
    runs.write_yaml(search_dir / runs.SEARCH_FILE, {
        "study": name, "key": key, "model": spec.name, "trials": trials, "metric": f"validation {metric}",
        "direction": direction, "space": {k.name: k.to_dict() for k in knobs}, "space_file": space.path,
        "config": cfg.to_dict(),
    })
    if cfg.train.max_steps > 0 and any(k.name == "num_train_epochs" for k in knobs):
        logger.warning("--max_steps %d caps every trial: the searched num_train_epochs has no effect",
                       cfg.train.max_steps)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    missing = trials - len(complete)
    if missing > 0:
        logger.info("%s: study %s has %d of %d trials complete; running %d", spec.name, name, len(complete), trials,
                    missing)
        try:
            run_trials(cfg, spec, without_test(data), knobs, study, storage, missing, search_dir / runs.CHECKPOINTS_DIR)
        finally:  # an interrupted search still leaves the table of what it did
            write_trials_table(optuna.load_study(study_name=name, storage=storage), knobs, search_dir, metric)
            shutil.rmtree(search_dir / runs.CHECKPOINTS_DIR, ignore_errors=True)
    else:
        logger.info("%s: study %s already has %d complete trials (asked for %d)", spec.name, name, len(complete),
                    trials)
        write_trials_table(study, knobs, search_dir, metric)
    study = optuna.load_study(study_name=name, storage=storage)
    best = study.best_trial
    summary: dict[str, Any] = {"study": name, "search_dir": str(search_dir), "best_trial": best.number,
                               "best_value": best.value, "metric": f"validation {metric}", "params": best.params}
    if retrain:
        summary.update(_retrained(cfg, spec, data, study, best))
    runs.write_json(search_dir / runs.BEST_FILE, summary)
    return summary


def _claim_study(study: Any, key: str, search_dir: Path) -> None:
    """A study belongs to one set of settings; a killed process leaves its trial RUNNING, which is stale now."""
    import optuna

    stored = study.user_attrs.get("key")
    if stored is None:
        study.set_user_attr("key", key)
    elif stored != key:
        raise UserError(
            f"study {study.study_name} in {search_dir} was run with other settings (data, split, budget or search "
            "space): pass another --study name, or leave --study out for one named after the settings"
        )
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        logger.warning("trial %d of study %s was left running by an earlier process: marked failed", trial.number,
                       study.study_name)


class BestSoFar(TrainerCallback):
    """A trial's objective: the best validation score of its evaluations so far (the Trainer reports the value it
    computes at the last one). Reset when each trial starts training."""

    def __init__(self, metric_key: str, greater: bool) -> None:
        self.metric_key, self.better = metric_key, max if greater else min
        self.value: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.value = None

    def __call__(self, metrics: dict[str, float]) -> float:
        score = metrics[self.metric_key]
        self.value = score if self.value is None else self.better(self.value, score)
        return self.value


class _DropTrialCheckpoints(TrainerCallback):
    """A trial's checkpoints only serve its own best-model restore: free the disk before the next trial."""

    def on_train_end(self, args, state, control, **kwargs):
        shutil.rmtree(args.output_dir, ignore_errors=True)


def run_trials(
    cfg: ExperimentConfig,
    spec: ModelSpec,
    data: PreparedData,
    knobs: tuple[Knob, ...],
    study: Any,
    storage: str,
    n_trials: int,
    output_dir: Path,
) -> None:
    """`n_trials` more trials through Trainer.hyperparameter_search; `data` holds train and validation only."""
    import optuna

    # Trials write no TensorBoard event files: only the retrained best trial, a normal run, follows --report_to.
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, report_to="none"))
    inputs = prepare_inputs(cfg, spec, data, output_dir)
    for knob in knobs:
        # The Trainer casts each trial's value to the type it finds: `weight_decay: 0` from a YAML would turn every
        # sampled weight decay into int(value) = 0.
        if knob.name in TRAINING_KNOBS and knob.name not in INT_KNOBS:
            setattr(inputs.args, TRAINING_KNOBS[knob.name], float(getattr(inputs.args, TRAINING_KNOBS[knob.name])))

    def model_init(trial: Any = None) -> Any:
        trial_cfg = cfg if trial is None else apply_params(cfg, spec, sample_params(trial, knobs))
        model = new_model(trial_cfg, spec, data, inputs)
        # A normal run's Trainer reseeds after the model is built (in its __init__); so does a trial, so that data
        # order and dropout match and the retrained best trial is the very run the trial scored.
        if inputs.args.full_determinism:
            enable_full_determinism(inputs.args.seed)
        else:
            set_seed(inputs.args.seed)
        return model

    def hp_space(trial: Any) -> dict[str, Any]:
        return {TRAINING_KNOBS[k]: v for k, v in sample_params(trial, knobs).items() if k in TRAINING_KNOBS}

    objective = BestSoFar(f"eval_{cfg.train.metric_for_best_model}",
                          greater_is_better(cfg.train.metric_for_best_model))
    trainer = build_trainer(cfg, data, inputs, model_init=model_init)
    trainer.add_callback(_DropTrialCheckpoints())
    trainer.add_callback(objective)
    # A fresh sampler seeded with the seed alone would replay the first trials' parameters on resume.
    sampler = optuna.samplers.TPESampler(seed=cfg.train.seed + len(study.trials))
    trainer.hyperparameter_search(
        hp_space=hp_space, compute_objective=objective, n_trials=n_trials,
        direction=study.direction.name.lower(), backend="optuna", storage=storage, study_name=study.study_name,
        load_if_exists=True, sampler=sampler, pruner=optuna.pruners.NopPruner(),
    )


def write_trials_table(study: Any, knobs: tuple[Knob, ...], search_dir: Path, metric: str) -> list[dict[str, Any]]:
    import optuna

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = study.best_trial.number if complete else None
    rows = []
    for t in study.trials:
        duration = t.duration.total_seconds() if t.duration is not None else None
        rows.append({"trial": t.number, "state": t.state.name.lower(), f"validation_{metric}": t.value,
                     **{k.name: t.params.get(k.name) for k in knobs}, "duration_s": duration,
                     "best": t.number == best})
    runs.write_csv(search_dir / runs.TRIALS_FILE, rows)
    return rows


def _retrained(
    cfg: ExperimentConfig, spec: ModelSpec, data: PreparedData, study: Any, best: Any
) -> dict[str, Any]:
    """The best trial as a complete run, unless this study already retrained this very trial."""
    done = study.user_attrs.get("best_run") or {}
    if done.get("trial") == best.number and runs.read_status(done.get("run_dir", "")) == runs.STATUS_COMPLETE:
        logger.info("%s: best trial %d was already retrained in %s", spec.name, best.number, done["run_dir"])
        return done
    tag = f"{cfg.train.tag}-{BEST_TAG}" if cfg.train.tag else BEST_TAG
    best_cfg = apply_params(cfg, spec, best.params)
    best_cfg = dataclasses.replace(best_cfg, train=dataclasses.replace(best_cfg.train, tag=tag))
    run_dir, metrics = retrain_best(best_cfg, spec, data)
    done = {"trial": best.number, "run_dir": str(run_dir), "tag": tag, "test": metrics.get("test")}
    study.set_user_attr("best_run", done)
    return done


def retrain_best(cfg: ExperimentConfig, spec: ModelSpec, data: PreparedData) -> tuple[Path, dict[str, Any]]:
    """A normal run (run directory, weights/, test evaluated once) with the best trial's configuration."""
    result = run_one(cfg, spec, data)
    return result.run_dir, result.metrics
