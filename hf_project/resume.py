"""Continuing a killed or failed run in its own run directory, from its latest good checkpoint.

    python scripts/finetune.py --resume runs/<dataset>/<model>/<run>
    python scripts/finetune.py --resume last [--runs_dir runs]

The run's own config.yaml gives every setting. The Trainer writes a checkpoint (weights, optimizer, scheduler,
RNG states, trainer_state.json last) at every evaluation, straight into its final folder, so a kill can leave the
newest one half-written: such a checkpoint is detected, removed, and the one before it is used. Without any good
checkpoint the run starts over, in the same directory.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import shutil
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from hf_project import runs
from hf_project.errors import UserError

logger = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
RUN_NAME_RE = re.compile(r"^(\d{8}-\d{6})(?:-(\d+))?-s")
# What the Trainer needs to continue exactly where it stopped (save_only_model=False writes them all).
STATE_FILES = ("optimizer.pt", "scheduler.pt")
RESUME_FLAGS = ("--resume", "--runs_dir")


@dataclass
class ResumeArguments:
    resume: str | None = field(
        default=None,
        metadata={"help": "Continue a killed or failed run: its run directory, or `last` (the newest run under "
                  "--runs_dir that is not complete). It keeps the settings of its own config.yaml, so no other "
                  "flag may be given (only --runs_dir, for `last`)."},
    )


class EpochStartRNG(TrainerCallback, ExportableState):
    """Keeps the CPU RNG state of the start of the current epoch in every checkpoint (trainer_state.json).

    The length-grouped sampler shuffles with the global RNG when the epoch's iterator starts, and the Trainer puts a
    checkpoint's RNG state back only after skipping the batches already trained: resumed mid-epoch (evaluation every
    N steps), the rest of that epoch would come from another shuffle. Set back at the start of the resumed epoch,
    the shuffle is the same; the Trainer's own restore follows. An uninterrupted run draws nothing from it.
    """

    def __init__(self) -> None:
        # Both set when restored from a checkpoint, used once at the next epoch start, then forgotten.
        self.resume_rng: str | None = None  # the start of the epoch the checkpoint was saved in
        self.checkpoint_rng: str | None = None  # the moment it was saved (as in its rng_state.pth)
        self.epoch_start_rng: str | None = None

    def on_epoch_begin(self, args: Any, state: Any, control: Any, train_dataloader: Any = None,
                       **kwargs: Any) -> None:
        if self.resume_rng is not None:
            # Saved at an epoch's end, the next epoch starts from the checkpoint's own state (the Trainer restores
            # it before the shuffle too); saved inside one, that epoch starts again from its recorded start.
            inside = _inside_epoch(args, state, train_dataloader) or self.checkpoint_rng is None
            torch.set_rng_state(_decode_rng(self.resume_rng if inside else self.checkpoint_rng))
            self.resume_rng = self.checkpoint_rng = None
        self.epoch_start_rng = _encode_rng(torch.get_rng_state())

    def state(self) -> dict[str, Any]:
        return {"args": {}, "attributes": {"resume_rng": self.epoch_start_rng,
                                           "checkpoint_rng": _encode_rng(torch.get_rng_state())}}


def _inside_epoch(args: Any, state: Any, train_dataloader: Any) -> bool:
    """Whether the Trainer continues inside an epoch, by its own rule (steps done modulo update steps per epoch)."""
    try:
        batches = len(train_dataloader)
    except TypeError:
        return True
    accumulation = args.gradient_accumulation_steps
    per_epoch = max(batches // accumulation + int(batches % accumulation > 0), 1)
    return state.global_step % per_epoch != 0


def _encode_rng(rng: torch.Tensor) -> str:
    return base64.b64encode(rng.numpy().tobytes()).decode()


def _decode_rng(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)


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
        return max(candidates, key=_started)
    path = Path(target)
    if not (path / "config.yaml").is_file() or not (path / "status").is_file():
        raise UserError(f"{path} is not a run directory (no config.yaml or status): give --resume "
                        "runs/<dataset>/<model>/<run>, or --resume last")
    if runs.read_status(path) == runs.STATUS_COMPLETE:
        raise UserError(f"run {path} is complete: there is nothing to resume (to train it again, start a new run "
                        f"with --config {path / 'config.yaml'})")
    if runs.is_locked(path):
        raise UserError(f"run {path} is still being trained by another process: wait for it, or stop it first")
    return path


def _started(run_dir: Path) -> tuple[str, int, str]:
    # <UTC timestamp>[-n]-s<seed>: the n-th directory made within the same second is newer than the plain one.
    match = RUN_NAME_RE.match(run_dir.name)
    if not match:
        return ("", 0, str(run_dir))
    return (match.group(1), int(match.group(2) or 0), str(run_dir))


def read_trainer_state(checkpoint: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why `checkpoint` cannot be resumed from, or None when it is complete."""
    match = CHECKPOINT_RE.match(checkpoint.name)
    if not match or not checkpoint.is_dir():
        return "not a checkpoint directory"
    state = read_trainer_state(checkpoint)
    if state is None:
        return "trainer_state.json is missing or cut short (killed while writing the checkpoint)"
    if state.get("global_step") != int(match.group(1)):
        return f"trainer_state.json is for step {state.get('global_step')}"
    try:
        json.loads((checkpoint / "config.json").read_text())
    except (OSError, ValueError):
        return "config.json is missing or cut short"
    problem = _weights_problem(checkpoint)
    if problem:
        return problem
    rng_files = sorted(checkpoint.glob("rng_state*.pth"))
    if not rng_files:
        return "rng_state.pth is missing"
    optional = [checkpoint / "scaler.pt"] if (checkpoint / "scaler.pt").exists() else []
    for path in [*(checkpoint / name for name in STATE_FILES), *rng_files, *optional]:
        if not _is_torch_file(path):
            return f"{path.name} is missing or cut short"
    return None


