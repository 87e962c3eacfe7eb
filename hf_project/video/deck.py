"""The slide deck: one table of the slides, each with its key, title, narration and drawing, drafted from a report
and rendered to PNG frames."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure
from PIL import Image

from hf_project import plots, runs
from hf_project.report import Report
from hf_project.video import narration, slides


@dataclass(frozen=True)
class SlideKind:
    """One row of the deck: what a slide is called, says and shows; `shown` leaves it out of some reports."""

    key: str
    title: str | Callable[[Report], str]
    narration: Callable[[Report], str]
    draw: Callable[[Figure, Report], None]
    shown: Callable[[Report], bool] = lambda report: True


DECK = (
    SlideKind("title", lambda r: f"{r.modality.capitalize()} {r.task_name} on {r.dataset}", narration.title,
              slides.draw_title),
    SlideKind("data", "Problem and data", narration.data, slides.draw_data),
    # left out when the runs predate their sample-inputs figure
    SlideKind("samples", lambda r: f"What the {plots.INPUT_NOUNS[r.modality][1]} look like", narration.samples,
              slides.draw_samples, shown=lambda r: r.sample_inputs_figure is not None),
    SlideKind("models", "Models and hyperparameters", narration.models, slides.draw_models),
    SlideKind("notebook", "The inference notebook", narration.notebook, slides.draw_notebook),
    SlideKind("training", "What training revealed", narration.training, slides.draw_training),
    SlideKind("results", "Results on validation and test", narration.results, slides.draw_results),
    # the winner on the test set, one slide per task: its confusion matrix, its F1 per label, its predicted values
    SlideKind("confusion", lambda r: f"Where {r.winner.label} goes wrong", narration.confusion,
              slides.draw_test_figure, shown=lambda r: r.task == "single_label"),
    SlideKind("labels", lambda r: f"Which labels {r.winner.label} finds", narration.per_label,
              slides.draw_test_figure, shown=lambda r: r.task == "multi_label"),
    SlideKind("errors", lambda r: f"Where {r.winner.label} goes wrong", narration.errors,
              slides.draw_test_figure, shown=lambda r: r.task == "regression"),
    SlideKind("conclusion", "Conclusion", narration.conclusion, slides.draw_conclusion),
)
SLIDES = tuple(kind.key for kind in DECK)
_KINDS = {kind.key: kind for kind in DECK}


@dataclass
class Slide:
    key: str
    title: str
    narration: str
    image: Path | None = None
    seconds: float = 0.0


def draft_slides(report: Report) -> list[Slide]:
    """Titles and narration of every slide the report has, from the runs' numbers."""
    return [Slide(kind.key, kind.title if isinstance(kind.title, str) else kind.title(report), kind.narration(report))
            for kind in DECK if kind.shown(report)]


def render_slides(report: Report, deck: list[Slide], folder: Path, width: int, height: int) -> None:
    """One PNG per slide (exactly width x height) under folder; sets each slide's image."""
    folder.mkdir(parents=True, exist_ok=True)
    total = len(deck)
    for n, slide in enumerate(deck, 1):
        fig = slides.new_slide(width, height, slide.title, n, total)
        _KINDS[slide.key].draw(fig, report)
        slide.image = folder / f"slide{n:02d}-{slide.key}.png"
        with runs.atomic_path(slide.image, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=100)
            with Image.open(tmp) as im:  # even sizes for yuv420p, exactly width x height
                im.convert("RGB").resize((width, height)).save(tmp, format="png")
    for stale in set(folder.glob("slide*.png")) - {s.image for s in deck}:  # an earlier render's other slides
        stale.unlink()
