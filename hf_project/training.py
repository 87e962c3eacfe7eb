"""Train -> select on validation -> test once, for every model of an experiment, on one shared split."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import DatasetDict
from torch.utils.data import Sampler, SequentialSampler
from transformers import EarlyStoppingCallback, PreTrainedModel, Trainer, TrainingArguments, set_seed
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.trainer_callback import TrainerState
from transformers.trainer_utils import EvalLoopOutput, TrainOutput

from hf_project import baselines, runs
from hf_project.checkpoints import EpochStartRNG, training_finished
from hf_project.config import TENSORBOARD, ExperimentConfig, for_task
from hf_project.data import SPLITS, PreparedData, prepare_data
from hf_project.device import distributed_state, on_main_process, resolve_mixed_precision, use_cpu
from hf_project.errors import UserError
from hf_project.isolation import run_in_own_process
from hf_project.memory import PeakMemory
from hf_project.metrics import greater_is_better
from hf_project.modalities import get_stage
from hf_project.modalities.text import MICRO_BATCHES, MICRO_ORDER, MicroBatchCollator, longest_first
from hf_project.models import build_model, set_output_bias
from hf_project.models.registry import ModelSpec, check_modality, default_models, resolve
from hf_project.results import best_validation_metrics, write_results, write_run_inputs
from hf_project.tasks import SingleLabel, Task, task_for

logger = logging.getLogger(__name__)
# A full disk, a read-only file system or a folder we may not write to: the user's to fix, not a bug.
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


class ClassificationTrainer(Trainer):
    """The HF Trainer with the task's loss (optionally class-weighted); the loop itself is untouched."""

    def __init__(self, *args: Any, class_weights: torch.Tensor | None = None, task: Task | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.class_weights = class_weights
        self.task = task or SingleLabel()
        # Our own batch-mean loss for every batch, split or not: some models normalise theirs by num_items_in_batch,
        # others ignore it, and the Trainer must scale for gradient accumulation alike for all of them. The task's
        # loss for multi-label and regression, whatever loss the model's own head would take.
        self.own_loss = (class_weights is not None or isinstance(self.data_collator, MicroBatchCollator)
                         or type(self.task) is not SingleLabel)
        if self.own_loss:
            self.loss_is_scaled_for_ga = False  # a per-batch mean, like the default loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: D102
        if not self.own_loss and MICRO_BATCHES not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels")
        if MICRO_BATCHES in inputs:  # text.MicroBatchCollator: one batch padded as several length-sorted blocks
            logits = torch.cat([model(**block).logits for block in inputs[MICRO_BATCHES]])
            logits = logits[torch.argsort(inputs[MICRO_ORDER])]  # back to batch order, matching the labels
            outputs = SequenceClassifierOutput(logits=logits)
        else:
            outputs = model(**inputs)
            logits = outputs.logits
        weight = None if self.class_weights is None else self.class_weights.to(logits.device, logits.dtype)
        # The batch mean, as the models' own loss takes it: the gradient of the unsplit batch.
        loss = self.task.loss(logits, labels, weight)
        return (loss, outputs) if return_outputs else loss

    def _get_eval_sampler(self, eval_dataset):
        # Text is evaluated longest first, so each batch pads to nearly its own length (sequential batches of random
        # lengths pad almost every batch to max_length); evaluation_loop puts the predictions back in dataset order.
        # Several processes keep transformers' default sharding.
        if self.args.world_size > 1:
            return None
        order = length_order(eval_dataset)
        return SequentialSampler(eval_dataset) if order is None else EvalOrder(order)

    def evaluation_loop(self, dataloader, *args, **kwargs) -> EvalLoopOutput:  # noqa: D102
        output = super().evaluation_loop(dataloader, *args, **kwargs)
        order = EvalOrder.of(dataloader)
        return output if order is None else order.restore(output)

    def _load_best_model(self) -> None:
        # transformers 5 renames some architectures' weights on load (AST, ViT: attention.attention.query ->
        # attention.q_proj) and back on save, but the Trainer restores the best checkpoint with a plain
        # load_state_dict(strict=False), which silently keeps the last step's renamed tensors
        # (huggingface/transformers#43701). from_pretrained applies the renaming.
        if self.is_deepspeed_enabled or self.is_fsdp_enabled or not isinstance(self.model, PreTrainedModel):
            return super()._load_best_model()
        logger.info("restoring the best checkpoint %s", self.state.best_model_checkpoint)
        best = type(self.model).from_pretrained(self.state.best_model_checkpoint)
        self.model.load_state_dict(best.state_dict())


def length_order(dataset: Any) -> list[int] | None:
    """Row indices longest first (ties in row order) for tokenised text, None for other inputs."""
    columns = getattr(dataset, "column_names", None) or []
    if "input_ids" not in columns:
        return None
    return longest_first(dataset["length"] if "length" in columns else [len(x) for x in dataset["input_ids"]])


class EvalOrder(Sampler[int]):
    """Evaluation rows in a chosen order (longest text first); `restore` puts the predictions made in this order
    back in dataset order. The evaluation loop finds it on its dataloader: the order travels with the batches."""

    def __init__(self, order: list[int]) -> None:
        self.order = order

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)

    @classmethod
    def of(cls, dataloader: Any) -> EvalOrder | None:
        """The EvalOrder the batches of `dataloader` were drawn with (accelerate keeps it in its batch sampler)."""
        for sampler in (getattr(dataloader, "sampler", None),
                        getattr(getattr(dataloader, "batch_sampler", None), "sampler", None)):
            if isinstance(sampler, cls):
                return sampler
        return None

    def restore(self, output: EvalLoopOutput) -> EvalLoopOutput:
        if output.num_samples != len(self.order):
            return output
        restore = np.argsort(self.order)  # row order[k] was predicted k-th
        return output._replace(predictions=_take(output.predictions, restore),
                               label_ids=_take(output.label_ids, restore))


