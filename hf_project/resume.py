"""Continuing a killed or failed run in its own run directory, from its latest good checkpoint.

    python scripts/finetune.py --resume runs/<dataset>/<model>/<run>
    python scripts/finetune.py --resume last [--runs_dir runs]

The run's own config.yaml gives every setting. The Trainer writes a checkpoint (weights, optimizer, scheduler,
RNG states, trainer_state.json last) at every evaluation, straight into its final folder, so a kill can leave the
newest one half-written: such a checkpoint is detected, removed, and the one before it is used. Without any good
checkpoint the run starts over, in the same directory.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hf_project import runs
from hf_project.checkpoints import checkpoint_problem, choose_checkpoint  # noqa: F401 - the resume API
from hf_project.config import config_from_dict
from hf_project.device import distributed_state, launched_precision, on_main_process, resolve_mixed_precision
from hf_project.errors import UserError
from hf_project.training import prepare_experiment, run_one

logger = logging.getLogger(__name__)

RESUME_FLAGS = ("--resume", "--runs_dir")


@dataclass
class ResumeArguments:
    resume: str | None = field(
        default=None,
        metadata={"help": "Continue a killed or failed run: its run directory, or `last` (the newest run under "
                  "--runs_dir that is not complete). It keeps the settings of its own config.yaml, so no other "
                  "flag may be given (only --runs_dir, for `last`)."},
    )


def check_resume_flags(argv: list[str]) -> None:
    """A resumed run keeps its saved settings: any other flag is an error, not silently ignored."""
    it = iter(argv)
    for arg in it:
        name = arg.split("=", 1)[0]
        if "--" + name[2:].replace("-", "_") in RESUME_FLAGS:  # argparse takes --runs-dir for --runs_dir too
            if "=" not in arg:
                next(it, None)
        elif arg.startswith("-"):
            raise UserError(
                f"{name} cannot go with --resume: a resumed run keeps the settings of its own config.yaml "
                "(only --runs_dir may be given, for --resume last)"
            )


def find_run(target: str, runs_dir: str | Path) -> Path:
    """The run directory to continue: a path, or `last` for the newest run under runs_dir that is not complete."""
    if target == "last":
        candidates = [p for p in runs.find_runs(runs_dir, complete_only=False)
                      if runs.read_status(p) != runs.STATUS_COMPLETE and not runs.is_locked(p)]
        if not candidates:
            raise UserError(f"no run to resume under {runs_dir}: there is none, or every one is complete or still "
                            "being trained (start a new run without --resume, or give --runs_dir)")
        return max(candidates, key=runs.started)
    path = Path(target)
    if not (path / runs.CONFIG_FILE).is_file() or not (path / runs.STATUS_FILE).is_file():
        raise UserError(f"{path} is not a run directory (no config.yaml or status): give --resume "
                        "runs/<dataset>/<model>/<run>, or --resume last")
    if runs.read_status(path) == runs.STATUS_COMPLETE:
        raise UserError(f"run {path} is complete: there is nothing to resume (to train it again, start a new run "
                        f"with --config {path / runs.CONFIG_FILE})")
    if runs.is_locked(path):
        raise UserError(f"run {path} is still being trained by another process: wait for it, or stop it first")
    return path


def resume_run(target: str, runs_dir: str | Path = "runs") -> dict[str, dict[str, Any]]:
    """Continue a run from its latest good checkpoint; returns {model name: metrics.json content}."""
    state = distributed_state()
    run_dir = Path(on_main_process(lambda: str(find_run(target, runs_dir))))
    cfg = config_from_dict(_read_config(run_dir))
    launched, saved = launched_precision(), cfg.train.mixed_precision
    if launched not in ("no", saved):  # config.yaml's `no` means no here, not "whatever accelerate asks for"
        raise UserError(f"run {run_dir} trains with mixed precision {saved}, but accelerate asks for {launched}: "
                        f"resume it with accelerate launch --mixed_precision {saved}")
    resolve_mixed_precision(cfg.train)  # fp16 recorded on a GPU machine is refused here before anything loads
    experiment = prepare_experiment(cfg)
    cfg = experiment.cfg
    ((_, spec),) = experiment.models
    data = experiment.data
    split_file = run_dir / runs.SPLIT_FILE
    recorded = json.loads(split_file.read_text()) if split_file.is_file() else {}
    if recorded.get("hash") not in (None, data.split["hash"]):
        raise UserError(f"the data of run {run_dir} changed (split hash {data.split['hash']} now, {recorded['hash']} "
                        "recorded): restore the original data to resume it")
    checkpoint = on_main_process(lambda: _str_or_none(choose_checkpoint(run_dir)))
    state.wait_for_everyone()
    result = run_one(cfg, spec, data, run_dir=run_dir, checkpoint=Path(checkpoint) if checkpoint else None)
    return {spec.name: result.metrics}


def _read_config(run_dir: Path) -> dict[str, Any]:
    where = run_dir / runs.CONFIG_FILE
    try:
        return runs.read_config(run_dir)
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"cannot read {where} ({err}): this run cannot be resumed") from None
    except ValueError:
        raise UserError(f"{where} is not a mapping: this run cannot be resumed") from None


def _str_or_none(path: Path | None) -> str | None:
    return str(path) if path is not None else None
