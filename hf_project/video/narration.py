"""What the video says: one narration per slide, drafted from the report's numbers, and the narration file the
author edits (one `[slide]` section per slide)."""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hf_project import runs
from hf_project.compare import MINUS, p_text, stat_text
from hf_project.errors import UserError
from hf_project.metrics import greater_is_better
from hf_project.report import MANY_CLASSES, METRIC_TITLES, PROPORTIONS, Report, Run, fmt_params
from hf_project.video.notebook import NotebookCell, Output
from hf_project.video.render import MIN_SLIDE_SECONDS
from hf_project.video.slides import SAMPLE_TEXT_CLASSES
from hf_project.video.talk import Presenter

# {each} says how the examples are chosen: class by class for single-label data (texts: a few classes, by their test
# rows, as slides.sample_texts picks them), else none.
SAMPLES_NARRATION = {
    "text": "Here are a few test texts{each}, as the models read them before tokenisation.",
    "image": "Here are a few training images{each}, as they are stored, before resizing or augmentation.",
    "audio": "Here are a few training clips{each}, drawn as log-mel spectrograms: time runs from left to "
             "right, pitch from bottom to top, and brighter means louder.",
}
# A second test score of the winner, beside the selection metric, per task: (metric, sentence with {value}).
SECOND_SCORES = {
    "single_label": ("accuracy", "Test accuracy is {value}."),
    "multi_label": ("subset_accuracy", "Its subset accuracy, the share of test examples whose labels are all exactly "
                                       "right, is {value}."),
    "regression": ("mae", "Its mean absolute error is {value}."),
}


def _spoken(value: float | None, other: float | None = None) -> str:
    """A score as a speech synthesiser reads it well: 0.532 -> '0.53'; more digits where `other` would sound equal."""
    if value is None:
        return "not available"
    digits = 2
    while other is not None and digits < 4 and round(value, digits) == round(other, digits):
        digits += 1
    return f"{value:.{digits}f}"


def title(report: Report, presenter: Presenter) -> str:
    """Who presents first (the course asks for it), then what is compared. Missing fields are said as their
    placeholders, which the narration file asks the author to replace."""
    models = [g.label for g in report.groups]
    return (f"Presented by {presenter.shown_name}, student number {presenter.spoken_number}. This presentation "
            f"compares {len(models)} models for {report.modality} {report.task_name} on the {report.dataset} data set: "
            f"{', '.join(models)}. Everything shown comes from our training runs.")


def data(report: Report) -> str:
    ref = report.reference
    sizes = ref.manifest["dataset"]["sizes"]
    singular, many = report.input_nouns
    singular = "audio clip" if report.modality == "audio" else singular
    split = (f"The data set has {sum(sizes.values()):,} {many}, split once with seed {ref.split_seed} into "
             f"{sizes['train']:,} for training, {sizes['validation']:,} for validation and {sizes['test']:,} for "
             "testing. ")
    labels = len(ref.manifest["label_names"])
    if report.task == "regression":
        stats = ref.target_statistics()
        return (f"The task is to predict {ref.target_name}, a number, from each {singular}. " + split
                + f"In training, {ref.target_name} has mean {_spoken(stats['mean']['train'])} and standard deviation "
                f"{_spoken(stats['std']['train'])}, from {_spoken(stats['min']['train'])} to "
                f"{_spoken(stats['max']['train'])}. Models are selected by {METRIC_TITLES[report.selection_metric]}"
                + ("." if greater_is_better(report.selection_metric) else ", where lower is better."))
    train = sorted(ref.class_counts(), key=lambda c: -c["train"])
    if report.task == "multi_label":
        mean = sum(c["train"] for c in train) / max(1, sizes["train"])
        return (f"The task is to tag each {singular} with any of {labels} labels; a training {singular} carries "
                f"{mean:.1f} labels on average. " + split + label_sentence(train, report.selection_metric))
    imbalance = train[0]["train"] / max(1, train[-1]["train"])
    return (f"The task is to assign each {singular} one of {labels} classes. " + split
            + balance_sentence(train, imbalance, report.selection_metric))