def _take(values: Any, index: np.ndarray) -> Any:
    if values is None:
        return None
    if isinstance(values, tuple | list):
        return type(values)(_take(v, index) for v in values)
    return values[index]


def training_arguments(
    cfg: ExperimentConfig, spec: ModelSpec, output_dir: Path, stage_options: dict[str, Any]
) -> TrainingArguments:
    t = cfg.train
    epochs = t.lstm_num_train_epochs if spec.from_scratch and t.lstm_num_train_epochs else t.num_train_epochs
    precision = resolve_mixed_precision(t)
    return TrainingArguments(
        output_dir=str(output_dir),
        seed=t.seed,
        num_train_epochs=epochs,
        max_steps=t.max_steps,
        learning_rate=t.lstm_learning_rate if spec.from_scratch else t.learning_rate,
        per_device_train_batch_size=t.per_device_train_batch_size,
        per_device_eval_batch_size=t.per_device_eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_ratio,  # a float below 1 is a fraction of the total steps in transformers 5
        eval_strategy=t.eval_strategy,
        eval_steps=t.eval_steps,
        save_strategy=t.eval_strategy,
        save_steps=t.eval_steps,
        save_total_limit=1,  # with load_best_model_at_end, the best checkpoint and the latest one are kept
        save_only_model=False,  # optimizer, scheduler and RNG states too: --resume continues exactly
        restore_callback_states_from_checkpoint=True,  # early stopping's patience counter survives a resume
        load_best_model_at_end=True,
        metric_for_best_model=t.metric_for_best_model,
        greater_is_better=greater_is_better(t.metric_for_best_model),
        logging_strategy="steps",
        logging_steps=t.logging_steps,
        logging_first_step=True,
        dataloader_num_workers=t.dataloader_num_workers,
        train_sampling_strategy="group_by_length" if t.batching == "group" and "length_column_name" in stage_options
        else "random",
        full_determinism=t.full_determinism,
        use_cpu=use_cpu(),
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        report_to=reporting(t.report_to),
        push_to_hub=False,
        disable_tqdm=False,
        **stage_options,
    )


