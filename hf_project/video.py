"""The presentation video, drafted from the runs: slides, a narration script, espeak-ng speech, an H.264 + AAC MP4.

    python scripts/make_video.py                                  # every complete run of the one data set in runs/
    python scripts/make_video.py --script presentation/narration.txt --face webcam.mp4

Every number on a slide or in the narration comes from the run directories (through hf_project.compare, as in
the tables and the paper). The narration is written to a text file with one `[slide]` section per slide; edit it
and render again with `--script` to change what is said. Each slide lasts as long as its narration; the whole
video may last at most `--max_seconds` (5 minutes). With `--face`, the recording (its picture; the narration stays
the sound) is scaled into the bottom-right corner for the whole video, looped if it is shorter.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from hf_project.compare import METRIC_TITLES, Group, Run, group_runs, table_rows
from hf_project.errors import UserError, first_line
from hf_project.paper.content import (
    HYPERPARAMETERS,
    Context,
    best_run,
    fmt_params,
    input_summary,
    modality_of,
    nouns,
    sample_inputs_figure,
    verdict,
)

logger = logging.getLogger(__name__)

# "samples" is left out when the runs predate their sample-inputs figure.
SLIDES = ("title", "data", "samples", "models", "notebook", "training", "results", "confusion", "conclusion")
SAMPLES_NARRATION = {
    "text": "Here are a few training texts of each class, as the models read them before tokenisation.",
    "image": "Here are a few training images of each class, as they are stored, before resizing or augmentation.",
    "audio": "Here are a few training clips of each class, drawn as log-mel spectrograms: time runs from left to "
             "right, pitch from bottom to top, and brighter means louder.",
}
# What the notebook slide's code passes to predict(), per modality.
EXAMPLE_INPUT = {"text": "'Beam me up, Scotty.'", "image": "'photo.png'", "audio": "'clip.wav'"}
MIN_SLIDE_SECONDS = 3.0
PAUSE_SECONDS = 0.6  # silence after each slide's narration
FPS = 25
INSTALL = {"ffmpeg": "ffmpeg", "ffprobe": "ffmpeg", "espeak-ng": "espeak-ng"}


@dataclass
class VideoArguments:
    runs: list[str] = field(default_factory=lambda: ["runs"], metadata={
        "help": "Run directories, or folders holding runs (runs/, runs/<dataset>/<model>); complete runs only."})
    dataset: str | None = field(default=None, metadata={"help": "The data set, when the runs cover several."})
    output: str = field(default="presentation/presentation.mp4", metadata={"help": "The MP4 to write."})
    script: str | None = field(default=None, metadata={
        "help": "A narration file to speak (the generated <output>.narration.txt, edited) instead of a new draft."})
    face: str | None = field(default=None, metadata={
        "help": "A recording of the presenter, put in the bottom-right corner for the whole video."})
    voice: str = field(default="en-us", metadata={"help": "espeak-ng voice (espeak-ng --voices lists them)."})
    words_per_minute: int = field(default=160, metadata={"help": "Speaking rate."})
    width: int = field(default=1280, metadata={"help": "Video width in pixels."})
    height: int = field(default=720, metadata={"help": "Video height in pixels."})
    max_seconds: float = field(default=300.0, metadata={"help": "Longest allowed video (the course asks 5 minutes)."})
    max_words_per_slide: int | None = field(default=None, metadata={
        "help": "Cut each drafted slide narration to this many words (quick drafts)."})


@dataclass
class Slide:
    key: str
    title: str
    narration: str
    image: Path | None = None
    seconds: float = 0.0


# ---- runs ------------------------------------------------------------------------------------------------------


def collect_runs(paths: list[str], dataset: str | None) -> Context:
    """The complete runs under `paths`, grouped over seeds like compare.py; one data set."""
    found: dict[Path, Run] = {}
    for given in paths:
        path = Path(given)
        if (path / "status").is_file():
            status = (path / "status").read_text().strip()
            if status != "complete":
                raise UserError(f"run {path} is not complete (status: {status}): finish or resume it, or leave it out")
            candidates = [path]
        elif path.is_dir():
            candidates = [p.parent for p in sorted(path.rglob("status")) if p.read_text().strip() == "complete"]
        else:
            raise UserError(f"{path} is neither a run directory nor a folder of runs: pass runs/ or a run directory")
        for run_dir in candidates:
            if (run_dir / "metrics.json").is_file():
                found[run_dir.resolve()] = Run.load(run_dir)
    runs = [r for r in found.values() if dataset is None or r.metrics["dataset"] == dataset]
    if not runs:
        where = f" on {dataset}" if dataset else ""
        raise UserError(f"no complete runs{where} under {', '.join(paths)}: train some with scripts/finetune.py "
                        "(or `make demo`) first")
    datasets = sorted({r.metrics["dataset"] for r in runs})
    if len(datasets) > 1:
        raise UserError(f"the runs cover several data sets ({', '.join(datasets)}): pick one with --dataset")
    runs.sort(key=lambda r: r.path.name)
    groups = group_runs(runs)
    return Context(datasets[0], groups, table_rows(groups), [])


# ---- narration -------------------------------------------------------------------------------------------------


def _metric(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _spoken(value: float | None, other: float | None = None) -> str:
    """A score as a speech synthesiser reads it well: 0.532 -> '0.53'; more digits where `other` would sound equal."""
    if value is None:
        return "not available"
    digits = 2
    while other is not None and digits < 4 and round(value, digits) == round(other, digits):
        digits += 1
    return f"{value:.{digits}f}"


def class_counts(run: Run) -> list[dict[str, Any]]:
    with open(run.path / "class_balance.csv", newline="") as f:
        return [{**row, **{k: int(row[k]) for k in ("train", "validation", "test")}} for row in csv.DictReader(f)]


def draft_slides(ctx: Context) -> list[Slide]:
    """Titles and narration of every slide, from the runs' numbers."""
    ref = ctx.reference
    counts = class_counts(ref)
    sizes = ref.manifest["dataset"]["sizes"]
    labels = ref.manifest["label_names"]
    modality = ctx.modality
    models = [g.label for g in ctx.groups]
    train = sorted(counts, key=lambda c: -c["train"])
    imbalance = train[0]["train"] / max(1, train[-1]["train"])
    metric = ctx.rows[0]["selection_metric"]
    v = verdict(ctx)
    w = v.winner
    key = f"test_{metric}_mean"
    seeds = sorted({r.metrics["seed"] for g in ctx.groups for r in g.runs})
    singular, many = nouns(modality)
    slides = [
        Slide("title", f"{modality.capitalize()} classification on {ctx.dataset}",
              f"Hello. This presentation compares {len(models)} models for {modality} classification on the "
              f"{ctx.dataset} data set: {', '.join(models)}. Everything shown comes from our training runs."),
        Slide("data", "Problem and data",
              f"The task is to assign each {singular if modality != 'audio' else 'audio clip'} one of {len(labels)} "
              f"classes. The data set has {sum(sizes.values()):,} {many}, split once with seed "
              f"{ref.config.get('split_seed', 2023)} into {sizes['train']:,} for training, {sizes['validation']:,} "
              f"for validation and {sizes['test']:,} for testing. " + balance_sentence(train, imbalance, metric)),
        Slide("samples", f"What the {many} look like", SAMPLES_NARRATION[modality]),
        Slide("models", "Models and hyperparameters", models_narration(ctx)),
        Slide("notebook", "The inference notebook",
              f"The notebook notebooks/inference.ipynb loads the saved weights of each model, predicts the test "
              f"{many} again and checks that its probabilities equal those of the evaluation. A few of its test "
              "predictions are on screen."),
        Slide("training", "What training revealed", training_narration(ctx)),
        Slide("results", "Results on validation and test",
              f"The model chosen on validation was tested once. {w['model']} has the best test "
              f"{METRIC_TITLES[metric]}, {_spoken(w[key], v.runner_up[key] if v.runner_up else None)}"
              + (f", ahead of {v.runner_up['model']} with {_spoken(v.runner_up[key], w[key])}." if v.runner_up
                 else ".")
              + (f" Test accuracy is {_spoken(w.get('test_accuracy_mean'))}." if metric != "accuracy" else "")
              + (f" Each model ran with {len(seeds)} seeds; the table gives mean and standard deviation."
                 if len(seeds) > 1 else " Each model ran once, with seed " + str(seeds[0]) + ".")),
        Slide("confusion", f"Where {best_group(ctx).label} goes wrong", confusion_narration(ctx)),
        Slide("conclusion", "Conclusion", conclusion_narration(ctx)),
    ]
    return [s for s in slides if s.key != "samples" or sample_inputs_figure(ctx) is not None]


