"""hf_project.inference and scripts/predict.py: the evaluation's numbers again, from saved models, and bad input."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, write_csv
from image_fixtures import make_image_folder
from test_cli import TINY

from hf_project import cli
from hf_project.config import parse_args
from hf_project.errors import UserError
from hf_project.inference import Predictor, run_test_examples
from hf_project.runs import find_runs
from hf_project.training import run_experiment

IMAGE_TINY = ["--per_device_train_batch_size", "8", "--lstm_embedding_dim", "16", "--lstm_hidden_size", "16",
              "--lstm_image_size", "16", "--lstm_num_train_epochs", "2", "--logging_steps", "2"]


def make_runs(root: Path, argv: list[str]) -> dict[str, Path]:
    run_experiment(parse_args([*argv, "--runs_dir", str(root / "runs"), "--weights_dir", str(root / "weights")]))
    return {p.parent.name: p for p in find_runs(root / "runs")}


@pytest.fixture(scope="session")
def text_runs(fortunes_csv, tiny_bert, tmp_path_factory) -> dict[str, Path]:
    """Complete runs of a tiny BERT and a tiny LSTM on the fortunes sample (root/runs, root/weights)."""
    root = tmp_path_factory.mktemp("text-runs")
    return make_runs(root, ["--dataset", str(fortunes_csv), "--model", f"{tiny_bert},lstm", *TINY])


@pytest.fixture(scope="session")
def image_run(tmp_path_factory) -> Path:
    """A complete run of the image LSTM on a small folder of PNG files."""
    root = tmp_path_factory.mktemp("image-runs")
    folder = make_image_folder(root / "shapes", per_class=12)
    return make_runs(root, ["--dataset", str(folder), "--model", "lstm", *IMAGE_TINY])["lstm"]


def stored_probabilities(rows: list[dict[str, str]], label_names: list[str]) -> np.ndarray:
    return np.array([[float(r[f"p_{name}"]) for name in label_names] for r in rows])


def check_same_as_evaluation(predictor: Predictor, run_dir: Path) -> None:
    inputs, rows = run_test_examples(run_dir)
    assert len(inputs) == len(rows) > 0
    predictions = predictor.predict(inputs, batch_size=5)  # batches other than the evaluation's
    probs = np.array([[p.probabilities[n] for n in predictor.label_names] for p in predictions])
    np.testing.assert_allclose(probs, stored_probabilities(rows, predictor.label_names), atol=1e-5)
    assert [p.label for p in predictions] == [r["predicted"] for r in rows]
    assert all(p.score == pytest.approx(max(p.probabilities.values())) for p in predictions)


@pytest.mark.parametrize("model", ["tiny-bert", "lstm"])
def test_text_predictions_equal_the_evaluation(text_runs, model):
    run_dir = next(p for name, p in text_runs.items() if name.startswith(model))
    predictor = Predictor.load(run_dir)
    assert predictor.modality == "text" and predictor.max_length == 32  # from the run's config.yaml
    check_same_as_evaluation(predictor, run_dir)
    # weights/<dataset>/<model> has no config.yaml: the tokenizer saved with it records max_length
    weights = run_dir.parents[3] / "weights" / "sample" / run_dir.parent.name
    from_weights = Predictor.load(weights)
    assert from_weights.max_length == 32
    check_same_as_evaluation(from_weights, run_dir)
    # runs/<dataset>/<model> means its newest complete run
    assert Predictor.load(run_dir.parent).run_dir == run_dir


def test_image_predictions_equal_the_evaluation(image_run):
    predictor = Predictor.load(image_run)
    assert predictor.modality == "image" and type(predictor.processor).__name__ == "RowImageProcessor"
    check_same_as_evaluation(predictor, image_run)


def predict_script(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "predict.py"), *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_predict_script_on_a_csv(text_runs, tmp_path):
    texts = ["Beam me up, Scotty.", "The court finds the defendant guilty, \"as charged\".", "Eat your greens."]
    write_csv(tmp_path / "mine.csv", [{"id": i, "body": t} for i, t in enumerate(texts)])
    proc = predict_script([str(text_runs["lstm"]), "mine.csv", "--text_column", "body"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_rows(tmp_path / "predictions.csv")  # the default output, in the current directory
    assert [r["input"] for r in rows] == texts
    assert set(rows[0]) == {"input", "predicted", "score", "p_food", "p_law", "p_startrek"}
    # Each input with its own prediction: the probabilities the API gives that text alone.
    predictor = Predictor.load(text_runs["lstm"])
    for r in rows:
        (alone,) = predictor.probabilities([r["input"]], progress=False)
        got = [float(r[f"p_{n}"]) for n in ("food", "law", "startrek")]
        np.testing.assert_allclose(got, alone, atol=1e-5)
        assert r["predicted"] == ["food", "law", "startrek"][int(np.argmax(alone))]
        assert float(r["score"]) == pytest.approx(max(got), abs=1e-6)
    assert "Beam me up, Scotty." in proc.stdout and "3 predictions written to predictions.csv" in proc.stdout


def test_predict_script_on_a_folder(image_run, tmp_path):
    folder = make_image_folder(tmp_path / "mine", per_class=2, seed=5)
    out = tmp_path / "out" / "shapes.csv"
    proc = predict_script([str(image_run), str(folder), "--output", str(out)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_rows(out)
    assert sorted(Path(r["input"]).name for r in rows) == sorted(p.name for p in folder.rglob("*.png"))
    assert {r["predicted"] for r in rows} <= {"blob", "horizontal", "vertical"}
    # the same numbers as the API
    api = Predictor.load(image_run).predict([r["input"] for r in rows])
    np.testing.assert_allclose([float(r["score"]) for r in rows], [p.score for p in api], atol=1e-6)


@pytest.fixture
def bad_inputs(tmp_path) -> Path:
    (tmp_path / "empty.csv").write_text("text\n")
    write_csv(tmp_path / "other.csv", [{"body": "hello"}])
    (tmp_path / "empty_folder").mkdir()
    images = make_image_folder(tmp_path / "images", per_class=1)
    (images / "blob" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "not_a_model").mkdir()
    (tmp_path / "not_a_model" / "notes.txt").write_text("hi")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x81garbage")
    return tmp_path


@pytest.mark.parametrize(
    ("model", "inputs", "message"),
    [
        ("text", ["{d}/empty.csv"], "empty.csv is empty"),
        ("text", ["{d}/other.csv"], "text column 'text' not found in"),
        ("text", ["{d}/missing.csv"], "missing.csv does not exist"),
        ("text", ["{d}/binary.csv"], "cannot read"),
        ("text", ["{d}/images"], "is not a CSV/JSON/JSONL/TXT file"),
        ("image", ["{d}/empty_folder"], "holds no image files"),
        ("image", ["{d}/images"], "broken.png cannot be decoded"),
        ("image", ["{d}/nope.png"], "nope.png does not exist"),
        ("{d}/not_a_model", ["{d}/other.csv"], "not_a_model is not a model folder"),
        ("{d}/missing_model", ["{d}/other.csv"], "missing_model does not exist"),
    ],
)
def test_bad_input_is_one_line_naming_it(text_runs, image_run, bad_inputs, tmp_path, capsys, model, inputs, message):
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    import predict

    chosen = {"text": str(text_runs["lstm"]), "image": str(image_run)}.get(model) or model.format(d=bad_inputs)
    argv = [chosen, *(i.format(d=bad_inputs) for i in inputs), "--output", str(tmp_path / "p.csv")]
    assert cli.run(lambda: predict.main(argv)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1], err
    assert not (tmp_path / "p.csv").exists()


def test_run_without_a_model_is_refused(tmp_path):
    run = tmp_path / "runs" / "d" / "m" / "20260101-000000-s2023"
    run.mkdir(parents=True)
    (run / "status").write_text("failed\n")
    with pytest.raises(UserError, match="has no saved model .status: failed.: pick a complete run"):
        Predictor.load(run)