def reporting(report_to: str) -> str:
    """--report_to as TrainingArguments takes it; a tracker that is not installed is a one-line error before the
    Trainer's own RuntimeError."""
    from transformers.integrations import is_tensorboard_available

    if report_to == TENSORBOARD and not is_tensorboard_available():
        raise UserError("--report_to tensorboard needs the tensorboard package: pip install tensorboard (it is in "
                        "requirements.txt), or leave --report_to out")
    return report_to


def log_curves_to(trainer: Trainer, folder: Path) -> None:
    """Point the Trainer's TensorBoard callback (--report_to tensorboard) at `folder`. transformers 5 has no
    TrainingArguments.logging_dir: the callback takes $TENSORBOARD_LOGGING_DIR when it is made, else
    <output_dir>/runs/<date_host>, inside the checkpoints folder that a finished run deletes."""
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback):
            callback.logging_dir = str(folder)


@dataclass
class Experiment:
    """What every model of an experiment shares: its configuration, the prepared data and split, and the models to
    train on it, as (name as given, resolved spec)."""

    cfg: ExperimentConfig
    data: PreparedData
    models: list[tuple[str, ModelSpec]]


@dataclass
class RunResult:
    """What one training run made: its run directory and the content of its metrics.json (empty on the processes
    that do not write files)."""

    run_dir: Path
    metrics: dict[str, Any]


def prepare_experiment(cfg: ExperimentConfig) -> Experiment:
    """The one assembly of an experiment, for finetune, search, resume and reproduce: the models resolved (unknown
    names fail before anything loads), the output folders checked, the data loaded and split once (by the main
    process first, so the datasets cache is written once), the models checked against its modality."""
    state = distributed_state()
    names = cfg.model.model_names
    specs = [resolve(name) for name in names]
    check_output_dirs(cfg)
    reporting(cfg.train.report_to)  # a tracker that is not installed fails before any data loads
    with state.main_process_first():
        data = prepare_data(cfg.data, cfg.data.split_seed)
    names, specs = models_for(data.modality, names, specs)
    if any(spec.linear for spec in specs):
        baselines.check_data(data)
    log_class_balance(data)
    # config.yaml records the task found in the data and the selection metric that follows from it
    return Experiment(for_task(cfg, data.task), data, list(zip(names, specs, strict=True)))


def run_experiment(cfg: ExperimentConfig) -> dict[str, dict[str, Any]]:
    """Every model of `cfg.model.model` on the same split; returns {model name: metrics.json content}."""
    state = distributed_state()  # before anything else, so that every process knows its rank
    # config.yaml records the precision actually used, wherever it was asked for.
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train,
                                                             mixed_precision=resolve_mixed_precision(cfg.train)))
    experiment = prepare_experiment(cfg)
    cfg = experiment.cfg
    # Each run's config.yaml names only its own model, so re-running it re-creates that one run.
    planned = [(seed, name, spec) for seed in cfg.train.seed_list for name, spec in experiment.models]
    # On a GPU torch's peak counter is reset per model, and several processes already share the runs between them.
    isolate = cfg.train.isolate_runs and len(planned) > 1 and use_cpu() and state.num_processes == 1
    results: dict[str, dict[str, Any]] = {}
    for seed, name, spec in planned:
        key = spec.name if len(cfg.train.seed_list) == 1 else f"{spec.name}-s{seed}"
        if isolate:
            logger.info("training %s in a process of its own (--no_isolate_runs: all in this one)", key)
            results[key] = run_in_own_process(run_one, cfg.for_run(name, seed), spec, experiment.data).metrics
        else:
            results[key] = run_one(cfg.for_run(name, seed), spec, experiment.data).metrics
    return results


def models_for(modality: str, names: list[str], specs: list[ModelSpec]) -> tuple[list[str], list[ModelSpec]]:
    """The models to train on data of this modality: those asked for (checked against it), or with --model left
    out the modality's offline pretrained model against the LSTM."""
    if not names:
        names = default_models(modality)
        logger.info("no --model given: %s, the offline pretrained %s model, against %s", names[0], modality, names[1])
        specs = [resolve(name) for name in names]
    for spec in specs:
        check_modality(spec, modality)
    return names, specs


