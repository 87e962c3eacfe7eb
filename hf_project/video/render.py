"""Sound and picture: espeak-ng speech of the narration, ffmpeg's H.264 + AAC MP4 of the slides, ffprobe.

The only module of the video that runs external tools; it knows slides by their image, narration and duration.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf

from hf_project import runs
from hf_project.errors import UserError, first_line

if TYPE_CHECKING:
    from hf_project.video.deck import Slide

MIN_SLIDE_SECONDS = 3.0
PAUSE_SECONDS = 0.6  # silence after each slide's narration
FPS = 25
INSTALL = {"ffmpeg": "ffmpeg", "ffprobe": "ffmpeg", "espeak-ng": "espeak-ng"}  # tool -> Debian package


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
    """The whole soundtrack and its rate; sets each slide's duration: its speech, a pause, at least
    MIN_SLIDE_SECONDS."""
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
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-tune", "stillimage", "-crf", "23", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "128k", "-t", f"{total:.3f}", "-movflags", "+faststart"]
    try:
        with runs.atomic_path(output, suffix=".mp4") as tmp:  # ffmpeg picks the container by the suffix
            _run([*cmd, str(tmp)], "ffmpeg")
    finally:
        listing.unlink(missing_ok=True)


def probe(path: Path) -> dict[str, Any]:
    """ffprobe's view of a media file: format and streams."""
    proc = _run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)], "ffprobe")
    return json.loads(proc.stdout)
