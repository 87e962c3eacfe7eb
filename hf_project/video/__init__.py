"""The presentation video, drafted from the report of the runs (hf_project.report), one module per job:

    talk.py       what a deck is drafted from: the report, the presenter, the notebook's key cells
    deck.py       the one table of slides (key, title, narration, drawing); drafts and renders them
    narration.py  what is said: each slide's narration, and the editable narration file
    layout.py     the shapes slides are made of (frame, cards, fitted text, tables, pictures), and emptiness
    slides.py     what is shown of the report: each slide's drawing
    cells.py      what a notebook slide shows: a cell's code and outputs, laid out
    notebook.py   the notebook walked through: executed on the runs, its key cells and their outputs
    render.py     espeak-ng speech, the ffmpeg MP4, ffprobe
    builder.py    the whole job: VideoArguments -> make_video
"""

from hf_project.video.builder import VideoArguments, collect_runs, make_video
from hf_project.video.deck import DECK, SLIDES, Slide, SlideKind, draft_slides, render_slides, slide_figure
from hf_project.video.layout import emptiness
from hf_project.video.narration import balance_sentence, read_narration, write_narration
from hf_project.video.notebook import NotebookCell, key_cells, notebook_of
from hf_project.video.render import check_tools, probe
from hf_project.video.slides import results_table
from hf_project.video.talk import Presenter, Talk

__all__ = [
    "DECK", "SLIDES", "NotebookCell", "Presenter", "Slide", "SlideKind", "Talk", "VideoArguments", "balance_sentence",
    "check_tools", "collect_runs", "draft_slides", "emptiness", "key_cells", "make_video", "notebook_of", "probe",
    "read_narration", "render_slides", "results_table", "slide_figure", "write_narration",
]