def best_group(ctx: Context) -> Group:
    name = verdict(ctx).winner["model"]
    return next((g for g in ctx.groups if g.label == name), ctx.groups[0])


def hyperparameter(run: Run, name: str) -> Any:
    """One row of the paper's hyperparameter table ("learning rate", "epochs (max)", ...) for this run."""
    return dict(HYPERPARAMETERS)[name](run.config, run.manifest["model"].get("from_scratch"))


def balance_sentence(train: list[dict[str, Any]], imbalance: float, metric: str) -> str:
    """The class balance in a sentence; near-equal classes are not called imbalanced."""
    if imbalance < 1.5:
        return (f"The classes are about equally frequent ({train[-1]['train']:,} to {train[0]['train']:,} training "
                f"examples each); models are selected by {METRIC_TITLES[metric]}.")
    return (f"The classes are {'strongly ' if imbalance > 10 else ''}imbalanced: the largest, {train[0]['label']}, "
            f"has {train[0]['train']:,} training examples, the smallest, {train[-1]['label']}, "
            f"{train[-1]['train']:,}. This is why we select models by {METRIC_TITLES[metric]}, which weighs every "
            "class equally.")


def models_narration(ctx: Context) -> str:
    parts = []
    for g in ctx.groups:
        run = g.first
        params = run.manifest["parameters"]["total"]
        scratch = run.manifest["model"].get("from_scratch")
        lr, epochs = hyperparameter(run, "learning rate"), hyperparameter(run, "epochs (max)")
        kind = "trained from scratch" if scratch else "fine-tuned from a pretrained checkpoint"
        parts.append(f"{g.label} has {fmt_params(params).replace('M', ' million').replace('k', ' thousand')} "
                     f"parameters, reads {spoken_input(run)} and is {kind}, with learning rate {lr:g} for up to "
                     f"{epochs:g} epochs")
    batch = hyperparameter(ctx.reference, "batch size")
    return ("; ".join(parts) + f". All use batch size {batch}, AdamW, warm-up and early stopping on validation "
            f"{METRIC_TITLES[ctx.rows[0]['selection_metric']]}.")


