"""One skeleton for every data type; only the modality stage differs.

Each stage module (text.py, image.py, audio.py) provides the same five things, used in this order by
`hf_project.training`:

    TRAINER_OPTIONS: dict                              TrainingArguments overrides the stage needs
    load_processor(spec, data, cfg) -> processor       tokenizer | image processor | feature extractor, or for
                                                       the from-scratch LSTM its own front-end processor
    prepare(data, processor, cfg) -> DatasetDict       train / validation / test ready for the Trainer
                                                       (train-time augmentation only on train)
    collator(processor) -> callable                    list of examples -> batch of tensors
    lstm_inputs(processor, cfg) -> dict                LSTMConfig keyword arguments for the front-end
                                                       (input_type, vocab_size / input_dim, frontend, ...)
"""

from __future__ import annotations

import importlib
from types import ModuleType

MODALITIES = ("text", "image", "audio")


def get_stage(modality: str) -> ModuleType:
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}: valid ones are {', '.join(MODALITIES)}")
    return importlib.import_module(f"hf_project.modalities.{modality}")
