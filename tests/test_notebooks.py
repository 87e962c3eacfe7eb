"""notebooks/*.ipynb executed headless, top to bottom, on runs of tiny models (a kernel of this interpreter)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import REPO_ROOT
from nbclient import NotebookClient
from test_inference import image_run, text_runs  # noqa: F401  (session fixtures: the tiny runs)
from test_paper import audio_runs, image_runs  # noqa: F401  (session fixtures: tiny image and audio run sets)

NOTEBOOKS = REPO_ROOT / "notebooks"


@pytest.fixture(scope="session")
def kernel_dir(tmp_path_factory) -> Path:
    """A kernelspec that runs this very interpreter (the venv's), whatever kernels the machine has installed."""
    root = tmp_path_factory.mktemp("kernels")
    spec = root / "hf-project-test"
    spec.mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "hf_project (tests)", "language": "python",
    }))
    return root


def execute(name: str, kernel_dir: Path, monkeypatch, **env: str) -> nbformat.NotebookNode:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend puts figures in the outputs
    for key, value in {"HF_HUB_OFFLINE": "1", **env}.items():
        monkeypatch.setenv(key, value)  # the kernel inherits this environment
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    specs = KernelSpecManager(kernel_dirs=[str(kernel_dir)])
    km = KernelManager(kernel_name="hf-project-test", kernel_spec_manager=specs)
    NotebookClient(nb, km=km, timeout=120, resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return nb


def outputs(nb: nbformat.NotebookNode) -> tuple[str, int]:
    """All text the cells printed or displayed, and the number of figures (PNG images) they drew."""
    text, figures = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", out
            text.append(out.get("text", ""))
            data = out.get("data", {})
            text.append(data.get("text/plain", "") + data.get("text/markdown", ""))
            figures += "image/png" in data
    return "\n".join(text), figures


def players(nb: nbformat.NotebookNode) -> int:
    """How many audio players the cells displayed."""
    return sum("<audio" in out.get("data", {}).get("text/html", "") for cell in nb.cells
               for out in cell.get("outputs", []))


def own_predictions(text: str, classes: tuple[str, ...]) -> list[tuple[str, str]]:
    """(input, predicted class) of the 'Your own input' cell's lines: 'name'\n  -> class (score); top 3: ..."""
    pattern = rf"'([^'\n]+)'\n  -> ({'|'.join(classes)}) \(0\.\d{{3}}\); top 3: "
    return re.findall(pattern, text)


def test_inference_notebook_on_a_text_run(text_runs, kernel_dir, monkeypatch):  # noqa: F811
    nb = execute("inference.ipynb", kernel_dir, monkeypatch, RUN_DIR=str(text_runs["lstm"]))
    text, figures = outputs(nb)
    assert "LSTMForSequenceClassification: text, 3 classes" in text
    # The notebook's predictions and the run's own evaluation agree to rounding, not merely "in some e-0 range".
    assert float(text.split("max |p - p_eval| = ")[1].split()[0]) < 1e-5
    assert "mistakes" in text and "Beam me up, Scotty" in text
    assert figures >= 1  # the confusion matrix


def test_inference_notebook_on_an_image_run(image_run, kernel_dir, monkeypatch):  # noqa: F811
    nb = execute("inference.ipynb", kernel_dir, monkeypatch, RUN_DIR=str(image_run))
    text, figures = outputs(nb)
    assert "image, 3 classes" in text and "classes: blob, horizontal, vertical" in text
    mistakes = "0 shown" not in text
    # two test images of their own, each named by its file and predicted, and drawn with the prediction
    mine = own_predictions(text, ("blob", "horizontal", "vertical"))
    assert len(mine) == 2 and all(name.endswith(".png") for name, _ in mine), mine
    assert figures >= 2 + mistakes  # confusion matrix, the mistakes drawn when there are any, the own inputs


def test_inference_notebook_on_an_audio_run(audio_runs, kernel_dir, monkeypatch):  # noqa: F811
    nb = execute("inference.ipynb", kernel_dir, monkeypatch, RUN_DIR=str(audio_runs / "tones" / "lstm"))
    text, figures = outputs(nb)
    assert "LSTMForSequenceClassification: audio, 3 classes" in text and "classes: high, low, mid" in text
    assert float(text.split("max |p - p_eval| = ")[1].split()[0]) < 1e-5
    mine = own_predictions(text, ("high", "low", "mid"))
    assert len(mine) == 2 and all(name.endswith((".wav", ".flac", ".ogg", ".mp3")) for name, _ in mine), mine
    shown = 0 if "0 shown" in text else 1
    assert figures >= 2 + shown  # confusion matrix, mistakes (spectrograms), the own clips (spectrograms)
    assert players(nb) == 2 + (int(text.split(" shown of ")[0].split()[-1]) if shown else 0)  # a player per clip


def test_walkthrough_notebook_reads_the_runs(text_runs, kernel_dir, monkeypatch):  # noqa: F811
    runs_dir = text_runs["lstm"].parents[2]
    nb = execute("walkthrough.ipynb", kernel_dir, monkeypatch, HF_PROJECT_RUNS_DIR=str(runs_dir))
    text, figures = outputs(nb)
    assert "dataset sample: 2 complete runs" in text
    assert "words per text" in text and "parameters" in text and "macro-F1" in text and "accuracy" in text
    assert figures >= 4  # class balance, lengths, loss curves, a confusion matrix


@pytest.mark.parametrize("modality", ["image", "audio"])
def test_walkthrough_notebook_on_image_and_audio_runs(modality, image_runs, audio_runs, kernel_dir,  # noqa: F811
                                                      monkeypatch):
    runs_dir = image_runs if modality == "image" else audio_runs
    nb = execute("walkthrough.ipynb", kernel_dir, monkeypatch, HF_PROJECT_RUNS_DIR=str(runs_dir))
    text, figures = outputs(nb)
    dataset, classes = ("shapes", ("blob", "horizontal", "vertical")) if modality == "image" else (
        "tones", ("high", "low", "mid"))
    assert f"dataset {dataset}: 2 complete runs" in text
    assert ("image width (pixels)" if modality == "image" else "clip duration (s)") in text
    assert "words per text" not in text
    noun = "image" if modality == "image" else "clip"
    prediction = re.search(rf"on test {noun} 0: true ({'|'.join(classes)}), predicted ({'|'.join(classes)}) "
                           r"\(0\.\d{3}\)", text)
    assert prediction, text[-500:]
    # class balance, sizes, the runs' sample-inputs figure, loss curves, 2 confusion matrices, the predicted input
    assert figures >= 7
    assert players(nb) == (modality == "audio")
