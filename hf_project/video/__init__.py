"""The presentation video, drafted from the report of the runs (hf_project.report), one module per job:

    deck.py       the one table of slides (key, title, narration, drawing); drafts and renders them
    narration.py  what is said: each slide's narration, and the editable narration file
    slides.py     what is shown: the slide frame and each slide's drawing
    render.py     espeak-ng speech, the ffmpeg MP4, ffprobe
    builder.py    the whole job: VideoArguments -> make_video
"""

from hf_project.video.builder import VideoArguments, collect_runs, make_video
from hf_project.video.deck import DECK, SLIDES, Slide, SlideKind, draft_slides, render_slides
from hf_project.video.narration import balance_sentence, read_narration, write_narration
from hf_project.video.render import check_tools, probe
from hf_project.video.slides import shown_input

__all__ = [
    "DECK", "SLIDES", "Slide", "SlideKind", "VideoArguments", "balance_sentence", "check_tools", "collect_runs",
    "draft_slides", "make_video", "probe", "read_narration", "render_slides", "shown_input", "write_narration",
]
