"""notebooks/*.ipynb executed headless, top to bottom, on runs of tiny models (a kernel of this interpreter)."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import REPO_ROOT, write_csv
from nbclient import NotebookClient
from test_cli import TINY
from test_inference import image_run, make_runs, text_runs  # noqa: F401  (session fixtures: the tiny runs)
from test_paper import audio_runs, image_runs  # noqa: F401  (session fixtures: tiny image and audio run sets)
from test_tasks import MULTI, REGRESSION, multi_label_rows, regression_rows

from hf_project import runs

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


@pytest.fixture(scope="module")
def task_runs(tmp_path_factory) -> dict[str, Path]:
    """A complete run of the tiny LSTM per task kind beyond single-label, on the cookies' derived labels and targets
    (tests/test_tasks.py): label sets (class weights and a fast LSTM, so it predicts varied sets, not none: its head
    starts at the label frequencies, all below 0.5) and log word counts."""
    fast = ["--lstm_learning_rate", "0.01"]
    flags = {"multi_label": ("tags.csv", multi_label_rows(), [*MULTI, "--class_weights", *fast]),
             "regression": ("words.csv", regression_rows(), [*REGRESSION, *fast])}
    made = {}
    for task, (name, rows, extra) in flags.items():
        root = tmp_path_factory.mktemp(task)
        data = write_csv(root / name, rows)
        made[task] = make_runs(root, ["--dataset", str(data), "--model", "lstm", *extra, *TINY])["lstm"]
    return made


def stored(run_dir: Path) -> tuple[dict, list[dict[str, str]]]:
    """The run's metrics.json and the rows of its predictions_test.csv."""
    with open(run_dir / runs.PREDICTIONS_FILE, newline="") as f:
        return json.loads((run_dir / runs.METRICS_FILE).read_text()), list(csv.DictReader(f))


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


def test_inference_notebook_on_a_multi_label_run(task_runs, kernel_dir, monkeypatch):
    run_dir = task_runs["multi_label"]
    nb = execute("inference.ipynb", kernel_dir, monkeypatch, RUN_DIR=str(run_dir))
    text, figures = outputs(nb)
    metrics, rows = stored(run_dir)
    labels = ("food", "law", "long", "question", "startrek")
    assert "LSTMForSequenceClassification: text, 5 labels, each predicted at probability >= 0.5" in text
    assert f"labels: {', '.join(labels)}" in text
    assert float(text.split("max |p - p_eval| = ")[1].split()[0]) < 1e-5
    # the re-predictions score what the evaluation scored: the same label sets
    micro, subset = re.search(r"36 test examples: micro-F1 (\S+), subset accuracy (\S+),", text).groups()
    assert (float(micro), float(subset)) == (round(metrics["test"]["micro_f1"], 3),
                                             round(metrics["test"]["subset_accuracy"], 3))
    assert 0 < metrics["test"]["micro_f1"] and metrics["test"]["subset_accuracy"] < 1  # sets right and wrong
    shown, wrong = map(int, re.search(r"(\d+) shown of (\d+) mistakes \(predicted label set", text).groups())
    assert wrong == sum(r["correct"] == "False" for r in rows) and shown == min(6, wrong)
    gaps = [float(g) for g in re.findall(r"\(max \|p - truth\| (\S+)\)\]", text)]
    assert len(gaps) == shown and gaps == sorted(gaps, reverse=True) and all(g >= 0.5 for g in gaps)
    mine = re.findall(r"'([^'\n]+)'\n  -> \{([^}]*)\}; top 3: ", text)
    assert [x for x, _ in mine] == ["Beam me up, Scotty, there is no intelligent life down here.",
                                    "The defendant pleaded guilty to all charges."]
    assert all(set(filter(None, chosen.split(", "))) <= set(labels) for _, chosen in mine), mine
    assert "confusion" not in text
    assert figures >= 1  # precision, recall and F1 per label


def test_inference_notebook_on_a_regression_run(task_runs, kernel_dir, monkeypatch):
    run_dir = task_runs["regression"]
    nb = execute("inference.ipynb", kernel_dir, monkeypatch, RUN_DIR=str(run_dir))
    text, figures = outputs(nb)
    metrics, rows = stored(run_dir)
    assert "LSTMForSequenceClassification: text, regression of score" in text
    assert float(text.split("max |y - y_eval| = ")[1].split()[0]) < 1e-5
    rmse, pearson = re.search(r"36 test examples: RMSE (\S+), Pearson r (\S+),", text).groups()
    assert float(rmse) == pytest.approx(metrics["test"]["rmse"], rel=1e-3)
    assert float(pearson) == pytest.approx(metrics["test"]["pearson"], abs=1e-3)
    # the largest errors first, the first of them the predictions file's largest
    errors = [float(e) for e in re.findall(r"\(error ([-+]\S+)\)\]", text)]
    assert len(errors) == 6 and [abs(e) for e in errors] == sorted(map(abs, errors), reverse=True)
    assert abs(errors[0]) == pytest.approx(max(abs(float(r["error"])) for r in rows), abs=1e-3)
    mine = re.findall(r"'([^'\n]+)'\n  -> score = (\S+)\n", text)
    assert len(mine) == 2 and all(0 < float(v) < 3 for _, v in mine), mine  # log10 of a word count
    # a regression has no classes, probabilities or accuracy
    assert not re.search(r"class|accuracy|top 3|mistakes", text)
    assert figures >= 1  # predicted against true values


@pytest.mark.parametrize("task", ["multi_label", "regression"])
def test_walkthrough_notebook_on_other_tasks(task, task_runs, kernel_dir, monkeypatch):
    run_dir = task_runs[task]
    nb = execute("walkthrough.ipynb", kernel_dir, monkeypatch, HF_PROJECT_RUNS_DIR=str(run_dir.parents[2]))
    text, figures = outputs(nb)
    _, rows = stored(run_dir)
    dataset = "tags" if task == "multi_label" else "words"
    assert f"dataset {dataset}: 1 complete runs of lstm\ntask: {task}" in text
    verdict = re.search(r"lstm on test text 0: true (.*), predicted (.*)", text).groups()
    if task == "multi_label":
        assert "labels per test example: mean" in text and "hardest labels (lowest F1)" in text
        assert "micro-F1" in text and "subset_accuracy" in text and "weighted_f1" not in text
        truth, predicted = (x or "(none)" for x in (rows[0]["label"], rows[0]["predicted"]))
        assert verdict[0] == truth and verdict[1].startswith(f"{predicted} (top 3: "), verdict
    else:
        assert "RMSE" in text and "errors per quintile of the true value" in text
        assert not re.search(r"class|accuracy|macro", text)
        assert tuple(map(float, verdict)) == pytest.approx((float(rows[0]["label"]), float(rows[0]["predicted"])),
                                                           rel=1e-3)
    # examples per label or the test targets, lengths, sample inputs, loss curves, the run's test figure (F1 per label,
    # or predicted against true values)
    assert figures >= 5