def spoken_input(run: Run) -> str:
    """input_summary as a speech synthesiser reads it well: '32×32 RGB' -> '32 by 32 RGB images'."""
    text = input_summary(run).replace("×", " by ").replace("≤", "texts of up to ").replace("kHz", "kilohertz")
    modality = modality_of(run)
    if modality == "image":
        return text.replace(" grey rows", " grey images, row by row") if "rows" in text else text + " images"
    if modality == "audio":
        text = text.replace(", ", " at ")
        return "the " + text if text.startswith("waveform") else text
    return text


def training_narration(ctx: Context) -> str:
    parts = []
    for g in ctx.groups:
        run = best_run(g)
        val = run.metrics["validation"]
        trained, best_epoch = run.metrics.get("epochs_trained") or 0, val.get("best_epoch") or 0
        stopped = trained - best_epoch > 0.5
        speed = run.manifest.get("train_samples_per_second")
        parts.append(f"{g.label} reached its best validation score at epoch {best_epoch:.1f} of {trained:.1f}"
                     + (", and early stopping ended it after that" if stopped else ", still improving at the end")
                     + (f"; it trained at {speed:.0f} examples per second" if speed else ""))
    return ("The curves show training and validation loss. " + ". ".join(parts) + ". The checkpoint with the best "
            "validation score is the one kept and tested.")