def _weights_problem(checkpoint: Path) -> str | None:
    index = checkpoint / "model.safetensors.index.json"
    if index.exists():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError):
            return f"{index.name} is cut short"
    elif (checkpoint / "model.safetensors").exists() or not (checkpoint / "pytorch_model.bin").exists():
        shards = ["model.safetensors"]
    else:
        return None if _is_torch_file(checkpoint / "pytorch_model.bin") else "pytorch_model.bin is cut short"
    for shard in shards:
        if not _is_complete_safetensors(checkpoint / shard):
            return f"{shard} is missing or cut short"
    return None


def _is_complete_safetensors(path: Path) -> bool:
    """The header parses and the file is exactly as long as the tensors it announces."""
    try:
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(header_len))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        return path.stat().st_size == 8 + header_len + end
    except (OSError, struct.error, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return False


def _is_torch_file(path: Path) -> bool:
    # torch.save writes a zip archive whose directory sits at the very end: a cut-short file has none.
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def training_finished(checkpoint: Path) -> bool:
    """Saved after the last training step (max steps or early stopping), so nothing is left to train."""
    state = read_trainer_state(checkpoint) or {}
    control = (state.get("stateful_callbacks") or {}).get("TrainerControl") or {}
    return bool((control.get("args") or {}).get("should_training_stop"))


def choose_checkpoint(run_dir: Path) -> Path | None:
    """The latest good checkpoint of the run (main process only); damaged ones are removed, and so is every
    result file of the killed attempt that the Trainer rewrites without a temp file (model/).

    A checkpoint is only good if the best checkpoint it names is good too: the best model is restored from it at
    the end. Its path is rewritten to this run directory as given now, since the run may be resumed from another
    working directory than the one it started in.
    """
    folder = run_dir / "checkpoints"
    found = sorted((p for p in folder.glob("checkpoint-*") if CHECKPOINT_RE.match(p.name)),
                   key=lambda p: int(p.name.split("-")[1]), reverse=True) if folder.is_dir() else []
    problems = {p: checkpoint_problem(p) for p in found}
    chosen = None
    for path in found:
        if problems[path]:
            logger.warning("checkpoint %s is skipped: %s", path, problems[path])
            continue
        best = (read_trainer_state(path) or {}).get("best_model_checkpoint")
        best_path = folder / Path(best).name if best else None
        if best_path is not None and problems.get(best_path, "it is missing"):
            problems[path] = f"the best checkpoint it names, {best_path.name}, is damaged or missing"
            logger.warning("checkpoint %s is skipped: %s", path, problems[path])
            continue
        chosen = path
        break
    shutil.rmtree(run_dir / "model", ignore_errors=True)
    if chosen is None:
        if found:
            logger.warning("no complete checkpoint in %s: the run starts over", folder)
        shutil.rmtree(folder, ignore_errors=True)
        return None
    for path in found:
        if problems[path]:
            shutil.rmtree(path, ignore_errors=True)
    _point_best_checkpoint_here(chosen, folder)
    logger.info("resuming %s from %s (step %s)", run_dir, chosen.name, chosen.name.split("-")[1])
    return chosen


def _point_best_checkpoint_here(checkpoint: Path, folder: Path) -> None:
    state = read_trainer_state(checkpoint)
    best = state.get("best_model_checkpoint") if state else None
    if best and best != str(folder / Path(best).name):
        state["best_model_checkpoint"] = str(folder / Path(best).name)
        # The layout TrainerState.save_to_json writes.
        runs.atomic_write_text(checkpoint / "trainer_state.json", json.dumps(state, indent=2, sort_keys=True) + "\n")


def resume_run(target: str, runs_dir: str | Path = "runs") -> dict[str, dict[str, Any]]:
    """Continue a run from its latest good checkpoint; returns {model name: metrics.json content}."""
    from hf_project.config import config_from_dict
    from hf_project.data import prepare_data
    from hf_project.models.registry import check_modality, resolve
    from hf_project.training import distributed_state, on_main_process, resolve_mixed_precision, run_one

    state = distributed_state()
    run_dir = Path(on_main_process(lambda: str(find_run(target, runs_dir))))
    cfg = config_from_dict(_read_config(run_dir))
    launched, saved = os.environ.get("ACCELERATE_MIXED_PRECISION", "no").lower(), cfg.train.mixed_precision
    if launched not in ("no", saved):  # config.yaml's `no` means no here, not "whatever accelerate asks for"
        raise UserError(f"run {run_dir} trains with mixed precision {saved}, but accelerate asks for {launched}: "
                        f"resume it with accelerate launch --mixed_precision {saved}")
    resolve_mixed_precision(cfg.train)  # fp16 recorded on a GPU machine is refused here before anything loads
    spec = resolve(cfg.model.model)
    with state.main_process_first():
        data = prepare_data(cfg.data, cfg.data.split_seed)
    recorded = (json.loads((run_dir / "split.json").read_text()) if (run_dir / "split.json").is_file() else {})
    if recorded.get("hash") not in (None, data.split["hash"]):
        raise UserError(f"the data of run {run_dir} changed (split hash {data.split['hash']} now, {recorded['hash']} "
                        "recorded): restore the original data to resume it")
    check_modality(spec, data.modality)
    checkpoint = on_main_process(lambda: _str_or_none(choose_checkpoint(run_dir)))
    state.wait_for_everyone()
    metrics = run_one(cfg, spec, data, run_dir=run_dir, checkpoint=Path(checkpoint) if checkpoint else None)
    return {spec.name: metrics}


def _read_config(run_dir: Path) -> dict[str, Any]:
    import yaml

    try:
        values = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"cannot read {run_dir / 'config.yaml'} ({err}): this run cannot be resumed") from None
    if not isinstance(values, dict):
        raise UserError(f"{run_dir / 'config.yaml'} is not a mapping: this run cannot be resumed")
    return values


def _str_or_none(path: Path | None) -> str | None:
    return str(path) if path is not None else None
