"""notebooks/*.ipynb executed headless, top to bottom, on runs of tiny models (a kernel of this interpreter)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import REPO_ROOT
from nbclient import NotebookClient
from test_inference import image_run, text_runs  # noqa: F401  (session fixtures: the tiny runs)

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
    assert figures >= 1 + mistakes  # confusion matrix, and the mistakes drawn when there are any


def test_walkthrough_notebook_reads_the_runs(text_runs, kernel_dir, monkeypatch):  # noqa: F811
    runs_dir = text_runs["lstm"].parents[2]
    nb = execute("walkthrough.ipynb", kernel_dir, monkeypatch, HF_PROJECT_RUNS_DIR=str(runs_dir))
    text, figures = outputs(nb)
    assert "dataset sample: 2 complete runs" in text
    assert "words per text" in text and "parameters" in text and "macro-F1" in text and "accuracy" in text
    assert figures >= 4  # class balance, lengths, loss curves, a confusion matrix