def confusion(run: Run) -> tuple[list[str], np.ndarray]:
    data = json.loads((run.path / "confusion_matrix.json").read_text())
    return data["labels"], np.asarray(data["matrix"])


def confusion_narration(ctx: Context) -> str:
    run = best_run(best_group(ctx))
    labels, matrix = confusion(run)
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    text = f"This is the confusion matrix of {best_group(ctx).label} on the test set. "
    if off.sum() == 0:
        return text + "It makes no mistakes on the test set."
    i, j = np.unravel_index(off.argmax(), off.shape)
    recall = np.divide(np.diag(matrix), matrix.sum(1), out=np.zeros(len(labels)), where=matrix.sum(1) > 0)
    worst = int(np.argmin(np.where(matrix.sum(1) > 0, recall, np.inf)))
    count = int(off[i, j])
    return text + (f"The most frequent mistake is {labels[i]} taken for {labels[j]}, "
                   f"{'once' if count == 1 else f'{count} times'}. "
                   f"The hardest class is {labels[worst]}, with recall {_spoken(float(recall[worst]))}.")


def conclusion_narration(ctx: Context) -> str:
    v = verdict(ctx)
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


NARRATION_HEADER = """\
# Narration of {video}: one [slide] section per slide, spoken by espeak-ng in this order.
# Edit the text, then render again from this file:
#     python scripts/make_video.py --script {script}{runs}
# Lines starting with # are ignored. Keep the [slide] headers; a slide left empty is shown for {min:g} s in silence.
"""


def write_narration(slides: list[Slide], path: Path, video: Path, runs_hint: str) -> str:
    text = NARRATION_HEADER.format(video=video.name, script=path, runs=runs_hint, min=MIN_SLIDE_SECONDS)
    text += "".join(f"\n[{s.key}]\n{s.narration}\n" for s in slides)
    atomic_write_text(path, text)
    return text


def read_narration(path: Path) -> dict[str, str]:
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
            if current not in SLIDES:
                raise UserError(f"{path}:{n}: unknown slide [{current}]: the slides are {', '.join(SLIDES)}")
            sections[current] = []
        elif line.strip():
            if current is None:
                raise UserError(f"{path}:{n}: text before the first [slide] header: start with [{SLIDES[0]}]")
            sections[current].append(line.strip())
    return {k: " ".join(v) for k, v in sections.items()}


# ---- slides ----------------------------------------------------------------------------------------------------


def new_slide(width: int, height: int, title: str, number: int, total: int) -> Figure:
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    FigureCanvasAgg(fig)
    fig.patch.set_facecolor("white")
    fig.add_artist(_band(fig))
    fig.text(0.04, 0.925, title, fontsize=30, weight="bold", color="white", va="center")
    fig.text(0.96, 0.03, f"{number}/{total}", fontsize=12, color="#666666", ha="right")
    fig.text(0.04, 0.03, "drafted by hf_project from the run directories", fontsize=10, color="#888888")
    return fig


def _band(fig: Figure) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((0, 0.85), 1, 0.15, transform=fig.transFigure, color="#1f3b63", zorder=-1)


def _bullets(fig: Figure, lines: list[str], top: float = 0.78, left: float = 0.06, size: int = 20) -> None:
    for k, line in enumerate(lines):
        fig.text(left, top - k * 0.075, line, fontsize=size, va="top", color="#222222")


def _picture(fig: Figure, path: Path, rect: list[float]) -> None:
    ax = fig.add_axes(rect)
    ax.imshow(np.asarray(Image.open(path).convert("RGB")))
    ax.set_axis_off()


