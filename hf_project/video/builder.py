"""The presentation video, drafted from the runs: slides, a narration script, espeak-ng speech, an H.264 + AAC MP4.

    python scripts/make_video.py --author "Ada Lovelace" --student_number 1234567   # every complete run in runs/
    python scripts/make_video.py --script presentation/narration.txt --face webcam.mp4

The title slide and the narration start with the presenter's name and student number (placeholders until given).
The notebook (notebooks/walkthrough.ipynb, or --notebook) is executed headless on the same runs, unless it already
has outputs; its key cells (notebook.key_cells) follow the results, one slide each, code and outputs.
Every number on a slide or in the narration comes from the run directories, through the report model
(hf_project.report) that the tables and the paper render too. The narration is written to a text file with one
`[slide]` section per slide; edit it and render again with `--script` to change what is said. Each slide lasts as
long as its narration; the whole video may last at most `--max_seconds` (5 minutes). With `--face`, the recording
(its picture; the narration stays the sound) is scaled into the bottom-right corner for the whole video, looped if it
is shorter.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from hf_project import runs
from hf_project.config import DEFAULT_SEED
from hf_project.errors import UserError
from hf_project.report import Report, report_of
from hf_project.stats import DEFAULT_BOOTSTRAP_SAMPLES
from hf_project.video import render
from hf_project.video.deck import draft_slides, render_slides
from hf_project.video.narration import read_narration, shorten, write_narration
from hf_project.video.notebook import WALKTHROUGH, key_cells, notebook_of
from hf_project.video.talk import Presenter

logger = logging.getLogger(__name__)


@dataclass
class VideoArguments:
    runs: list[str] = field(default_factory=lambda: ["runs"], metadata={
        "help": "Run directories, or folders holding runs (runs/, runs/<dataset>/<model>); complete runs only."})
    dataset: str | None = field(default=None, metadata={"help": "The data set, when the runs cover several."})
    author: str | None = field(default=None, metadata={
        "help": "Your name, on the title slide and said first (the course asks for it); '[Your name]' until given."})
    student_number: str | None = field(default=None, metadata={
        "help": "Your student number, beside your name; '[Student number]' until given."})
    notebook: str | None = field(default=None, metadata={
        "help": "The notebook to walk through (default notebooks/walkthrough.ipynb): executed on the runs unless it "
                "already has outputs; its key cells are shown with their outputs (tag cells 'video' to choose)."})
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
    bootstrap_samples: int = field(default=DEFAULT_BOOTSTRAP_SAMPLES, metadata={
        "help": "Bootstrap resamples of the test examples behind the 95 percent intervals of the results slide."})
    bootstrap_seed: int = field(default=DEFAULT_SEED, metadata={
        "help": "Seed of the bootstrap resamples (the same seed gives the same intervals)."})

    def __post_init__(self) -> None:
        self.author = (self.author or "").strip() or None
        self.student_number = (self.student_number or "").strip() or None


def collect_runs(paths: list[str], dataset: str | None, bootstrap_samples: int = DEFAULT_BOOTSTRAP_SAMPLES,
                 bootstrap_seed: int = DEFAULT_SEED) -> Report:
    """The report of the complete runs under `paths` (run directories or folders of runs); one data set."""
    return report_of(paths, dataset, bootstrap_samples, bootstrap_seed)


def make_video(args: VideoArguments) -> Path:
    """Slides, narration, speech and the MP4; returns the MP4's path. Nothing is written before the checks pass."""
    render.check_tools()
    report = collect_runs(args.runs, args.dataset, args.bootstrap_samples, args.bootstrap_seed)
    face = Path(args.face) if args.face else None
    if face is not None:
        render.check_face(face)
    output = Path(args.output)
    if output.suffix.lower() != ".mp4":
        raise UserError(f"--output {output} must end in .mp4")
    narration_file = output.with_suffix(".narration.txt")
    timeline_file = output.with_suffix(".timeline.json")
    if not args.script and narration_file.is_file() and _edited(narration_file, timeline_file):
        raise UserError(f"{narration_file} has your edits: render from it with --script {narration_file}, or delete "
                        "it to draft a new narration")
    notebook = Path(args.notebook) if args.notebook else WALKTHROUGH
    cells = key_cells(notebook_of(notebook, report))
    presenter = Presenter(args.author, args.student_number)
    if presenter.name is None or presenter.student_number is None:
        logger.warning("no --author or --student_number: the title slide and narration show placeholders")
    slides = draft_slides(report, presenter, cells, _shown(notebook))
    for slide in slides:
        slide.narration = shorten(slide.narration, args.max_words_per_slide)
    if args.script:
        spoken = read_narration(Path(args.script), [s.key for s in slides])
        for slide in slides:
            slide.narration = spoken.get(slide.key, "")
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".video-", dir=output.parent) as tmp:
        work = Path(tmp)
        audio, rate = render.narrate(slides, work, args.voice, args.words_per_minute)
        if len(audio) / rate > args.max_seconds and not args.script and any(s.brief for s in slides):
            for slide in slides:  # a draft too long for the limit: the notebook slides leave out the Markdown
                if slide.brief:
                    slide.narration = shorten(slide.brief, args.max_words_per_slide)
            logger.info("the draft was over %g s: the notebook slides say less", args.max_seconds)
            audio, rate = render.narrate(slides, work, args.voice, args.words_per_minute)
        total = len(audio) / rate
        if total > args.max_seconds:
            if not args.script:  # the draft, for the author to shorten
                write_narration([(s.key, s.narration) for s in slides], narration_file, output, _runs_hint(args))
            raise UserError(f"the narration lasts {total:.0f} s, over the {args.max_seconds:g} s limit: shorten it "
                            f"(edit {narration_file} and pass --script {narration_file}) or raise --words_per_minute")
        slides_dir = output.parent / f"{output.stem}-slides"
        render_slides(slides, slides_dir, args.width, args.height)
        sf.write(work / "narration.wav", audio, rate, subtype="PCM_16")
        render.encode(slides, work / "narration.wav", face, output, args.width, args.height)
    if not args.script:
        text = write_narration([(s.key, s.narration) for s in slides], narration_file, output, _runs_hint(args))
    else:
        text = None
    start, timeline = 0.0, []
    for slide in slides:
        timeline.append({"slide": slide.key, "title": slide.title, "image": str(slide.image), "start": round(start, 3),
                         "end": round(start + slide.seconds, 3), "emptiness": slide.emptiness,
                         "narration": slide.narration})
        start += slide.seconds
    previous = json.loads(timeline_file.read_text()) if timeline_file.is_file() else {}
    generated = hashlib.sha256(text.encode()).hexdigest() if text else previous.get("narration_sha256")
    runs.atomic_write_text(timeline_file, json.dumps({
        "video": str(output), "seconds": round(start, 3), "face": str(face) if face else None,
        "author": args.author, "student_number": args.student_number, "notebook": str(notebook),
        "narration_sha256": generated, "runs": [str(r.path) for g in report.groups for r in g.runs],
        "slides": timeline}, indent=2))
    logger.info("video %s: %d slides, %.0f s", output, len(slides), start)
    return output


def _runs_hint(args: VideoArguments) -> str:
    """The flags that render the same video again, for the narration file's header."""
    hint = "" if args.runs == ["runs"] else " --runs " + " ".join(args.runs)
    return hint + (f" --notebook {args.notebook}" if args.notebook else "")


def _shown(path: Path) -> str:
    """A path as the narration says it: relative to here when it is under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path.name


def _edited(narration_file: Path, timeline_file: Path) -> bool:
    """Whether the drafted narration was changed by hand since it was written."""
    if not timeline_file.is_file():
        return True
    recorded = json.loads(timeline_file.read_text()).get("narration_sha256")
    return recorded != hashlib.sha256(narration_file.read_bytes()).hexdigest()