def log_class_balance(data: PreparedData) -> None:
    key = "statistic" if data.task == "regression" else "label"
    width = max(len(str(row[key])) for row in data.class_balance)
    lines = [f"{'class' if data.task == 'single_label' else key:<{width}}  {'train':>9} {'valid':>9} {'test':>9}"]
    for row in data.class_balance:
        lines.append(f"{row[key]:<{width}}  " + " ".join(f"{row[split]:>9.4g}" if isinstance(row[split], float)
                                                         else f"{row[split]:>9}" for split in SPLITS))
    title = {"single_label": "class balance", "multi_label": "examples per label", "regression": "targets"}[data.task]
    logger.info("%s (%s):\n%s", title, data.name, "\n".join(lines))


def run_one(
    cfg: ExperimentConfig,
    spec: ModelSpec,
    data: PreparedData,
    run_dir: Path | None = None,
    checkpoint: Path | None = None,
) -> RunResult:
    """One model: a complete run directory, or a run marked failed and the error re-raised.

    `run_dir` continues an existing run (hf_project.resume), from `checkpoint` if it has a good one.
    """
    is_main = distributed_state().is_main_process
    given = run_dir
    # Every rank needs the same directory: the Trainer writes per-rank state into its checkpoints.
    run_dir = Path(on_main_process(lambda: str(given or _new_run_dir(cfg, data, spec))))
    try:
        with runs.run_lock(run_dir) if is_main else contextlib.nullcontext():  # tells a live run from a killed one
            if is_main:
                runs.set_status(run_dir, runs.STATUS_RUNNING)
                write_run_inputs(run_dir, cfg, data)
            if spec.linear:  # fitted by scikit-learn, without the Trainer (nothing to resume: fitted again)
                metrics = baselines.fit_and_test(cfg, spec, data, run_dir, is_main)
            else:
                metrics = train_and_test(cfg, spec, data, run_dir, is_main, checkpoint)
            if is_main:
                runs.set_status(run_dir, runs.STATUS_COMPLETE)  # last: a run killed before this never looks complete
                logger.info("run complete: %s", run_dir)
        return RunResult(run_dir, metrics)
    except runs.RunLocked as err:
        raise UserError(f"{err}: wait for it, or stop it first") from None
    except OSError as err:
        _mark_failed(run_dir, is_main)
        if err.errno in DISK_ERRNOS:
            raise UserError(
                f"cannot write {err.filename or 'the results'} ({err.strerror}): free some space or choose a writable "
                f"--runs_dir/--weights_dir; earlier results are untouched, and this run can be continued with "
                f"--resume {run_dir}"
            ) from None
        raise
    except BaseException:
        _mark_failed(run_dir, is_main)
        raise


def _new_run_dir(cfg: ExperimentConfig, data: PreparedData, spec: ModelSpec) -> Path:
    try:
        return runs.new_run_dir(cfg.train.runs_dir, data.name, spec.name, cfg.train.seed)
    except OSError as err:
        raise UserError(f"cannot create a run directory under {cfg.train.runs_dir} ({err.strerror}): choose another "
                        "with --runs_dir") from None


def _mark_failed(run_dir: Path, is_main: bool) -> None:
    if not is_main:
        return
    try:
        runs.set_status(run_dir, runs.STATUS_FAILED)
    except OSError as err:  # the disk that just failed may refuse this too; the status then stays `running`
        logger.warning("could not mark %s failed: %s", run_dir, err)


@dataclass
class ModelInputs:
    """One model's view of the prepared data: its modality stage, processor, TrainingArguments and the splits ready
    for the Trainer."""

    stage: Any
    processor: Any
    args: TrainingArguments
    prepared: DatasetDict