def _table(fig: Figure, header: list[str], rows: list[list[str]], rect: list[float], bold_row: int | None) -> None:
    ax = fig.add_axes(rect)
    ax.set_axis_off()
    chars = [max(len(str(x)) for x in column) + 2 for column in zip(header, *rows, strict=True)]
    widths = [c / sum(chars) for c in chars]  # columns as wide as their longest text
    table = ax.table(cellText=rows, colLabels=header, loc="upper center", cellLoc="center", colWidths=widths)
    table.auto_set_font_size(False)
    # about 0.6 em per character: shrink the font until the widest line fits the table's width
    width_px = rect[2] * fig.get_figwidth() * fig.dpi
    table.set_fontsize(max(9, min(16, int(width_px / (0.6 * sum(chars)) * 72 / fig.dpi))))
    table.scale(1, 2.2)
    for (r, _), c in table.get_celld().items():
        if r == 0:
            c.set_text_props(weight="bold", color="white")
            c.set_facecolor("#1f3b63")
        elif bold_row is not None and r == bold_row + 1:
            c.set_text_props(weight="bold")
            c.set_facecolor("#e3ecf7")


def render_slides(ctx: Context, slides: list[Slide], folder: Path, width: int, height: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    total = len(slides)
    for n, slide in enumerate(slides, 1):
        fig = new_slide(width, height, slide.title, n, total)
        DRAW[slide.key](fig, ctx)
        slide.image = folder / f"slide{n:02d}-{slide.key}.png"
        tmp = slide.image.with_name(f".{slide.image.name}.tmp")
        fig.savefig(tmp, format="png", dpi=100)
        with Image.open(tmp) as im:  # even sizes for yuv420p, exactly width x height
            im.convert("RGB").resize((width, height)).save(tmp, format="png")
        os.replace(tmp, slide.image)
    for stale in set(folder.glob("slide*.png")) - {s.image for s in slides}:  # an earlier render's other slides
        stale.unlink()


def draw_title(fig: Figure, ctx: Context) -> None:
    models = ", ".join(g.label for g in ctx.groups)
    _bullets(fig, [f"Models: {models}", f"Data: {ctx.dataset} ({ctx.modality})",
                   f"Runs: {sum(len(g.runs) for g in ctx.groups)} complete, split hash "
                   f"{ctx.reference.manifest['split_hash']}"], top=0.65, size=24)


def draw_data(fig: Figure, ctx: Context) -> None:
    ref = ctx.reference
    sizes = ref.manifest["dataset"]["sizes"]
    counts = sorted(class_counts(ref), key=lambda c: -c["train"])
    _bullets(fig, [f"{len(counts)} classes", f"train {sizes['train']:,}", f"validation {sizes['validation']:,}",
                   f"test {sizes['test']:,}", f"split seed {ref.config.get('split_seed', 2023)}"], size=20)
    ax = fig.add_axes([0.36, 0.12, 0.6, 0.68])
    shown = counts[:30]
    ax.barh(range(len(shown)), [c["train"] for c in shown], color="#3b6ea5")
    ax.set_yticks(range(len(shown)), [c["label"] for c in shown], fontsize=9 if len(shown) > 15 else 12)
    ax.invert_yaxis()
    ax.set_xlabel("training examples per class" + (f" (largest 30 of {len(counts)})" if len(counts) > 30 else ""))


def draw_samples(fig: Figure, ctx: Context) -> None:
    path = sample_inputs_figure(ctx)
    if path is None:
        _bullets(fig, ["(no sample inputs in the runs)"])
        return
    with Image.open(path) as im:
        aspect = im.width / im.height
    # as large as the area under the title band allows, centred, without distorting the figure
    width_px, height_px = fig.get_figwidth(), fig.get_figheight()
    h = 0.76
    w = min(0.92, h * aspect * height_px / width_px)
    h = w / aspect * width_px / height_px
    _picture(fig, path, [(1 - w) / 2, 0.08 + (0.76 - h) / 2, w, h])


def draw_models(fig: Figure, ctx: Context) -> None:
    rows = []
    for g in ctx.groups:
        run = g.first
        rows.append([g.label, str(run.manifest["model"].get("class", "")), input_summary(run),
                     fmt_params(run.manifest["parameters"]["total"]), f"{hyperparameter(run, 'learning rate'):g}",
                     f"{hyperparameter(run, 'epochs (max)'):g}", str(hyperparameter(run, "batch size"))])
    _table(fig, ["model", "class", "input", "parameters", "learning rate", "max epochs", "batch"], rows,
           [0.03, 0.15, 0.94, 0.65], None)


def draw_notebook(fig: Figure, ctx: Context) -> None:
    run = best_run(best_group(ctx))
    code = ["from hf_project.inference import Predictor",
            f"predictor = Predictor.load('weights/{ctx.dataset}/{run.metrics['model']}')",
            f"predictor.predict([{EXAMPLE_INPUT[ctx.modality]}])"]
    for k, line in enumerate(code):
        fig.text(0.06, 0.78 - k * 0.06, line, fontsize=17, family="monospace", color="#0b3d0b", va="top")
    with open(run.path / "predictions_test.csv", newline="") as f:
        rows = [r for _, r in zip(range(4), csv.DictReader(f), strict=False)]
    table = [[shown_input(r["input"], ctx.modality), r["label"], r["predicted"], f"{float(r['score']):.2f}"]
             for r in rows]
    _table(fig, ["input", "label", "predicted", "score"], table, [0.05, 0.1, 0.9, 0.45], None)


def shown_input(value: str, modality: str) -> str:
    """A test input as the notebook slide shows it: a text's start; an image or clip by its folder and file name
    (the author's absolute path says nothing), or by its test row when the data set has no files."""
    if modality == "text":
        return _clip(value, 40)
    row = re.fullmatch(r"<(?:image|audio) (\d+)>", value)
    if row:
        return f"test {nouns(modality)[0]} {row.group(1)}"
    return _clip("/".join(Path(value).parts[-2:]), 40)


def _clip(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def draw_training(fig: Figure, ctx: Context) -> None:
    pictures = [best_run(g).path / "figures" / "loss.png" for g in ctx.groups[:3]]
    pictures = [p for p in pictures if p.is_file()]
    if not pictures:
        _bullets(fig, ["(no loss curves in the runs)"])
        return
    width = 0.92 / len(pictures)
    for k, path in enumerate(pictures):
        _picture(fig, path, [0.04 + k * width, 0.1, width - 0.01, 0.72])


def draw_results(fig: Figure, ctx: Context) -> None:
    metric = ctx.rows[0]["selection_metric"]
    best = verdict(ctx).winner["model"]

    def cell_text(row: dict[str, Any], key: str) -> str:
        mean, std = row.get(f"{key}_mean"), row.get(f"{key}_std")
        return _metric(mean) + (f" ± {std:.3f}" if std is not None and row["seeds"] > 1 else "")

    rows = [[r["model"], str(r["seeds"]), cell_text(r, f"validation_{metric}"), cell_text(r, "test_accuracy"),
             cell_text(r, "test_macro_f1")] for r in ctx.rows]
    bold = next((k for k, r in enumerate(ctx.rows) if r["model"] == best), None)
    _table(fig, ["model", "seeds", f"val {METRIC_TITLES[metric]}", "test acc", "test macro-F1"], rows,
           [0.05, 0.2, 0.9, 0.6], bold)


def draw_confusion(fig: Figure, ctx: Context) -> None:
    path = best_run(best_group(ctx)).path / "figures" / "confusion_matrix.png"
    if path.is_file():
        _picture(fig, path, [0.2, 0.08, 0.6, 0.75])
    else:
        _bullets(fig, ["(no confusion matrix in the run)"])


def draw_conclusion(fig: Figure, ctx: Context) -> None:
    v = verdict(ctx)
    key = f"test_{v.metric}_mean"
    lines = [f"Best on test {METRIC_TITLES[v.metric]}: {v.winner['model']} ({_metric(v.winner[key])})"]
    if v.runner_up is not None:
        lines.append(f"Runner-up: {v.runner_up['model']} ({_metric(v.runner_up[key])})")
    lines += [f"Seeds per model: {v.winner['seeds']}", "Weights, notebook and paper reproduce every number"]
    _bullets(fig, lines, size=22)


DRAW = {"title": draw_title, "data": draw_data, "samples": draw_samples, "models": draw_models,
        "notebook": draw_notebook, "training": draw_training, "results": draw_results, "confusion": draw_confusion,
        "conclusion": draw_conclusion}


# ---- sound and video -------------------------------------------------------------------------------------------


def check_tools() -> None:
    missing = [tool for tool in INSTALL if shutil.which(tool) is None]
    if missing:
        packages = " ".join(sorted({INSTALL[t] for t in missing}))
        raise UserError(f"{' and '.join(missing)} not found: install with `sudo apt-get install -y {packages}` "
                        "(or `make setup` as root)")


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(f"{what} failed: {first_line(proc.stderr.strip() or proc.stdout.strip() or 'no output')}")
    return proc


def check_face(path: Path) -> None:
    if not path.is_file():
        raise UserError(f"face recording {path} not found: give the path of your webcam recording")
    proc = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-frames:v", "1", "-f", "null",
                           "-"], capture_output=True, text=True)
    if proc.returncode != 0 or proc.stderr.strip():
        reason = first_line(proc.stderr.strip() or "no video stream")
        raise UserError(f"face recording {path} does not decode ({reason}): record it again or convert it to MP4 "
                        "(ffmpeg -i in.webm out.mp4)")


