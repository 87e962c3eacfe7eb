"""Write paper/ from the runs and compile paper/paper.pdf with pdflatex + bibtex.

    paper/
      paper.tex, references.bib   written once, then the author's (a rebuild keeps them)
      hfproject.sty               the project's NeurIPS-2020-preprint look-alike; neurips_2020.sty wins if present
      generated/*.tex             sections, tables and macros from runs/, rewritten on every build
      figures/*.png               loss curves, the winner's test figure (confusion matrix, F1 per label or predicted
                                  against true values) and sample inputs, rewritten on every build
      paper.pdf                   built (git-ignored)

LaTeX runs in a temporary copy, so its auxiliary files never litter paper/; only paper.pdf comes back.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hf_project import plots, runs
from hf_project.config import DEFAULT_SEED
from hf_project.errors import UserError
from hf_project.paper import content
from hf_project.report import Report, Run, build_report, validation_curves
from hf_project.stats import DEFAULT_BOOTSTRAP_SAMPLES

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
AUTHOR_FILES = ("paper.tex", "references.bib")  # created when missing, never overwritten without asking
STYLE = "hfproject.sty"
FIGURES = "figures"  # paper/figures/, where paper.tex's \includegraphics look
TEX_PACKAGES = "texlive-latex-base texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended"


@dataclass
class PaperArguments:
    runs_dir: str = field(default="runs", metadata={"help": "Root of the run directories."})
    dataset: str | None = field(default=None, metadata={"help": "Data set of the paper (needed if runs/ has several)."})
    model: str | None = field(default=None, metadata={"help": "Only these models (comma-separated run names)."})
    tag: str | None = field(default=None, metadata={"help": "Only runs with this --tag."})
    out_dir: str = field(default="paper", metadata={"help": "Where the LaTeX sources and paper.pdf go."})
    overwrite_template: bool = field(
        default=False, metadata={"help": "Rewrite paper.tex and references.bib from the templates (your edits go)."})
    no_compile: bool = field(default=False, metadata={"help": "Write the sources only, do not run pdflatex."})
    bootstrap_samples: int = field(default=DEFAULT_BOOTSTRAP_SAMPLES, metadata={
        "help": "Bootstrap resamples of the test examples behind the 95 percent intervals of the paired comparisons."})
    bootstrap_seed: int = field(default=DEFAULT_SEED, metadata={
        "help": "Seed of the bootstrap resamples (the same seed gives the same intervals)."})


def check_toolchain() -> None:
    missing = [tool for tool in ("pdflatex", "bibtex") if shutil.which(tool) is None]
    if missing:
        raise UserError(f"{' and '.join(missing)} not found: install the LaTeX toolchain with `make system-deps` "
                        f"(as root) or `sudo apt-get install -y {TEX_PACKAGES}`")


def build_paper(args: PaperArguments) -> Path:
    """Sources under args.out_dir, then paper.pdf; returns the PDF's path (the .tex's with no_compile)."""
    if not args.no_compile:
        check_toolchain()  # before any work: a missing tool is the cheapest error to report
    models = [m.strip() for m in args.model.split(",")] if args.model else None
    report = build_report(args.runs_dir, args.dataset, models, args.tag, args.bootstrap_samples, args.bootstrap_seed)
    out = Path(args.out_dir)
    write_sources(report, out, args.overwrite_template)
    if args.no_compile:
        return out / "paper.tex"
    pdf = compile_pdf(out)
    logger.info("paper: %s (%d runs of %s, %d models)", pdf, report.num_runs, report.dataset, len(report.groups))
    return pdf


def write_sources(report: Report, out: Path, overwrite_template: bool = False) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in AUTHOR_FILES:
        if overwrite_template or not (out / name).exists():
            runs.atomic_write_text(out / name, (TEMPLATES / name).read_text())
    runs.atomic_write_text(out / STYLE, (TEMPLATES / STYLE).read_text())
    figures = write_figures(report, out / FIGURES)
    sections = {
        "macros": content.macros(report),
        "dataset": content.dataset_section(report, figures),
        "preprocessing": content.preprocessing_section(report),
        "models": content.models_section(report),
        "training": content.training_section(report),
        "results": content.results_section(report, figures),
    }
    generated = out / "generated"
    for name, text in sections.items():
        runs.atomic_write_text(generated / f"{name}.tex", text)


def write_figures(report: Report, folder: Path) -> dict[str, str]:
    """The figures, drawn again from the run files so they share one size and font; paths relative to paper/."""
    run = report.winner.best_run
    names = {"validation": "validation_loss.png", "loss": "loss_best.png", "test": run.test_figure.name,
             "samples": plots.SAMPLE_INPUTS}
    plots.plot_validation_curves(validation_curves(report.groups), folder / names["validation"], title="")
    plots.plot_loss(run.log_history(), folder / names["loss"], best_step=run.metrics["validation"].get("best_step"))
    draw_test_figure(run, folder / names["test"])
    # The sample inputs cannot be redrawn from run files (the inputs are not among them): the runs' figure is copied.
    found = report.sample_inputs_figure
    if found is None:  # runs older than the figure: the paper goes without it
        (folder / names.pop("samples")).unlink(missing_ok=True)
    else:
        with runs.atomic_path(folder / names["samples"]) as tmp:
            shutil.copyfile(found, tmp)
    return {key: f"{folder.name}/{name}" for key, name in names.items()}


def draw_test_figure(run: Run, path: Path) -> None:
    """The run's figure of the test set, drawn again from its files: the confusion matrix (single-label), the F1 of
    each label (multi-label) or the predicted against the true values (regression)."""
    if run.task == "multi_label":
        plots.plot_per_label_f1(run.test_report(), path)
    elif run.task == "regression":
        rows = run.predictions()
        plots.plot_predicted_vs_true([float(r["label"]) for r in rows], [float(r["predicted"]) for r in rows], path,
                                     quantity=run.target_name)
    else:
        labels, matrix = run.confusion_matrix()
        plots.plot_confusion_matrix(matrix, labels, path)


def compile_pdf(paper_dir: Path) -> Path:
    """pdflatex, bibtex, pdflatex twice (citations and references settle), in a temporary copy of paper_dir."""
    check_toolchain()
    paper_dir = Path(paper_dir)
    with tempfile.TemporaryDirectory(prefix="hf_project-paper-") as tmp:
        build = Path(tmp) / "paper"
        shutil.copytree(paper_dir, build, ignore=shutil.ignore_patterns("paper.pdf", "*.aux", "*.log", "*.bbl"))
        latex = ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"]
        for step in (latex, ["bibtex", "paper"], latex, latex):
            result = subprocess.run(step, cwd=build, capture_output=True, text=True, errors="replace", timeout=300)
            if result.returncode != 0:
                raise UserError(f"{step[0]} failed on {paper_dir / 'paper.tex'}: {first_error(result.stdout, build)}")
        target = paper_dir / "paper.pdf"
        with runs.atomic_path(target) as tmp_pdf:  # a reader never sees half a PDF
            shutil.copyfile(build / "paper.pdf", tmp_pdf)
    return target


def first_error(stdout: str, build: Path) -> str:
    log = (build / "paper.log").read_text(errors="replace") if (build / "paper.log").exists() else ""
    for text in (log, stdout):
        for line in text.splitlines():
            if line.startswith("!") or re.match(r"^(I couldn't|I found no|Repeated entry)", line):
                return line.lstrip("! ").strip()
    return "see its log (run pdflatex by hand in the paper folder)"