def prepare_inputs(cfg: ExperimentConfig, spec: ModelSpec, data: PreparedData, output_dir: Path) -> ModelInputs:
    """The modality stage's processor and inputs for this model, and its TrainingArguments (checkpoints to
    `output_dir`); seeded, so that what preparing consumes is the same for a run and for a search trial."""
    check_trainable(spec)
    set_seed(cfg.train.seed)
    stage = get_stage(data.modality)
    processor = stage.load_processor(spec, data, cfg)
    args = training_arguments(cfg, spec, output_dir, stage.TRAINER_OPTIONS)
    with args.main_process_first(desc="preparing inputs"):
        prepared = stage.prepare(data, processor, cfg)
    return ModelInputs(stage, processor, args, prepared)


def check_trainable(spec: ModelSpec) -> None:
    """Only Trainer models have training inputs and knobs to search; a linear baseline is fitted by run_one alone."""
    if spec.linear:
        raise UserError(f"{spec.name} is not trained by the Trainer and has nothing to search: its regularisation is "
                        f"already chosen on validation; run it with scripts/finetune.py --model {spec.name}")


def new_model(cfg: ExperimentConfig, spec: ModelSpec, data: PreparedData, inputs: ModelInputs) -> PreTrainedModel:
    """A freshly initialised classifier for these labels (the LSTM's front-end from the stage's processor), its head's
    biases set as the task starts them (multi-label: the labels' log-odds in train)."""
    task = task_for(cfg, data)
    model = build_model(spec, data.label_names, data.modality, inputs.stage.lstm_inputs(inputs.processor, cfg),
                        cfg.model, max_duration_s=cfg.data.max_duration_s, task=task)
    bias = task.initial_bias(data.references("train"))
    if bias is not None:
        set_output_bias(model, bias)
    return model


def train_and_test(
    cfg: ExperimentConfig,
    spec: ModelSpec,
    data: PreparedData,
    run_dir: Path,
    is_main: bool,
    checkpoint: Path | None = None,
) -> dict[str, Any]:
    started = time.time()
    # This model's own peak, from preparing its inputs to its test predictions, not the process's so far.
    with PeakMemory() as peak:
        inputs = prepare_inputs(cfg, spec, data, run_dir / runs.CHECKPOINTS_DIR)
        facts = inputs.stage.input_facts(inputs.prepared, cfg) if is_main else {}  # logged before training starts
        set_seed(cfg.train.seed)  # the initialisation must not depend on what preparing the data consumed
        model = new_model(cfg, spec, data, inputs)
        trainer = build_trainer(cfg, data, inputs, model=model)
        log_curves_to(trainer, run_dir / runs.TENSORBOARD_DIR)
        train_output, started_at = train(trainer, checkpoint)
        validation = best_validation_metrics(trainer, cfg.train.metric_for_best_model)
        if cfg.train.temperature_scaling or cfg.train.tune_threshold:  # fitted on validation, before test: both
            # are part of the selected model; one prediction of validation serves both
            logits = trainer.predict(inputs.prepared["validation"], metric_key_prefix="fit").predictions
        if cfg.train.temperature_scaling:  # before a threshold tuned on its outputs
            trainer.task = fit_temperature(trainer, logits, data)
        if cfg.train.tune_threshold:
            trainer.task = tune_threshold(trainer, logits, data, cfg.train.metric_for_best_model)
        test = trainer.predict(inputs.prepared["test"], metric_key_prefix="test")  # the one and only look at test
        memory = peak.reading()
    if not is_main:
        return {}
    return write_results(
        run_dir, cfg, spec, data, trainer, train_output, validation, test, time.time() - started, memory, started_at,
        input_facts=facts,
    )


def adopt(trainer: ClassificationTrainer, task: Task) -> Task:
    """The trainer's task from now on: its settings saved with the model, its metrics for what the trainer scores."""
    trainer.model.config.update(task.model_settings())
    trainer.compute_metrics = task.compute_metrics
    return task