def speak(text: str, path: Path, voice: str, wpm: int) -> np.ndarray:
    """espeak-ng's speech of `text` as float32 samples at its native rate (22050 Hz)."""
    text_file = path.with_suffix(".txt")
    text_file.write_text(text)
    _run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(path), "-f", str(text_file)],
         f"espeak-ng (voice {voice!r}; `espeak-ng --voices` lists the voices)")
    samples, _ = sf.read(path, dtype="float32", always_2d=True)
    return samples.mean(axis=1)


def narrate(slides: list[Slide], folder: Path, voice: str, wpm: int) -> tuple[np.ndarray, int]:
    rate = 22050
    parts = []
    for n, slide in enumerate(slides, 1):
        speech = speak(slide.narration, folder / f"speech{n:02d}.wav", voice, wpm) if slide.narration.strip() else (
            np.zeros(0, np.float32))
        if len(speech):
            rate = sf.info(str(folder / f"speech{n:02d}.wav")).samplerate
        length = max(len(speech) + int(PAUSE_SECONDS * rate), int(MIN_SLIDE_SECONDS * rate))
        slide.seconds = length / rate
        parts.append(np.concatenate([speech, np.zeros(length - len(speech), np.float32)]))
    return np.concatenate(parts), rate


def encode(slides: list[Slide], audio: Path, face: Path | None, output: Path, width: int, height: int) -> None:
    """H.264 (yuv420p) + AAC in MP4, written beside `output` and renamed over it when complete."""
    listing = output.parent / f".{output.stem}.slides.txt"
    lines = []
    for slide in slides:
        lines += [f"file '{slide.image.resolve()}'", f"duration {slide.seconds:.3f}"]
    lines.append(f"file '{slides[-1].image.resolve()}'")  # the concat demuxer needs the last file twice
    listing.write_text("\n".join(lines) + "\n")
    total = sum(s.seconds for s in slides)
    cmd = ["ffmpeg", "-y", "-v", "error", "-f", "concat", "-safe", "0", "-i", str(listing), "-i", str(audio)]
    if face is not None:
        fw = (width // 4) // 2 * 2
        margin = max(8, width // 50)
        cmd += ["-stream_loop", "-1", "-i", str(face), "-filter_complex",
                f"[0:v]fps={FPS},format=yuv420p[bg];[2:v]fps={FPS},scale={fw}:-2,setsar=1[pip];"
                f"[bg][pip]overlay=W-w-{margin}:H-h-{margin}:eof_action=repeat,format=yuv420p[v]",
                "-map", "[v]", "-map", "1:a"]
    else:
        cmd += ["-filter_complex", f"[0:v]fps={FPS},format=yuv420p[v]", "-map", "[v]", "-map", "1:a"]
    tmp = output.with_name(f".{output.stem}.tmp.mp4")
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-tune", "stillimage", "-crf", "23", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "128k", "-t", f"{total:.3f}", "-movflags", "+faststart", str(tmp)]
    try:
        _run(cmd, "ffmpeg")
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
        listing.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def probe(path: Path) -> dict[str, Any]:
    """ffprobe's view of a media file: format and streams."""
    proc = _run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)], "ffprobe")
    return json.loads(proc.stdout)