def balance_sentence(train: list[dict[str, Any]], imbalance: float, metric: str) -> str:
    """The class balance in a sentence; near-equal classes are not called imbalanced."""
    if imbalance < 1.5:
        return (f"The classes are about equally frequent ({train[-1]['train']:,} to {train[0]['train']:,} training "
                f"examples each); models are selected by {METRIC_TITLES[metric]}.")
    return (f"The classes are {'strongly ' if imbalance > 10 else ''}imbalanced: the largest, {train[0]['label']}, "
            f"has {train[0]['train']:,} training examples, the smallest, {train[-1]['label']}, "
            f"{train[-1]['train']:,}. This is why we select models by {METRIC_TITLES[metric]}, which weighs every "
            "class equally.")


def label_sentence(train: list[dict[str, Any]], metric: str) -> str:
    """How often the labels of multi-label data occur, most frequent first, and the metric models are selected by."""
    return (f"The most frequent label, {train[0]['label']}, is on {train[0]['train']:,} training examples, the rarest, "
            f"{train[-1]['label']}, on {train[-1]['train']:,}. Models are selected by {METRIC_TITLES[metric]}"
            + {"micro_f1": ", which pools every label decision, so frequent labels weigh more.",
               "macro_f1": ", which weighs every label equally."}.get(metric, "."))


def samples(report: Report) -> str:
    if report.task != "single_label":
        each = (", each with its labels" if report.task == "multi_label" else
                f", each with its {report.reference.target_name}")
        return SAMPLES_NARRATION[report.modality].format(each=each if report.modality == "text" else "")
    classes = len(report.reference.manifest["label_names"])
    shown = min(classes, SAMPLE_TEXT_CLASSES) if report.modality == "text" else classes
    each = " of each class" if shown == classes else f" of {shown} of the {classes} classes"
    return SAMPLES_NARRATION[report.modality].format(each=each)


def models(report: Report) -> str:
    parts = []
    for g in report.groups:
        run = g.first
        params = run.manifest["parameters"]["total"]
        hyper = run.hyperparameters()
        if run.family == "linear":
            fit = run.linear
            parts.append(f"{g.label} is the simple baseline: a logistic regression on "
                         f"{fit.get('num_features', 0):,} TF-IDF word features, its regularisation chosen on "
                         f"validation (C of {fit.get('regularization', {}).get('C', 0):g})")
            continue
        kind = "trained from scratch" if run.from_scratch else "fine-tuned from a pretrained checkpoint"
        parts.append(f"{g.label} has {fmt_params(params).replace('M', ' million').replace('k', ' thousand')} "
                     f"parameters, reads {spoken_input(run)} and is {kind}, with learning rate "
                     f"{hyper['learning rate']:g} for up to {hyper['epochs (max)']:g} epochs")
    neural = [g for g in report.groups if g.first.family != "linear"]
    if not neural:
        return "; ".join(parts) + "."
    batch = neural[0].first.hyperparameters()["batch size"]
    return ("; ".join(parts) + f". {'All' if len(neural) == len(report.groups) else 'The neural models'} use batch "
            f"size {batch}, AdamW, warm-up and early stopping on validation {METRIC_TITLES[report.selection_metric]}.")


def spoken_input(run: Run) -> str:
    """Run.input_summary as a speech synthesiser reads it well: '32×32 RGB' -> '32 by 32 RGB images'."""
    text = run.input_summary().replace("×", " by ").replace("≤", "texts of up to ").replace("kHz", "kilohertz")
    if run.modality == "image":
        return text.replace(" grey rows", " grey images, row by row") if "rows" in text else text + " images"
    if run.modality == "audio":
        text = text.replace(", ", " at ")
        return "the " + text if text.startswith("waveform") else text
    return text


def cell(cell: NotebookCell, first: bool, notebook: str, described: bool = True) -> str:
    """A notebook slide: the section of the cell and (when `described`) the Markdown before it, what the cell does,
    then what it showed when run. The first one says which notebook is run, and on what."""
    text = f"Now the notebook {Path(notebook).stem}, run on these runs. " if first else ""
    if cell.heading:
        text += f"{cell.heading[0].upper() + cell.heading[1:]}. "
    description = first_sentence(spoken_markdown(cell.description), CELL_WORDS) if described else ""
    if description:
        text += description + " "
    return text + output_sentence(cell.outputs)


