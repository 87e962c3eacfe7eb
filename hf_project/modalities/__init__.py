"""One skeleton for every data type; only the modality stage differs.

A stage is one module of this package (text.py, image.py, audio.py) whose top-level names implement
`ModalityStage` (a module satisfies a Protocol through its attributes, PEP 544). Training (`hf_project.training`,
`hf_project.search`), the run files and inference (`hf_project.inference`) reach a modality only through
`get_stage(modality)`, so adding a modality is one new module here plus its name in MODALITIES; nothing else
branches on the modality's name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self, cast, runtime_checkable

if TYPE_CHECKING:
    import torch
    from datasets import Dataset, DatasetDict

    from hf_project.config import ExperimentConfig
    from hf_project.data import PreparedData
    from hf_project.models.registry import ModelSpec

# Registration: the name of each stage module, in the order a data folder's files are matched against their suffixes.
MODALITIES = ("text", "image", "audio")


@runtime_checkable
class Frontend(Protocol):
    """A from-scratch model's input front-end (image.RowImageProcessor, audio.LogMelFrontend).

    It is small enough to live in the model config's `frontend` field (a JSON mapping naming its `modality`), so a
    saved model needs no processor files: `lstm_inputs` stores `to_frontend()`, `saved_processor` rebuilds it with
    `from_frontend(model.config.frontend)`. Round trip: `type(f).from_frontend(f.to_frontend()) == f`.
    """

    def to_frontend(self) -> dict[str, Any]:
        """The JSON-serialisable mapping stored as the model config's `frontend`."""
        ...

    @classmethod
    def from_frontend(cls, values: Mapping[str, Any]) -> Self:
        """The front-end a saved config's `frontend` mapping describes (unknown keys are ignored)."""
        ...