# ---- the whole job ---------------------------------------------------------------------------------------------


def make_video(args: VideoArguments) -> Path:
    """Slides, narration, speech and the MP4; returns the MP4's path. Nothing is written before the checks pass."""
    check_tools()
    ctx = collect_runs(args.runs, args.dataset)
    face = Path(args.face) if args.face else None
    if face is not None:
        check_face(face)
    output = Path(args.output)
    if output.suffix.lower() != ".mp4":
        raise UserError(f"--output {output} must end in .mp4")
    narration_file = output.with_suffix(".narration.txt")
    timeline_file = output.with_suffix(".timeline.json")
    slides = draft_slides(ctx)
    for slide in slides:
        slide.narration = shorten(slide.narration, args.max_words_per_slide)
    if args.script:
        spoken = read_narration(Path(args.script))
        for slide in slides:
            slide.narration = spoken.get(slide.key, "")
    elif narration_file.is_file() and _edited(narration_file, timeline_file):
        raise UserError(f"{narration_file} has your edits: render from it with --script {narration_file}, or delete "
                        "it to draft a new narration")
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".video-", dir=output.parent) as tmp:
        work = Path(tmp)
        audio, rate = narrate(slides, work, args.voice, args.words_per_minute)
        total = len(audio) / rate
        if total > args.max_seconds:
            raise UserError(f"the narration lasts {total:.0f} s, over the {args.max_seconds:g} s limit: shorten it "
                            f"(edit {narration_file} and pass --script {narration_file}) or raise --words_per_minute")
        slides_dir = output.parent / f"{output.stem}-slides"
        render_slides(ctx, slides, slides_dir, args.width, args.height)
        sf.write(work / "narration.wav", audio, rate, subtype="PCM_16")
        encode(slides, work / "narration.wav", face, output, args.width, args.height)
    if not args.script:
        runs_hint = "" if args.runs == ["runs"] else " --runs " + " ".join(args.runs)
        text = write_narration(slides, narration_file, output, runs_hint)
    else:
        text = None
    start, timeline = 0.0, []
    for slide in slides:
        timeline.append({"slide": slide.key, "title": slide.title, "image": str(slide.image), "start": round(start, 3),
                         "end": round(start + slide.seconds, 3), "narration": slide.narration})
        start += slide.seconds
    previous = json.loads(timeline_file.read_text()) if timeline_file.is_file() else {}
    generated = hashlib.sha256(text.encode()).hexdigest() if text else previous.get("narration_sha256")
    atomic_write_text(timeline_file, json.dumps({"video": str(output), "seconds": round(start, 3),
                                                 "face": str(face) if face else None, "narration_sha256": generated,
                                                 "runs": [str(r.path) for g in ctx.groups for r in g.runs],
                                                 "slides": timeline}, indent=2))
    logger.info("video %s: %d slides, %.0f s", output, len(slides), start)
    return output


def _edited(narration_file: Path, timeline_file: Path) -> bool:
    """Whether the drafted narration was changed by hand since it was written."""
    if not timeline_file.is_file():
        return True
    recorded = json.loads(timeline_file.read_text()).get("narration_sha256")
    return recorded != hashlib.sha256(narration_file.read_bytes()).hexdigest()
