"""scripts/make_video.py: an H.264 + AAC MP4 drafted from runs of tiny models (text, image, audio), the face overlay,
and bad input."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT
from PIL import Image
from task_runs import multi_label_runs_fixture, regression_runs_fixture  # noqa: F401  (session fixtures)
from test_cli import TINY
from test_paper import TEXT_WORDS, audio_runs, image_runs  # noqa: F401  (session fixtures: tiny image/audio runs)

from hf_project import cli, video
from hf_project.config import parse_args
from hf_project.training import run_experiment

pytestmark = pytest.mark.skipif(not all(shutil.which(t) for t in ("ffmpeg", "ffprobe", "espeak-ng")),
                                reason="needs ffmpeg and espeak-ng (make setup installs them as root)")

SIZE = ["--width", "640", "--height", "360"]
SHORT = ["--max_words_per_slide", "9", "--words_per_minute", "230"]


@pytest.fixture(scope="module")
def runs_dir(fortunes_csv, tiny_bert, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("video-runs")
    run_experiment(parse_args(["--dataset", str(fortunes_csv), "--model", f"{tiny_bert},lstm", *TINY,
                               "--runs_dir", str(root / "runs"), "--weights_dir", str(root / "weights")]))
    return root / "runs"


def single_label_slides() -> list[str]:
    """The slides of a single-label report: every slide but the other tasks' figures of the winner."""
    return [key for key in video.SLIDES if key not in ("labels", "errors")]