def fit_temperature(trainer: ClassificationTrainer, logits: Any, data: PreparedData) -> Task:
    """Classification: one temperature for the selected model's validation `logits` (saved with the model, applied to
    every probability after: test, predictions_test.csv, the Predictor)."""
    task = adopt(trainer, trainer.task.with_temperature(data.references("validation"), logits))
    before, after = task.temperature_fit
    logger.info("temperature fitted on validation: T = %.4g (validation NLL %.4f -> %.4f)", task.temperature, before,
                after)
    return task


def tune_threshold(trainer: ClassificationTrainer, logits: Any, data: PreparedData, metric: str) -> Task:
    """Multi-label: the selected model's threshold chosen on its validation `logits` (saved with the model)."""
    outputs = trainer.task.outputs(logits)  # after the temperature, if one was fitted
    task = adopt(trainer, trainer.task.tune(np.asarray(data.references("validation")), outputs, metric))
    logger.info("threshold tuned on validation by %s: %g", metric, task.threshold)
    return task


def train(trainer: Trainer, checkpoint: Path | None) -> tuple[TrainOutput, int]:
    """Train from scratch, or continue exactly from `checkpoint` (weights, optimizer, scheduler, RNG states, early
    stopping counter and best-so-far all come back); also the global step the trainer itself started from."""
    if checkpoint is None or not training_finished(checkpoint):
        output = trainer.train(resume_from_checkpoint=None if checkpoint is None else str(checkpoint))
        # What the Trainer restored, not what we asked for: its own step count at the start of this call (the one
        # its train_loss and speed metrics are computed from).
        return output, trainer._initial_global_step
    # Saved after the last step (the run was killed while testing or writing results): nothing is left to train,
    # and trainer.train() would take one more step before it looks at the stop flag.
    logger.info("%s was saved after the last training step: restoring the best checkpoint only", checkpoint.name)
    trainer.state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))
    trainer.state.best_model_checkpoint = trainer.state.best_model_checkpoint or str(checkpoint)
    trainer._load_best_model()
    return TrainOutput(trainer.state.global_step, float("nan"), {}), trainer.state.global_step


def build_trainer(
    cfg: ExperimentConfig,
    data: PreparedData,
    inputs: ModelInputs,
    model: PreTrainedModel | None = None,
    model_init: Callable[..., PreTrainedModel] | None = None,
) -> ClassificationTrainer:
    """The one Trainer of the toolkit: trains on train and evaluates on validation, for a run's `model` or a search's
    `model_init` (one per trial)."""
    task = task_for(cfg, data)
    weights = None
    if cfg.train.class_weights:
        weights = torch.tensor(task.loss_weights(data.references("train"), data.num_labels), dtype=torch.float32)
    callbacks = [EarlyStoppingCallback(cfg.train.early_stopping_patience)] if cfg.train.early_stopping_patience else []
    callbacks.append(EpochStartRNG())  # an exact batch order when resumed in the middle of an epoch
    args, processor = inputs.args, inputs.processor
    collator = inputs.stage.collator(processor)
    if (cfg.train.batching == "split" and inputs.stage.SPLITS_BATCHES and use_cpu() and args.world_size <= 1
            and not resolve(cfg.model.model).from_scratch):
        # On a GPU one more forward pass costs more than the padding it saves, several processes (DDP) expect one
        # forward pass per backward, and the LSTM already keeps padding out of its recurrence (its time is the
        # number of steps, which splitting would add up): there, a batch pads to its longest text.
        collator = MicroBatchCollator(collator)
    return ClassificationTrainer(
        model=model,
        model_init=model_init,
        args=args,
        train_dataset=inputs.prepared["train"],
        eval_dataset=inputs.prepared["validation"],
        processing_class=processor if hasattr(processor, "save_pretrained") else None,
        data_collator=collator,
        compute_metrics=task.compute_metrics,
        callbacks=callbacks,
        class_weights=weights,
        task=task,
    )


def check_output_dirs(cfg: ExperimentConfig) -> None:
    for path in (cfg.train.runs_dir, cfg.train.weights_dir):
        p = Path(path)
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(
                f"cannot create output folder {p} ({err.strerror}): choose another with --runs_dir/--weights_dir"
            ) from None
