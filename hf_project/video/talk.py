"""What a deck is drafted from: the report of the runs, the presenter, and the notebook's key cells."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hf_project.report import Report
from hf_project.video.notebook import NotebookCell


@dataclass(frozen=True)
class Presenter:
    """Who presents: the course asks for the name and student number first. Missing ones show as placeholders that
    the author has to fill in (--author, --student_number, or the narration file)."""

    name: str | None = None
    student_number: str | None = None
    NAME_PLACEHOLDER: ClassVar[str] = "[Your name]"
    NUMBER_PLACEHOLDER: ClassVar[str] = "[Student number]"

    @property
    def shown_name(self) -> str:
        return self.name or self.NAME_PLACEHOLDER

    @property
    def shown_number(self) -> str:
        return self.student_number or self.NUMBER_PLACEHOLDER

    @property
    def spoken_number(self) -> str:
        """The student number as it is read out: digit by digit ('s1234' -> 's 1 2 3 4'), not as one large number."""
        if not self.student_number:
            return self.NUMBER_PLACEHOLDER
        return " ".join(self.student_number) if self.student_number.isalnum() else self.student_number


@dataclass(frozen=True)
class Talk:
    """Everything a slide's title, narration and drawing may use; `cell` is the notebook cell a walkthrough slide
    shows."""

    report: Report
    presenter: Presenter = Presenter()
    cells: tuple[NotebookCell, ...] = ()
    notebook_name: str = "notebooks/walkthrough.ipynb"
    cell: NotebookCell | None = None