def make(argv: list[str]) -> int:
    """scripts/make_video.py as a user runs it: 0, or 1 with a one-line error."""
    spec = importlib.util.spec_from_file_location("make_video_script", REPO_ROOT / "scripts" / "make_video.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return cli.run(lambda: module.main(argv))


def frame(path: Path, seconds: float, width: int = 640, height: int = 360) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-ss", f"{seconds:.3f}", "-i", str(path), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3).astype(np.float32)


def test_video_from_runs(runs_dir, tmp_path):
    out = tmp_path / "talk" / "talk.mp4"
    assert make(["--runs", str(runs_dir), "--output", str(out), *SIZE, *SHORT]) == 0
    info = video.probe(out)
    assert "mp4" in info["format"]["format_name"]
    codecs = {s["codec_type"]: s["codec_name"] for s in info["streams"]}
    assert codecs == {"video": "h264", "audio": "aac"}
    duration = float(info["format"]["duration"])
    timeline = json.loads(out.with_suffix(".timeline.json").read_text())
    assert 0 < duration <= 300 and duration == pytest.approx(timeline["seconds"], abs=0.5)
    slides = timeline["slides"]
    assert [s["slide"] for s in slides] == single_label_slides()
    frames = [frame(out, (s["start"] + s["end"]) / 2) for s in slides]
    for a, b, s in zip(frames, frames[1:], slides[1:], strict=False):
        assert np.abs(a - b).mean() > 1.0, f"slide {s['slide']} looks like the one before it"
    # The narration is drafted from the runs' numbers and saved for editing.
    narration = out.with_suffix(".narration.txt").read_text()
    assert "[results]" in narration and "lstm" in narration
    assert not list(out.parent.glob(".*tmp*"))  # no half-written file left beside the video


def test_full_narration_fits_five_minutes(runs_dir):
    ctx = video.collect_runs([str(runs_dir)], None)
    slides = video.draft_slides(ctx)
    words = sum(len(s.narration.split()) for s in slides)
    assert 100 < words < 160 * 5 * 0.9  # at 160 words a minute, under 4.5 minutes of speech
    results = next(s for s in slides if s.key == "results").narration
    best = max(ctx.rows, key=lambda r: r["test_macro_f1_mean"])
    assert best["model"] in results and f"{best['test_macro_f1_mean']:.2f}" in results  # the runs' own number
    # how sure: the winner against the runner-up on the same test examples, from the report's paired comparison
    runner = ctx.verdict.runner_up["model"]
    assert f"Compared example by example on the same test set, {best['model']} is ahead of {runner}" in results
    assert "the 95 percent interval runs from" in results and "McNemar's test gives a p-value of" in results


def test_face_in_the_corner_for_the_whole_video(runs_dir, tmp_path):
    face = tmp_path / "face.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=0xE01010:s=160x120:d=1.5", "-c:v",
                    "libx264", "-pix_fmt", "yuv420p", str(face)], check=True)
    out = tmp_path / "face-talk.mp4"
    assert make(["--runs", str(runs_dir), "--output", str(out), "--face", str(face), *SIZE, *SHORT]) == 0
    timeline = json.loads(out.with_suffix(".timeline.json").read_text())
    margin = max(8, 640 // 50)
    x, y = 640 - 160 - margin, 360 - 120 - margin  # scaled to a quarter of the width: 160x120
    for t in (0.5, timeline["seconds"] - 1.0):  # the 1.5 s clip loops to the end
        image = frame(out, t)
        corner = image[y + 10 : y + 110, x + 10 : x + 150].reshape(-1, 3).mean(0)
        np.testing.assert_allclose(corner, [224, 16, 16], atol=30)
        outside = image[y + 10 : y + 110, 20:160].reshape(-1, 3).mean(0)
        assert np.abs(outside - corner).max() > 60


def test_edited_narration_is_spoken_and_never_overwritten(runs_dir, tmp_path, capsys):
    out = tmp_path / "v.mp4"
    assert make(["--runs", str(runs_dir), "--output", str(out), *SIZE, *SHORT]) == 0
    script = out.with_suffix(".narration.txt")
    before = json.loads(out.with_suffix(".timeline.json").read_text())
    text = script.read_text()
    edited = text.replace(next(s["narration"] for s in before["slides"] if s["slide"] == "title"),
                          "Hello and welcome to a much longer introduction than the drafted one, spoken slowly.")
    script.write_text(edited)
    assert make(["--runs", str(runs_dir), "--output", str(out), *SIZE, *SHORT]) == 1  # would lose the edits
    assert "has your edits" in capsys.readouterr().err and script.read_text() == edited
    assert make(["--runs", str(runs_dir), "--output", str(out), "--script", str(script), *SIZE, *SHORT]) == 0
    after = json.loads(out.with_suffix(".timeline.json").read_text())
    title = after["slides"][0]
    assert title["narration"].startswith("Hello and welcome to a much longer introduction")
    assert title["end"] - title["start"] > before["slides"][0]["end"] - before["slides"][0]["start"]


def one_line_error(argv: list[str], capsys) -> str:
    assert make(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


def test_bad_input_is_one_line_and_writes_nothing(runs_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "bad" / "v.mp4"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no complete runs" in one_line_error(["--runs", str(empty), "--output", str(out)], capsys)
    broken = tmp_path / "face.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 20)
    message = one_line_error(["--runs", str(runs_dir), "--output", str(out), "--face", str(broken)], capsys)
    assert f"face recording {broken} does not decode" in message
    real_which = shutil.which
    monkeypatch.setattr(video.render.shutil, "which", lambda tool: None if tool == "espeak-ng" else real_which(tool))
    message = one_line_error(["--runs", str(runs_dir), "--output", str(out)], capsys)
    assert "espeak-ng not found" in message and "apt-get install -y espeak-ng" in message
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))


def test_unknown_slide_and_incomplete_run_are_refused(runs_dir, tmp_path, capsys):
    script = tmp_path / "n.txt"
    script.write_text("[title]\nHello.\n\n[outro]\nBye.\n")
    message = one_line_error(["--runs", str(runs_dir), "--output", str(tmp_path / "v.mp4"), "--script", str(script)],
                             capsys)
    assert "unknown slide [outro]" in message and f"{script}:4" in message
    run = next(p.parent for p in sorted(runs_dir.rglob("status")))
    failed = tmp_path / "failed-run"
    shutil.copytree(run, failed)
    (failed / "status").write_text("failed\n")
    message = one_line_error(["--runs", str(failed), "--output", str(tmp_path / "v.mp4")], capsys)
    assert "is not complete (status: failed)" in message
    assert not (tmp_path / "v.mp4").exists()


@pytest.mark.parametrize("modality", ["image", "audio"])
def test_image_and_audio_videos_show_their_inputs(modality, image_runs, audio_runs, tmp_path):  # noqa: F811
    runs_dir = image_runs if modality == "image" else audio_runs
    out = tmp_path / "talk.mp4"
    assert make(["--runs", str(runs_dir), "--output", str(out), *SIZE, *SHORT]) == 0
    timeline = json.loads(out.with_suffix(".timeline.json").read_text())
    slides = {s["slide"]: s for s in timeline["slides"]}
    assert [s["slide"] for s in timeline["slides"]] == single_label_slides()
    # the samples slide shows the runs' sample-inputs figure: dark pictures (digits-like shapes, spectrograms) fill
    # the middle of a slide that is otherwise white
    samples = frame(out, (slides["samples"]["start"] + slides["samples"]["end"]) / 2)
    conclusion = frame(out, (slides["conclusion"]["start"] + slides["conclusion"]["end"]) / 2)
    middle = (slice(120, 300), slice(160, 480))
    assert samples[middle].mean() < conclusion[middle].mean() - 40
    # the narration, drafted in full, speaks of images or clips, never of texts or tokens
    ctx = video.collect_runs([str(runs_dir)], None)
    drafted = {s.key: s.narration for s in video.draft_slides(ctx)}
    everything = " ".join(drafted.values())
    assert not TEXT_WORDS.search(everything), TEXT_WORDS.search(everything).group(0)
    if modality == "image":
        assert "each image one of 3 classes" in drafted["data"]
        assert "training images of each class" in drafted["samples"]
        assert "reads 32 by 32 RGB images" in drafted["models"]
        assert "16 by 16 grey images, row by row" in drafted["models"]
    else:
        assert "each audio clip one of 3 classes" in drafted["data"] and "log-mel spectrograms" in drafted["samples"]
        assert "reads the waveform at 16 kilohertz" in drafted["models"]
        assert "16 log-mel bands at 8 kilohertz" in drafted["models"]


def test_notebook_slide_names_inputs_without_the_authors_paths():
    assert video.shown_input("/home/ada/data/tones/high/high_07.mp3", "audio") == "high/high_07.mp3"
    assert video.shown_input("<image 12>", "image") == "test image 12"  # a builtin set has no files
    assert video.shown_input("<audio 3>", "audio") == "test clip 3"
    assert video.shown_input("A long text " * 9, "text").endswith("…")


def test_balance_sentence_says_imbalanced_only_when_it_is():
    from hf_project.video import balance_sentence

    balanced = [{"label": "a", "train": 72}, {"label": "b", "train": 70}]
    assert "imbalanced" not in balance_sentence(balanced, 72 / 70, "macro_f1")
    skewed = [{"label": "a", "train": 400}, {"label": "b", "train": 20}]
    assert "strongly imbalanced" in balance_sentence(skewed, 20.0, "macro_f1")


def test_the_deck_is_one_table_of_slides():
    assert video.SLIDES == tuple(kind.key for kind in video.DECK) and len(set(video.SLIDES)) == len(video.SLIDES)
    for kind in video.DECK:
        assert callable(kind.narration) and callable(kind.draw)
        assert isinstance(kind.title, str) or callable(kind.title)


@pytest.mark.parametrize("task", ["multi_label", "regression"])
def test_multi_label_and_regression_videos_speak_of_their_task(task, multi_label_runs, regression_runs, tmp_path):
    runs_dir = multi_label_runs if task == "multi_label" else regression_runs
    report = video.collect_runs([str(runs_dir)], None)
    slides = video.draft_slides(report)
    figure = "labels" if task == "multi_label" else "errors"
    assert [s.key for s in slides] == [k for k in video.SLIDES if k not in {"confusion", "labels", "errors"} - {figure}]
    drafted = {s.key: s.narration for s in slides}
    everything = " ".join(drafted.values())
    wrong = re.search(r"confusion|\bclasses\b" + (r"|accura|\bclass" if task == "regression" else ""), everything, re.I)
    assert not wrong, wrong
    if task == "regression":
        assert slides[0].title == "Text regression on package_sizes"
        assert drafted["data"].startswith("The task is to predict log_size, a number, from each text.")
        assert "where lower is better" in drafted["data"] and "Its mean absolute error is" in drafted["results"]
        best = min(report.rows, key=lambda r: r["test_rmse_mean"])
        assert f"minilm has the lowest test RMSE, {best['test_rmse_mean']:.2f}" in drafted["results"]
        assert "its true log_size across" in drafted["errors"] and "predicted values equal" in drafted["notebook"]
        assert "minilm is ahead of lstm by" in drafted["results"] and "Wilcoxon signed-rank test" in drafted["results"]
        assert video.collect_runs([str(runs_dir)], None, 40, 7).paired.samples == 40  # make_video's flags
        line = video.slides.paired_line(report.paired, report.paired.of("lstm"))
        assert line.startswith("minilm ahead of lstm: ") and " lower RMSE, 95% CI [" in line
        assert "(mean of 2 seeds), Wilcoxon p = " in line
    else:
        assert slides[0].title == "Text multi-label classification on debtags"
        assert drafted["data"].startswith("The task is to tag each text with any of 4 labels")
        assert "minilm has the best test micro-F1" in drafted["results"] and "subset accuracy" in drafted["results"]
        assert "points of micro-F1; the 95 percent interval" in drafted["results"] and "McNemar" in drafted["results"]
        threshold = report.winner.best_run.threshold["value"]  # the seed best on validation: 0.4 or 0.45
        assert f"reaches {threshold:g}, a threshold tuned on validation" in drafted["labels"]
        assert "Here are a few training texts, as" in drafted["samples"]
    folder = tmp_path / "slides"
    video.render_slides(report, slides, folder, 640, 360)
    pictures = {s.key: np.asarray(Image.open(s.image).convert("L"), dtype=np.float32) for s in slides}
    assert all(p.shape == (360, 640) for p in pictures.values())
    middle = (slice(120, 300), slice(160, 480))
    # the winner's test figure (axes, grid, bars or points) is drawn in the middle of its slide, where a slide that
    # only says the figure is missing stays white
    assert (pictures[figure][middle] < 200).mean() > 0.005