CELL_WORDS = 14  # of the Markdown description a notebook slide speaks: the slide shows the rest
PRINTED_WORDS = 12  # of a printed line it reads out


def spoken_markdown(text: str) -> str:
    """Markdown as a speech synthesiser reads it well: no emphasis or code marks, no link targets, no asides in
    parentheses."""
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"`([^`]*)`", lambda m: m.group(1).replace("_", " "), text)
    text = re.sub(r"\*\*|__|(?<!\w)[*_]|[*_](?!\w)", "", text)
    while re.search(r"\([^()]*\)", text):
        text = re.sub(r"\s*\([^()]*\)", "", text)
    return " ".join(text.split())


def first_sentence(text: str, max_words: int) -> str:
    """The first sentence of `text`; when longer than `max_words` words, up to its last clause (cut at ; : or ,)
    within them, or nothing when that clause would be too short to say anything."""
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0].strip()
    words = sentence.split()
    if len(words) <= max_words:
        return sentence if not sentence or sentence[-1] in ".!?" else sentence.rstrip(",;:") + "."
    head = " ".join(words[:max_words])
    cut = max(head.rfind(";"), head.rfind(":"), head.rfind(","))
    return head[:cut].rstrip() + "." if cut > len(head) // 3 else ""


def output_sentence(outputs: Sequence[Output]) -> str:
    """What a cell showed, in a sentence: the first line it printed that reads well aloud, then its tables and
    figures counted."""
    printed = next((line for o in outputs if o.text for line in o.text.splitlines()
                    if _speakable(line) and len(line.split()) <= PRINTED_WORDS), None)
    tables = sum(o.table is not None for o in outputs)
    pictures = sum(o.picture is not None for o in outputs)
    shown = [f"{n} {noun}{'s' if n > 1 else ''}" if n > 1 else f"a {noun}" for n, noun in
             ((tables, "table"), (pictures, "figure")) if n]
    parts = ([f"prints {_said(printed)}"] if printed else []) + ([f"shows {' and '.join(shown)}"] if shown else [])
    if not parts:
        return "It shows no output."
    return "When run, it " + ", and ".join(parts) + "."


def _speakable(line: str) -> bool:
    """A printed line worth reading out: short, words more than numbers, no dictionaries, lists or hashes."""
    line = line.strip()
    letters = sum(c.isalpha() for c in line)
    return (8 <= len(line) <= 90 and letters > len(line) / 2 and not re.search(r"[{}\[\]|<>]", line)
            and not re.search(r"\b[0-9a-f]{10,}\b", line) and not line.startswith("…"))


def _said(line: str) -> str:
    return " ".join(line.replace(" / ", " over ").replace(" = ", " equals ").replace("->", "gives").split()).rstrip(
        ".")


def training(report: Report) -> str:
    parts = []
    for g in report.groups:
        run = g.best_run
        if run.family == "linear":  # fitted without steps: no curve, no epochs
            parts.append(f"{g.label} has no curve: it is fitted in one go for each value of C")
            continue
        val = run.metrics["validation"]
        trained, best_epoch = run.metrics.get("epochs_trained") or 0, val.get("best_epoch") or 0
        stopped = trained - best_epoch > 0.5
        speed = run.manifest.get("train_samples_per_second")
        parts.append(f"{g.label} reached its best validation score at epoch {best_epoch:.1f} of {trained:.1f}"
                     + (", and early stopping ended it after that" if stopped else ", still improving at the end")
                     + (f"; it trained at {speed:.0f} examples per second" if speed else ""))
    return ("The curves show training and validation loss. " + ". ".join(parts) + ". The checkpoint with the best "
            "validation score is the one kept and tested.")


