"""A run's Trainer checkpoints: which one is complete, which one to continue from, and the RNG state that makes
a resumed epoch draw the same batches.

The Trainer writes a checkpoint (weights, optimizer, scheduler, RNG states, trainer_state.json last) at every
evaluation, straight into its final folder, so a kill can leave the newest one half-written: `choose_checkpoint`
detects it, removes it, and picks the one before it.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import shutil
import struct
import zipfile
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from hf_project import runs

logger = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
# What the Trainer needs to continue exactly where it stopped (save_only_model=False writes them all).
STATE_FILES = ("optimizer.pt", "scheduler.pt")


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
    folder = run_dir / runs.CHECKPOINTS_DIR
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
