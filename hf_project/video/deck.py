"""The slide deck: one table of the slides, each with its key, title, narration and drawing, drafted from a talk (the
report of the runs, the presenter, the notebook's key cells) and rendered to PNG frames."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from hf_project import plots, runs
from hf_project.report import Report
from hf_project.video import cells, layout, narration, slides
from hf_project.video.notebook import NotebookCell
from hf_project.video.talk import Presenter, Talk

NOTEBOOK = "notebook"  # the walkthrough's row: one slide per key cell, notebook-1, notebook-2, ...


@dataclass(frozen=True)
class SlideKind:
    """One row of the deck: what a slide is called, says and shows; `shown` leaves it out of some talks, `brief` says
    less when a drafted video would last too long. The notebook row is drawn once per key cell (talk.cell)."""

    key: str
    title: str | Callable[[Talk], str]
    narration: Callable[[Talk], str]
    draw: Callable[[Figure, Talk], None]
    shown: Callable[[Talk], bool] = lambda talk: True
    brief: Callable[[Talk], str] | None = None  # a shorter narration, for a draft over the time limit


def _said(about: Callable[[Report], str]) -> Callable[[Talk], str]:
    return lambda talk: about(talk.report)


def _drawn(drawing: Callable[[Figure, Report], None]) -> Callable[[Figure, Talk], None]:
    return lambda fig, talk: drawing(fig, talk.report)


DECK = (
    SlideKind("title", lambda t: f"{t.report.modality.capitalize()} {t.report.task_name} on {t.report.dataset}",
              lambda t: narration.title(t.report, t.presenter),
              lambda fig, t: slides.draw_title(fig, t.report, t.presenter)),
    SlideKind("data", "Problem and data", _said(narration.data), _drawn(slides.draw_data)),
    # texts from the test predictions; images and clips left out when the runs predate their sample-inputs figure
    SlideKind("samples", lambda t: f"What the {plots.INPUT_NOUNS[t.report.modality][1]} look like",
              _said(narration.samples), _drawn(slides.draw_samples),
              shown=lambda t: t.report.modality == "text" or t.report.sample_inputs_figure is not None),
    SlideKind("models", "Models and hyperparameters", _said(narration.models), _drawn(slides.draw_models)),
    SlideKind("training", "What training revealed", _said(narration.training), _drawn(slides.draw_training)),
    SlideKind("results", "Results on validation and test", _said(narration.results), _drawn(slides.draw_results)),
    # the winner on the test set, one slide per task: its confusion matrix, its F1 per label, its predicted values
    SlideKind("confusion", lambda t: f"Where {t.report.winner.label} goes wrong", _said(narration.confusion),
              _drawn(slides.draw_test_figure), shown=lambda t: t.report.task == "single_label"),
    SlideKind("labels", lambda t: f"Which labels {t.report.winner.label} finds", _said(narration.per_label),
              _drawn(slides.draw_test_figure), shown=lambda t: t.report.task == "multi_label"),
    SlideKind("errors", lambda t: f"Where {t.report.winner.label} goes wrong", _said(narration.errors),
              _drawn(slides.draw_test_figure), shown=lambda t: t.report.task == "regression"),
    # the notebook, run on these runs: its key cells with their outputs (notebook.key_cells)
    SlideKind(NOTEBOOK, lambda t: cells.cell_title(t.cell),
              lambda t: narration.cell(t.cell, t.cell is t.cells[0], t.notebook_name),
              lambda fig, t: cells.draw_cell(fig, t.cell),
              brief=lambda t: narration.cell(t.cell, t.cell is t.cells[0], t.notebook_name, described=False)),
    SlideKind("conclusion", "Conclusion", _said(narration.conclusion),
              lambda fig, t: slides.draw_conclusion(fig, t.report, t.presenter)),
)
SLIDES = tuple(kind.key for kind in DECK)


@dataclass
class Slide:
    key: str
    title: str
    narration: str
    draw: Callable[[Figure], None] = field(repr=False, default=lambda fig: None)
    brief: str | None = None  # what it says instead when the drafted video is over the time limit
    image: Path | None = None
    seconds: float = 0.0
    emptiness: float | None = None


def draft_slides(report: Report, presenter: Presenter | None = None, cells: Sequence[NotebookCell] = (),
                 notebook_name: str = "notebooks/walkthrough.ipynb") -> list[Slide]:
    """Titles, narration and drawings of every slide of the talk, from the runs' numbers, the presenter and the
    notebook's key cells (none: no walkthrough slides)."""
    talk = Talk(report, presenter or Presenter(), tuple(cells), notebook_name=notebook_name)
    deck = []
    for kind in DECK:
        if kind.key == NOTEBOOK:
            deck += [_slide(kind, replace(talk, cell=cell), f"{NOTEBOOK}-{n}") for n, cell in enumerate(talk.cells, 1)]
        elif kind.shown(talk):
            deck.append(_slide(kind, talk, kind.key))
    return deck


def _slide(kind: SlideKind, talk: Talk, key: str) -> Slide:
    title = kind.title if isinstance(kind.title, str) else kind.title(talk)
    return Slide(key, title, kind.narration(talk), lambda fig: kind.draw(fig, talk),
                 kind.brief(talk) if kind.brief else None)


def slide_figure(slide: Slide, number: int, total: int, width: int, height: int) -> Figure:
    """The slide drawn in its frame, not saved: what render_slides writes, and what tests read the texts of."""
    fig = layout.new_slide(width, height, slide.title, number, total)
    slide.draw(fig)
    return fig


def render_slides(deck: list[Slide], folder: Path, width: int, height: int) -> None:
    """One PNG per slide (exactly width x height) under folder; sets each slide's image and emptiness."""
    folder.mkdir(parents=True, exist_ok=True)
    total = len(deck)
    for n, slide in enumerate(deck, 1):
        fig = slide_figure(slide, n, total, width, height)
        slide.image = folder / f"slide{n:02d}-{slide.key}.png"
        with runs.atomic_path(slide.image, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=layout.save_dpi(width), facecolor=fig.get_facecolor())
            with Image.open(tmp) as im:  # even sizes for yuv420p, exactly width x height
                frame = im.convert("RGB").resize((width, height))
                frame.save(tmp, format="png")
        slide.emptiness = round(layout.emptiness(np.asarray(frame)), 3)
    for stale in set(folder.glob("slide*.png")) - {s.image for s in deck}:  # an earlier render's other slides
        stale.unlink()