def results(report: Report) -> str:
    v = report.verdict
    w, runner = v.winner, v.runner_up
    key = f"test_{v.metric}_mean"
    seeds = report.seeds
    second, sentence = SECOND_SCORES[report.task]
    values = report.winner.values("test", second)
    return (f"The model chosen on validation was tested once. {w['model']} has the "
            f"{'best' if greater_is_better(v.metric) else 'lowest'} test "
            f"{METRIC_TITLES[v.metric]}, {_spoken(w[key], runner[key] if runner else None)}"
            + (f", ahead of {runner['model']} with {_spoken(runner[key], w[key])}." if runner else ".")
            + (" " + sentence.format(value=_spoken(statistics.fmean(values) if values else None))
               if v.metric != second else "")
            + (f" Each model ran with {len(seeds)} seeds; the table gives mean and standard deviation."
               if len(seeds) > 1 else " Each model ran once, with seed " + str(seeds[0]) + ".")
            + (paired_results(report, runner["model"]) if runner else ""))


def paired_results(report: Report, runner: str) -> str:
    """The winner against the runner-up on the same test examples, as the results slide's narration ends."""
    paired = report.paired
    c = paired.of(runner)
    if not c.paired:
        return f" {runner} shares no seed with {paired.winner}, so the two cannot be compared example by example."
    metric = paired.metric
    gap, (low, high) = c.advantage(metric)
    if gap < 0:  # the interval of the amount said: how far behind
        low, high = -high, -low
    unit = " points" if metric in PROPORTIONS else ""
    points = (lambda v: stat_text(metric, v).replace(MINUS, "minus ")) if metric in PROPORTIONS else _spoken
    test = "McNemar's test" if paired.test == "mcnemar" else "the Wilcoxon signed-rank test"
    text = (f" Compared example by example on the same test set, {paired.winner} is "
            f"{'ahead of' if gap >= 0 else 'behind'} {runner} by {points(abs(gap))}{unit} "
            f"{'of' if metric in PROPORTIONS else 'in'} {METRIC_TITLES[metric]}; "
            f"the 95 percent interval runs from {points(low)} to {points(high)}, and {test} gives a p-value of "
            f"{p_text(c.combined.p_value).replace('< ', 'under ')}")
    if c.combined.a_only is not None:  # McNemar asks which model gets more examples right: say which one it is
        text += (f" on the examples only one of them gets right: {runner} gets {c.combined.a_only:,} of them, "
                 f"{paired.winner} {c.combined.b_only:,}")
    text += "."
    if low <= 0 <= high:
        text += " The interval includes zero, so this test set cannot tell the two apart."
    return text


def confusion(report: Report) -> str:
    labels, counts = report.winner.best_run.confusion_matrix()
    matrix = np.asarray(counts)
    text = (f"This is the confusion matrix of {report.winner.label} on the test set. " if len(labels) <= MANY_CLASSES
            else f"With {len(labels)} classes, these are the most frequent confusions of {report.winner.label} on the "
                 "test set, beside its hardest classes. ")
    pairs = report.errors.pairs  # a single-label report: its errors are analysed
    if not pairs:
        return text + "It makes no mistakes on the test set."
    top = pairs[0]  # the paper's most frequent confusion too: the same ties broken the same way
    recall = np.divide(np.diag(matrix), matrix.sum(1), out=np.zeros(len(labels)), where=matrix.sum(1) > 0)
    worst = int(np.argmin(np.where(matrix.sum(1) > 0, recall, np.inf)))
    return text + (f"The most frequent mistake is {top.true} taken for {top.predicted}, "
                   f"{'once' if top.count == 1 else f'{top.count} times'}. "
                   f"The hardest class is {labels[worst]}, with recall {_spoken(float(recall[worst]))}.")


def per_label(report: Report) -> str:
    run = report.winner.best_run
    threshold = run.threshold or {}
    tuned = ", a threshold tuned on validation" if threshold.get("tuned_on_validation") else ""
    text = (f"These bars are the test F1 of each label for {report.winner.label}, which predicts a label when its "
            f"probability reaches {threshold.get('value', 0.5):g}{tuned}. ")
    scored = sorted((r for r in run.test_report() if r["support"] > 0), key=lambda r: r["f1"])
    if len(scored) < 2:
        return text
    text += (f"It does best on {scored[-1]['label']}, with F1 {_spoken(scored[-1]['f1'])}, and worst on "
             f"{scored[0]['label']}, with {_spoken(scored[0]['f1'])}.")
    missed = sum(1 for r in scored if r["f1"] == 0)
    return text + (f" It never finds {missed} of the {len(scored)} labels of the test set." if missed else "")