@runtime_checkable
class ModalityStage(Protocol):
    """What one modality does between raw examples and model inputs, in training and in inference.

    `processor` below is whatever `load_processor` (training) or `saved_processor` (inference) returns: a tokenizer,
    an image processor, a feature extractor, or a from-scratch model's `Frontend`. `settings` are the run's input
    settings from `input_settings` (e.g. max_length, max_duration_s), keyed like the config fields they come from.
    """

    TRAINER_OPTIONS: dict[str, Any]
    """TrainingArguments overrides the stage needs (e.g. keep the raw columns its on-the-fly transform reads)."""

    SPLITS_BATCHES: bool
    """Whether the collator pads a batch to its longest input (token sequences), so that `--batching split` may pad
    it as several length-sorted micro-batches instead (text.MicroBatchCollator); False for inputs of one size."""

    INPUT_SUFFIXES: tuple[str, ...]
    """Lower-case suffixes of files that each hold one input of this modality (an image, a clip): a data folder of
    such files is of this modality, and scripts/predict.py collects them from folders. Empty when inputs are not
    single files (text, read from table files)."""

    FEATURE: type | None
    """The datasets feature type of a column holding this modality's inputs (datasets.Image, datasets.Audio): a
    dataset with such a column is of this modality. None for text, the modality of plain columns."""

    PIPELINE_TAG: str
    """The Hugging Face task of a classifier of this modality (text-classification, ...): the model card's
    `pipeline_tag`."""

    # ---- data -----------------------------------------------------------------------------------------------------

    def load_folder(self, root: Path, split_dirs: Mapping[str, Path]) -> DatasetDict:
        """The provided splits of a data folder whose class sub-folders hold files of this modality, the class of a
        file being its folder's name. `split_dirs`: the folder of each split ({"train": root} when `root` has no
        train/validation/test folders)."""
        ...

    def split_inputs(self, rows: Dataset, column: str, split: str) -> Dataset:
        """The input column of one split's raw rows, alone and renamed to the modality's name (the input column of
        every prepared split); a UserError naming --<modality>_column when it does not hold this modality's data."""
        ...

    # ---- training -------------------------------------------------------------------------------------------------

    def load_processor(self, spec: ModelSpec, data: PreparedData, cfg: ExperimentConfig) -> Any:
        """The checkpoint's processor, or for the from-scratch LSTM its own front-end fitted on the training split
        only; what it records (max_length, max_duration_s) is saved with the model."""
        ...

    def prepare(self, data: PreparedData, processor: Any, cfg: ExperimentConfig) -> DatasetDict:
        """train / validation / test ready for the Trainer; augmentation, if any, on train only."""
        ...

    def input_facts(self, prepared: DatasetDict, cfg: ExperimentConfig) -> dict[str, Any]:
        """What manifest.json records of the prepared inputs, keyed by manifest entry (text: runs.TEXT_LENGTHS, the
        token lengths per split and the share truncated at max_length); empty for inputs of one fixed size. Logs
        them, and warns when the inputs lose much to the settings."""
        ...

    def collator(self, processor: Any) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
        """The Trainer's data collator: a list of prepared examples -> a batch of tensors."""
        ...

    def lstm_inputs(self, processor: Any, cfg: ExperimentConfig) -> dict[str, Any]:
        """LSTMConfig keyword arguments for the front-end (input_type, vocab_size / input_dim, frontend, ...);
        empty for a pretrained model's processor."""
        ...

    def describe_split(self, ds: Dataset) -> list[str]:
        """One string per row of a prepared split, for the `input` column of predictions_test.csv: the text itself,
        or the file an image/clip came from (a placeholder naming the row when it has none)."""
        ...

    def raw_inputs(self, ds: Dataset) -> list[Any]:
        """The inputs of a prepared split as Predictor.predict takes them (texts or text pairs, images, clips)."""
        ...

    def display_values(self, values: list[Any]) -> list[Any]:
        """The raw column values of a few examples as plots.draw_input / plot_sample_inputs draw them (texts and
        images as they are, a clip as its mono waveform at plots.SPECTROGRAM_RATE)."""
        ...

    # ---- inference ------------------------------------------------------------------------------------------------

    def saved_processor(self, model_config: Any, processor: Any, where: str) -> Any:
        """What turns raw inputs into a saved model's inputs: `processor` (what models.load_model found in the
        folder `where`, possibly None) or the front-end rebuilt from the config; a UserError naming `where` when
        the folder has neither."""
        ...

    def input_settings(self, run_config: Mapping[str, Any], model_config: Any, processor: Any,
                       where: str) -> dict[str, Any]:
        """The input settings inference must share with training: from the run's config.yaml (`run_config`, empty
        for a bare model folder), else what the saved processor or model config recorded; a UserError naming
        `where` when a setting the inputs need is recorded nowhere."""
        ...

    def read_inputs(self, path: Path, column: str | tuple[str, str]) -> list[Any]:
        """The inputs one existing file or folder given to scripts/predict.py holds (`column`: the column of a
        table file that holds them, or the two columns of sentence pairs); a UserError saying what this modality
        reads otherwise."""
        ...

    def check_inputs(self, inputs: Sequence[Any]) -> None:
        """A UserError naming the first input this modality cannot read (wrong type, missing file)."""
        ...

    def encode_inputs(self, inputs: Sequence[Any], processor: Any, settings: Mapping[str, Any]) -> list[Any]:
        """Per-input work done once, before batching (tokenising); inputs that are decoded only per batch (images,
        clips: bounded memory) are returned as they are."""
        ...

    def batch_order(self, encoded: Sequence[Any]) -> list[int] | None:
        """The order to batch encoded inputs in so a batch pads little (longest first), or None: keep their order
        (inputs of one fixed size)."""
        ...

    def collate_inputs(self, encoded: Sequence[Any], processor: Any,
                       settings: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """A batch of encoded inputs -> model input tensors, built exactly as evaluation builds them."""
        ...

    def describe_input(self, value: Any) -> str:
        """How one raw inference input is named in a predictions CSV: a text itself, a file by its path."""
        ...


def get_stage(modality: str) -> ModalityStage:
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}: valid ones are {', '.join(MODALITIES)}")
    return cast(ModalityStage, importlib.import_module(f"hf_project.modalities.{modality}"))


def file_modalities() -> tuple[str, ...]:
    """The modalities whose inputs are single files (INPUT_SUFFIXES), in MODALITIES order."""
    return tuple(m for m in MODALITIES if get_stage(m).INPUT_SUFFIXES)
