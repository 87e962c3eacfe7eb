"""Argument dataclasses, YAML loading and validation.

`--config file.yaml` sets the defaults, flags on the command line win, and an unknown key or flag is an
error. The resolved configuration of a run is saved as a flat YAML mapping of the same fields, so
`scripts/finetune.py --config runs/.../config.yaml` re-creates the run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser

from hf_project.errors import UserError
from hf_project.metrics import ALL_METRIC_NAMES, DEFAULT_METRIC, TASK_METRICS, TASKS
from hf_project.modalities import MODALITIES

DEFAULT_SEED = 2023
LSTM = "lstm"  # the from-scratch baseline's alias
# Train-time image augmentation when --random_resized_crop / --horizontal_flip are not given: chosen per model
# family on validation data of the builtin image sets (benchmarks/choose_augmentation.py; README, "Image
# augmentation"): on fashion_mnist and digits neither family gained from a flip or a crop, so both start without.
# Each run's config.yaml records the values it used.
AUGMENTATION_DEFAULTS = {
    "lstm": {"random_resized_crop": False, "horizontal_flip": False},
    "pretrained": {"random_resized_crop": False, "horizontal_flip": False},
}
MIXED_PRECISIONS = ("no", "bf16", "fp16")  # what a run records; `auto` resolves to one of them
TENSORBOARD = "tensorboard"  # transformers' name of its TensorBoard integration (--report_to)
REPORT_TO = ("none", TENSORBOARD)  # --report_to: the experiment trackers a run may log its curves to


@dataclass
class DataArguments:
    dataset: str = field(
        default="fortunes",
        metadata={
            "help": "Builtin name (fortunes, digits), a local csv/json/jsonl/parquet file, an image/audio folder "
            "(one sub-folder per class), or a Hugging Face hub dataset id."
        },
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Config name of a hub dataset."})
    train_file: str | None = field(default=None, metadata={"help": "Local training file (csv/json/jsonl/parquet)."})
    validation_file: str | None = field(default=None, metadata={"help": "Local validation file (optional)."})
    test_file: str | None = field(default=None, metadata={"help": "Local test file (optional)."})
    modality: str = field(
        default="auto", metadata={"help": "auto (from the dataset's features) | text | image | audio."}
    )
    text_column: str = field(default="text", metadata={"help": "Column holding the input text."})
    text_pair_column: str | None = field(
        default=None,
        metadata={"help": "Column holding the second text of a sentence pair (NLI, paraphrase, question/answer): "
                  "the model reads both texts together. Text data only."},
    )
    image_column: str = field(default="image", metadata={"help": "Column holding the images (image data)."})
    audio_column: str = field(default="audio", metadata={"help": "Column holding the audio (audio data)."})
    label_column: str = field(
        default="label",
        metadata={"help": "Column holding the label: a class, a list of labels (multi-label) or a number "
                  "(regression)."},
    )
    task: str = field(
        default="auto",
        metadata={"help": "auto | single_label | multi_label | regression. auto reads the label column: lists (or "
                  "strings split by --label_delimiter) make multi_label, anything else single_label; numeric targets "
                  "are a regression only when asked for with --task regression."},
    )
    label_delimiter: str | None = field(
        default=None,
        metadata={"help": "Multi-label data whose label column holds strings like 'a;b': the separator (e.g. ';')."},
    )
    split_seed: int = field(
        default=DEFAULT_SEED,
        metadata={"help": "Seed of the split; kept fixed when --seed/--seeds vary, so every run shares one split."},
    )
    test_fraction: float = field(
        default=0.2, metadata={"help": "Without a provided test split: the last fraction of the seeded shuffle."}
    )
    validation_fraction: float = field(
        default=0.1, metadata={"help": "Without a provided validation split: fraction of train carved out."}
    )
    stratify: bool = field(default=True, metadata={"help": "Carve validation per class (stratified)."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep only the first N training examples of the seeded split (budget)."}
    )
    max_eval_samples: int | None = field(
        default=None,
        metadata={"help": "Keep a seeded random N of the validation rows and N of the test rows (a budget for large "
                  "provided splits); fixed before training like the rest of the split."},
    )
    max_length: int = field(default=128, metadata={"help": "Text: truncate inputs to this many tokens."})
    random_resized_crop: bool | None = field(
        default=None,
        metadata={"help": "Image: random resized crop when training (never when evaluating). Default: per model "
                  "family (README); --no_random_resized_crop turns it off."},
    )
    crop_scale_min: float = field(
        default=0.5, metadata={"help": "Image: smallest area fraction kept by the random resized crop."}
    )
    horizontal_flip: bool | None = field(
        default=None,
        metadata={"help": "Image: random horizontal flip when training. Default: per model family (README); "
                  "--no_horizontal_flip turns it off."},
    )
    image_size: int | None = field(
        default=None,
        metadata={"help": "Image, pretrained models: resize images to this many pixels square instead of the "
                  "checkpoint's own input size (e.g. 112 for small images: about 4x less compute than 224)."},
    )
    lstm_image_size: int = field(
        default=28, metadata={"help": "Image, LSTM: images become this many rows of this many grey pixels."}
    )
    max_duration_s: float = field(
        default=5.0, metadata={"help": "Audio: random crop (train) or centre crop/pad (eval) to this many seconds."}
    )
    lstm_sampling_rate: int = field(default=16000, metadata={"help": "Audio, LSTM: resample to this rate."})
    lstm_n_mels: int = field(default=64, metadata={"help": "Audio, LSTM: mel bands of the log-mel frames."})
    cache_dir: str | None = field(
        default=None, metadata={"help": "Where tokenised data is cached (default ~/.cache/hf_project)."}
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.test_fraction < 1.0:
            raise UserError(f"--test_fraction must be in (0, 1), got {self.test_fraction}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise UserError(f"--validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if self.task not in ("auto", *TASKS):
            raise UserError(f"--task must be auto, {', '.join(TASKS[:-1])} or {TASKS[-1]}, got {self.task!r}")
        if self.label_delimiter == "":
            raise UserError("--label_delimiter is empty: give the separator of the labels, e.g. --label_delimiter ';'")
        if self.modality not in ("auto", *MODALITIES):
            raise UserError(f"--modality must be auto, {', '.join(MODALITIES[:-1])} or {MODALITIES[-1]}, got "
                            f"{self.modality!r}")
        if not 0.0 < self.crop_scale_min <= 1.0:
            raise UserError(f"--crop_scale_min must be in (0, 1], got {self.crop_scale_min}")
        if self.max_duration_s <= 0:
            raise UserError(f"--max_duration_s must be > 0, got {self.max_duration_s}")
        if self.max_length < 2:
            raise UserError(f"--max_length must be at least 2, got {self.max_length}")
        if self.max_eval_samples is not None and self.max_eval_samples < 2:
            raise UserError(f"--max_eval_samples must be at least 2, got {self.max_eval_samples}")
        if self.image_size is not None and self.image_size < 8:
            raise UserError(f"--image_size must be at least 8 pixels, got {self.image_size}")
        if self.max_train_samples is not None and self.max_train_samples < 2:
            raise UserError(f"--max_train_samples must be at least 2, got {self.max_train_samples}")


@dataclass
class ModelArguments:
    model: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated aliases (text: distilbert, bert, roberta, minilm, and tfidf_lr, a TF-IDF + "
            "logistic regression baseline with C chosen on validation; image: vit, convnext, resnet, mobilenet_v2; "
            "audio: wav2vec2, hubert, ast, whisper_tiny; any: lstm), hub ids or local model directories; each is "
            "trained in turn on the same split. Left out: the offline pretrained model of the dataset's modality "
            "(minilm, mobilenet_v2 or whisper_tiny) against lstm."
        },
    )
    lstm_vocab_size: int = field(default=20000, metadata={"help": "LSTM: vocabulary size of its tokenizer."})
    lstm_embedding_dim: int = field(default=128, metadata={"help": "LSTM: token embedding size."})
    lstm_hidden_size: int = field(default=128, metadata={"help": "LSTM: hidden size per direction."})
    lstm_num_layers: int = field(default=1, metadata={"help": "LSTM: number of stacked layers."})
    lstm_bidirectional: bool = field(default=True, metadata={"help": "LSTM: read the sequence both ways."})
    lstm_dropout: float = field(default=0.2, metadata={"help": "LSTM: dropout on embeddings and pooled state."})
    lstm_pooling: str = field(default="mean", metadata={"help": "LSTM: mean | max | last."})
    freeze_layers: int = field(
        default=0,
        metadata={
            "help": "Pretrained models: freeze the embeddings (everything before the first block) and the N lowest "
            "blocks; they get no gradients and no optimiser state, so a step costs less (the LSTM trains all its "
            "layers). 0: every layer trains."
        },
    )
    dropout: float | None = field(
        default=None,
        metadata={
            "help": "Pretrained models: every dropout probability of the checkpoint's config (hidden, attention, "
            "classifier) set to this value; 0 turns dropout off, which makes a CPU step cheaper. Left out: the "
            "checkpoint's own."
        },
    )

    def __post_init__(self) -> None:
        if self.model is not None and not self.model_names:
            raise UserError("--model is empty: name at least one model, e.g. --model minilm,lstm, or leave it out")
        if self.lstm_pooling not in ("mean", "max", "last"):
            raise UserError(f"--lstm_pooling must be mean, max or last, got {self.lstm_pooling!r}")
        if self.freeze_layers < 0:
            raise UserError(f"--freeze_layers counts blocks to freeze, got {self.freeze_layers}: use 0 or more")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise UserError(f"--dropout is a probability in [0, 1), got {self.dropout:g}")

    @property
    def model_names(self) -> list[str]:
        """The models asked for; empty when --model was left out (the dataset's modality then decides)."""
        return [m.strip() for m in (self.model or "").split(",") if m.strip()]


@dataclass
class TrainArguments:
    seed: int = field(
        default=DEFAULT_SEED, metadata={"help": "Seed of the initialisation, the data order and augmentation."}
    )
    seeds: str | None = field(
        default=None, metadata={"help": "Comma-separated seeds: repeat every model once per seed (e.g. 2023,2024)."}
    )
    num_train_epochs: float = field(default=3.0, metadata={"help": "Maximum number of epochs."})
    lstm_num_train_epochs: float | None = field(
        default=None,
        metadata={"help": "Maximum epochs of the LSTM (it is cheap per epoch); default: num_train_epochs."},
    )
    max_steps: int = field(default=-1, metadata={"help": "If > 0: stop after this many optimiser steps."})
    learning_rate: float = field(default=5e-5, metadata={"help": "Peak learning rate of pretrained models."})
    lstm_learning_rate: float = field(default=2e-3, metadata={"help": "Peak learning rate of the LSTM."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Training batch size per device."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Evaluation batch size per device."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Steps to accumulate before updating."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    warmup_ratio: float = field(default=0.06, metadata={"help": "Fraction of steps of linear warm-up."})
    eval_strategy: str = field(default="epoch", metadata={"help": "Evaluate on validation every 'epoch' or 'steps'."})
    eval_steps: int = field(default=200, metadata={"help": "With eval_strategy=steps: evaluate every N steps."})
    logging_steps: int = field(default=20, metadata={"help": "Log the training loss every N steps."})
    metric_for_best_model: str | None = field(
        default=None,
        metadata={"help": "Validation metric that selects the best checkpoint (and that early stopping and the search "
                  "follow). Default: the task's, macro_f1 (single_label), micro_f1 (multi_label) or rmse "
                  "(regression); loss works for every task."},
    )
    early_stopping_patience: int = field(
        default=2, metadata={"help": "Stop after N evaluations without improvement (0 disables)."}
    )
    class_weights: bool = field(
        default=False,
        metadata={"help": "Class-weighted loss, weights from the training split: per class for single_label "
                  "(cross-entropy), each label's pos_weight (negatives / positives) for multi_label."},
    )
    threshold: float = field(
        default=0.5, metadata={"help": "Multi-label: a label is predicted when its probability reaches this."}
    )
    tune_threshold: bool = field(
        default=False,
        metadata={"help": "Multi-label: after training, choose the threshold (0.05 to 0.95) that scores best on "
                  "validation by the selection metric; saved with the model and used on test."},
    )
    temperature_scaling: bool = field(
        default=False,
        metadata={"help": "Classification: after training, fit one temperature T on validation logits (the T that "
                  "minimises validation NLL of softmax(logits / T), or sigmoid for multi-label); saved with the "
                  "model and applied to test and inference probabilities. The predicted class does not change; a "
                  "multi-label threshold applies to the scaled probabilities (--tune_threshold tunes it after)."},
    )
    standardize_targets: bool = field(
        default=True,
        metadata={"help": "Regression: train on targets standardised with the training split's mean and standard "
                  "deviation (saved with the model; predictions and metrics are in the target's units)."},
    )
    runs_dir: str = field(default="runs", metadata={"help": "Root of the run directories."})
    weights_dir: str = field(default="weights", metadata={"help": "Where the best weights of each model go."})
    tag: str | None = field(default=None, metadata={"help": "Free label stored with the run."})
    dataloader_num_workers: int = field(default=0, metadata={"help": "Worker processes of the data loaders."})
    full_determinism: bool = field(
        default=False,
        metadata={"help": "Deterministic algorithms end to end (transformers' enable_full_determinism: "
                  "torch.use_deterministic_algorithms, deterministic cuDNN/cuBLAS); slower, for bit-exact GPU reruns."},
    )
    batching: str = field(
        default="split",
        metadata={"help": "Text batches. split: random batches, each padded as length-sorted micro-batches on a CPU "
                  "(the same gradient, less padding; on a GPU one padded batch). group: transformers' "
                  "group_by_length (texts of similar length together: fast, but not random when length goes with "
                  "the class). pad: random batches padded to their longest text."},
    )
    isolate_runs: bool = field(
        default=True,
        metadata={"help": "On a CPU (one process), train each model of a multi-model or multi-seed command in a "
                  "process of its own, so no model inherits another's memory (its peak memory is its own). "
                  "--no_isolate_runs trains them all in this process."},
    )
    mixed_precision: str = field(
        default="auto",
        metadata={"help": "auto | no | bf16 | fp16. auto: what `accelerate launch --mixed_precision X` or the "
                  "accelerate config file sets, else bf16 on a GPU that supports it, fp16 on older GPUs, and no (fp32) "
                  "on a CPU. bf16 works on CPUs too (fast only with avx512_bf16/AMX); fp16 needs a GPU."},
    )
    report_to: str = field(
        default="none",
        metadata={"help": "none | tensorboard. tensorboard: live training curves (losses, validation metrics, "
                  "learning rate) as TensorBoard event files in the run directory's tensorboard/ folder; watch them "
                  "with `tensorboard --logdir runs/`. Search trials never write them."},
    )

    def __post_init__(self) -> None:
        if self.eval_strategy not in ("epoch", "steps"):
            raise UserError(f"--eval_strategy must be 'epoch' or 'steps', got {self.eval_strategy!r}")
        if self.metric_for_best_model not in (None, *ALL_METRIC_NAMES, "loss"):
            raise UserError(
                f"--metric_for_best_model {self.metric_for_best_model!r} is unknown: use loss or one of "
                f"{', '.join(ALL_METRIC_NAMES)}"
            )
        if not 0.0 < self.threshold < 1.0:
            raise UserError(f"--threshold must be in (0, 1), got {self.threshold}")
        try:
            _ = self.seed_list
        except ValueError:
            raise UserError(f"--seeds must be comma-separated integers, got {self.seeds!r}") from None
        if self.lstm_num_train_epochs is not None and self.lstm_num_train_epochs <= 0:
            raise UserError("--lstm_num_train_epochs must be > 0")
        if self.num_train_epochs <= 0 and self.max_steps <= 0:
            raise UserError("--num_train_epochs must be > 0 (or set --max_steps)")
        if self.batching not in ("split", "group", "pad"):
            raise UserError(f"--batching must be split, group or pad, got {self.batching!r}")
        if self.mixed_precision not in (*MIXED_PRECISIONS, "auto"):
            raise UserError(f"--mixed_precision must be auto, no, bf16 or fp16, got {self.mixed_precision!r}")
        if self.report_to not in REPORT_TO:
            raise UserError(f"--report_to must be none or tensorboard, got {self.report_to!r}")


    @property
    def seed_list(self) -> list[int]:
        if not self.seeds:
            return [self.seed]
        parts = self.seeds if isinstance(self.seeds, list | tuple) else str(self.seeds).split(",")
        return [int(s) for s in parts if str(s).strip()]


ARG_CLASSES = (DataArguments, ModelArguments, TrainArguments)


@dataclass
class ExperimentConfig:
    data: DataArguments
    model: ModelArguments
    train: TrainArguments

    def to_dict(self) -> dict[str, Any]:
        """Flat mapping of every field: the same shape as the YAML files in configs/."""
        out: dict[str, Any] = {}
        for part in (self.data, self.model, self.train):
            out.update(dataclasses.asdict(part))
        return out

    def for_run(self, name: str, seed: int) -> ExperimentConfig:
        """The configuration of one run of a multi-model, multi-seed experiment, its augmentation resolved."""
        return dataclasses.replace(
            self,
            data=with_augmentation_defaults(self.data, from_scratch=name == LSTM),
            model=dataclasses.replace(self.model, model=name),
            train=dataclasses.replace(self.train, seed=seed, seeds=None),
        )


def for_task(cfg: ExperimentConfig, task: str) -> ExperimentConfig:
    """The configuration with the data's task (auto resolved) and the task's selection metric filled in; settings
    that do not fit the task are one-line errors."""
    metric = cfg.train.metric_for_best_model or DEFAULT_METRIC[task]
    if metric not in (*TASK_METRICS[task], "loss"):
        raise UserError(f"--metric_for_best_model {metric} is not a {task} metric: use loss or one of "
                        f"{', '.join(TASK_METRICS[task])}")
    if task == "regression" and cfg.train.class_weights:
        raise UserError("--class_weights weights classes, and a regression has none: leave --class_weights out")
    if task != "multi_label" and cfg.train.tune_threshold:
        raise UserError(f"--tune_threshold tunes the threshold of multi-label predictions, and this is {task} data: "
                        "leave it out (or pass --task multi_label)")
    if task == "regression" and cfg.train.temperature_scaling:
        raise UserError("--temperature_scaling calibrates class probabilities, and a regression has none: leave "
                        "--temperature_scaling out")
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, task=task),
                               train=dataclasses.replace(cfg.train, metric_for_best_model=metric))


def augmentation_defaults(from_scratch: bool) -> dict[str, bool]:
    return AUGMENTATION_DEFAULTS[LSTM if from_scratch else "pretrained"]


def with_augmentation_defaults(data: DataArguments, from_scratch: bool) -> DataArguments:
    """Crop and flip settings left unset take the model family's defaults; those given are kept."""
    unset = {k: v for k, v in augmentation_defaults(from_scratch).items() if getattr(data, k) is None}
    return dataclasses.replace(data, **unset) if unset else data


def _field_names() -> set[str]:
    return {f.name for cls in ARG_CLASSES for f in dataclasses.fields(cls)}


def read_yaml_mapping(path: Path, what: str, missing_hint: str, mapping_hint: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping; a missing file, bad YAML or another shape is a one-line error."""
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist: {missing_hint}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{what} {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"{what} {path} must be a mapping {mapping_hint}")
    return data


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    data = read_yaml_mapping(path, "config file", "check the path given to --config",
                             "of argument names to values")
    unknown = sorted(set(data) - _field_names())
    if unknown:
        raise UserError(
            f"config file {path} has unknown key(s) {', '.join(unknown)}: "
            "see `scripts/finetune.py --help` for the valid ones"
        )
    return data


def _split_config_flag(argv: list[str]) -> tuple[str | None, list[str]]:
    rest, config = [], None
    it = iter(argv)
    for arg in it:
        if arg == "--config":
            config = next(it, None)
            if config is None:
                raise UserError("--config needs a file path, e.g. --config configs/demo.yaml")
        elif arg.startswith("--config="):
            config = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return config, rest


def make_parser(*extra: type) -> HfArgumentParser:
    """The experiment's flags, plus those of `extra` dataclasses (a script's own, e.g. the search's --trials)."""
    parser = HfArgumentParser((*ARG_CLASSES, *extra), allow_abbrev=False)  # a typo must not match a longer flag
    parser.add_argument("--config", help="YAML file of defaults; flags given on the command line win.")
    # HfArgumentParser adds --no_X only for fields that default to True; these two default to the model family's.
    # A bare --X (no value) means true, as for the other switches.
    for name in AUGMENTATION_DEFAULTS[LSTM]:
        action = next(a for a in parser._actions if a.dest == name)
        action.nargs, action.const = "?", True
        parser.add_argument(f"--no_{name}", dest=name, action="store_false", help=f"Same as --{name} false.")
    return parser


def parse_args(argv: list[str] | None = None) -> ExperimentConfig:
    """Parse `--config file.yaml` plus flags. Unknown flags exit through argparse with status 2."""
    return parse_args_with(argv)[0]


def parse_args_with(argv: list[str] | None, *extra: type) -> tuple[Any, ...]:
    """(ExperimentConfig, one instance per `extra` dataclass). The YAML holds experiment keys only; the extra
    dataclasses' flags come from the command line."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    config_path, rest = _split_config_flag(argv)
    parser = make_parser(*extra)
    if config_path:
        parser.set_defaults(**load_yaml(config_path))
    try:
        data, model, train, *others = parser.parse_args_into_dataclasses(args=rest)
    except ValueError as err:  # HfArgumentParser reports unused flags this way
        raise UserError(f"{err}: see --help for the valid flags") from None
    return (ExperimentConfig(data=data, model=model, train=train), *others[: len(extra)])


def config_from_dict(values: dict[str, Any]) -> ExperimentConfig:
    """Build a configuration from a flat mapping (a saved config.yaml); unknown keys are an error."""
    unknown = sorted(set(values) - _field_names())
    if unknown:
        raise UserError(f"unknown configuration key(s) {', '.join(unknown)}")
    parts = []
    for cls in ARG_CLASSES:
        names = {f.name for f in dataclasses.fields(cls)}
        parts.append(cls(**{k: v for k, v in values.items() if k in names}))
    return ExperimentConfig(*parts)