def errors(report: Report) -> str:
    run = report.winner.best_run
    name = run.target_name
    text = (f"Each point is a test example: its true {name} across, the {name} that {report.winner.label} predicts "
            "up; perfect predictions lie on the diagonal. ")
    rows = run.test_report()
    if not rows:
        return text
    worst = max(rows, key=lambda r: r["rmse"])
    text += (f"Its errors are largest for true values from {_spoken(worst['low'])} to {_spoken(worst['high'])}, "
             f"with a root mean squared error of {_spoken(worst['rmse'])} there.")
    if rows[0]["bias"] > 0 > rows[-1]["bias"]:
        text += " It over-predicts small values and under-predicts large ones: its predictions are pulled to the mean."
    return text


def conclusion(report: Report) -> str:
    v = report.verdict
    metric = METRIC_TITLES[v.metric]
    text = f"To conclude: {v.winner['model']} is the best model here on test {metric}"
    if v.runner_up is not None and v.margin is not None:
        text += f", by {v.margin:.{2 if v.margin >= 0.01 else 4}f} over {v.runner_up['model']}"
    seeds = v.winner["seeds"]
    text += (". With a single seed per model, the size of seed-to-seed noise is unknown, so more seeds would make "
             "this comparison firmer." if seeds == 1 else f", averaged over {seeds} seeds.")
    return text + " The weights, the notebook and the paper reproduce every number shown. Thank you."


def shorten(text: str, max_words: int | None) -> str:
    words = text.split()
    if max_words is None or len(words) <= max_words:
        return text
    return " ".join(words[:max_words]).rstrip(",;:") + "."


# ---- the narration file ----------------------------------------------------------------------------------------

NARRATION_HEADER = """\
# Narration of {video}: one [slide] section per slide, spoken by espeak-ng in this order.
# Edit the text, then render again from this file:
#     python scripts/make_video.py --script {script}{runs}
# Lines starting with # are ignored. Keep the [slide] headers; a slide left empty is shown for {min:g} s in silence.
# [notebook-1], [notebook-2], ... are the notebook's key cells, in order.{placeholders}
"""
PLACEHOLDERS_NOTE = """
# The [title] section still says {fields}: put your own there (or pass --author and --student_number) before you
# render the video you hand in."""


def write_narration(sections: Sequence[tuple[str, str]], path: Path, video: Path, runs_hint: str) -> str:
    """The (slide key, narration) sections as the editable narration file; returns its text. A header line warns
    when the title still holds the presenter's placeholders."""
    said = " ".join(text for _, text in sections)
    missing = [p for p in (Presenter.NAME_PLACEHOLDER, Presenter.NUMBER_PLACEHOLDER) if p in said]
    note = PLACEHOLDERS_NOTE.format(fields=" and ".join(missing)) if missing else ""
    text = NARRATION_HEADER.format(video=video.name, script=path, runs=runs_hint, min=MIN_SLIDE_SECONDS,
                                   placeholders=note)
    text += "".join(f"\n[{key}]\n{narration}\n" for key, narration in sections)
    runs.atomic_write_text(path, text)
    return text


def read_narration(path: Path, keys: Sequence[str]) -> dict[str, str]:
    """The narration of each [slide] section of an edited file; `keys` are the slides of the deck, in order (the
    walkthrough's notebook-1, notebook-2, ... among them)."""
    if not path.is_file():
        raise UserError(f"narration script {path} not found: draft one by running without --script")
    sections: dict[str, list[str]] = {}
    current = None
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("#"):
            continue
        header = re.fullmatch(r"\s*\[([\w-]+)\]\s*", line)
        if header:
            current = header.group(1)
            if current not in keys:
                fewer = " (the notebook has fewer key cells now)" if current.startswith("notebook-") else ""
                raise UserError(f"{path}:{n}: unknown slide [{current}]: the slides are {', '.join(keys)}{fewer}")
            sections[current] = []
        elif line.strip():
            if current is None:
                raise UserError(f"{path}:{n}: text before the first [slide] header: start with [{keys[0]}]")
            sections[current].append(line.strip())
    return {k: " ".join(v) for k, v in sections.items()}
