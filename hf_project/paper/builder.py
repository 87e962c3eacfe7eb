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
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
PANEL_SIZE = (4.4, 3.2)  # inches of each loss panel: half the 5.5 in text width, scaled by 0.6
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
    allow_overfull: bool = field(default=False, metadata={
        "help": "Only warn when a line, table or figure is wider than the text (by default that is an error)."})


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
    pdf = compile_pdf(out, args.allow_overfull)
    logger.info("paper: %s (%d runs of %s, %d models)", pdf, report.num_runs, report.dataset, len(report.groups))
    try:
        layout = measure_layout(pdf)
    except (OSError, subprocess.SubprocessError, ValueError) as err:  # the PDF stands; only its check is missing
        logger.warning("paper: page layout not measured (%s)", err)
    else:
        logger.info("paper: %s", layout.summary())
        for problem in layout.problems():
            logger.warning("paper: %s", problem)
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
        "appendix": content.appendix_section(report, figures),
    }
    generated = out / "generated"
    for name, text in sections.items():
        runs.atomic_write_text(generated / f"{name}.tex", content.fit_tables(text))


def write_figures(report: Report, folder: Path) -> dict[str, str]:
    """The figures, drawn again from the run files so they share one size and font; paths relative to paper/."""
    run = report.winner.best_run
    names = {"validation": "validation_loss.png", "loss": "loss_best.png", "test": run.test_figure.name,
             "samples": plots.SAMPLE_INPUTS, "confused": runs.CONFUSED_FIGURE}
    # The two loss panels stand side by side, each half the text width: drawn at that size, their text stays legible.
    plots.plot_validation_curves(validation_curves(report.groups), folder / names["validation"], title="",
                                 size=PANEL_SIZE)
    curves = content.curve_group(report).best_run  # the winner, unless it is a linear baseline without steps
    plots.plot_loss(curves.log_history(), folder / names["loss"],
                    best_step=curves.metrics["validation"].get("best_step"), size=PANEL_SIZE)
    draw_test_figure(run, folder / names["test"])
    # The inputs cannot be redrawn from run files (they are not among them): the runs' figures are copied.
    # texts (but a regression's) are shown in a table of the paper's own type instead (content.text_examples_table)
    samples = None if content.text_examples_shown(report) else report.sample_inputs_figure
    for key, found in (("samples", samples), ("confused", run.figure(runs.CONFUSED_FIGURE))):
        if found is None or not found.is_file():  # runs older than the figure: the paper goes without it
            (folder / names.pop(key)).unlink(missing_ok=True)
        else:
            with runs.atomic_path(folder / names[key]) as tmp:
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
        # drawn at the size it is printed, so its labels print at their font size: a few classes at 60% of the text
        # width, many stretched over a landscape page of the appendix (9 x 5 in)
        if len(labels) > content.MANY_CLASSES:
            plots.plot_confusion_matrix(matrix, labels, path, side=5.0, width=9.0, tick_size=6.5)
        else:  # 4.4 x 3.6 in, printed at about 0.7 of that (a panel of 0.56 text width): 8 and 7 pt become 5.5-5
            plots.plot_confusion_matrix(matrix, labels, path, side=3.6, width=4.4, tick_size=8)


def compile_pdf(paper_dir: Path, allow_overfull: bool = False) -> Path:
    """pdflatex, bibtex, pdflatex twice (citations and references settle), in a temporary copy of paper_dir. A line,
    table or figure wider than the text (an overfull box in LaTeX's log) is an error unless `allow_overfull`."""
    check_toolchain()
    paper_dir = Path(paper_dir)
    with tempfile.TemporaryDirectory(prefix="hf_project-paper-") as tmp:
        build = Path(tmp) / "paper"
        shutil.copytree(paper_dir, build, ignore=shutil.ignore_patterns("paper.pdf", "*.aux", "*.log", "*.bbl"))
        latex = ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"]
        for step in (latex, ["bibtex", "paper"], latex, latex):
            result = subprocess.run(step, cwd=build, capture_output=True, text=True, errors="replace", timeout=300,
                                    env={**os.environ, "max_print_line": "10000"})  # log lines unwrapped
            if result.returncode != 0:
                raise UserError(f"{step[0]} failed on {paper_dir / 'paper.tex'}: {first_error(result.stdout, build)}")
        overfull = overfull_boxes((build / "paper.log").read_text(errors="replace"))
        if overfull:
            message = (f"{len(overfull)} line(s), table(s) or figure(s) of {paper_dir / 'paper.tex'} stick out of the "
                       f"text width, the first {overfull[0]}")
            if not allow_overfull:
                raise UserError(message + ": shorten or break it (build with --allow_overfull to only warn)")
            logger.warning("paper: %s", message)
        target = paper_dir / "paper.pdf"
        with runs.atomic_path(target) as tmp_pdf:  # a reader never sees half a PDF
            shutil.copyfile(build / "paper.pdf", tmp_pdf)
    return target


OVERFULL_TOLERANCE_PT = 1.0  # LaTeX reports boxes from 0.1 pt over; under 1 pt no reader sees it
_OVERFULL = re.compile(r"^Overfull \\hbox \(([\d.]+)pt too wide\) (.*)$")


def overfull_boxes(log: str) -> list[str]:
    """The overfull horizontal boxes of a pdflatex log wider than the tolerance, each as 'by 12.3 pt (in paragraph
    at lines 20--25 of generated/models.tex: "mobilenet_v2-...")', in the order LaTeX met them. The file is the
    innermost of the paper's own files open at the warning, from the parentheses LaTeX logs around each file it
    reads (compile_pdf keeps log lines unwrapped, so no name is cut)."""
    found = []
    lines = log.splitlines()
    stack: list[str | None] = []  # the files open, innermost last; None for a parenthesis that opens no file
    for k, line in enumerate(lines):
        match = _OVERFULL.match(line)
        if match:
            if float(match.group(1)) > OVERFULL_TOLERANCE_PT:
                opened = next((f for f in reversed(stack) if f and f.startswith("./")), "./paper.tex")[2:]
                snippet = " ".join(lines[k + 1].split())[:60] if k + 1 < len(lines) else ""
                found.append(f"by {float(match.group(1)):.1f} pt ({match.group(2)} of {opened}: \"{snippet}\")")
            continue  # its own parentheses open no file
        for token in re.finditer(r"\(([^\s()]*)|\)", line):
            if token.group(0) == ")":
                if stack:
                    stack.pop()
            else:
                name = token.group(1)
                stack.append(name if re.search(r"\.(tex|sty|cls|clo|cfg|def|fd|bbl|aux|out)$", name) else None)
    return found


# The text block of hfproject.sty and of the NeurIPS style: 5.5 x 9 in, 1.5 in from the left and 1 in from the top of a
# letter page. A blank band taller than EMPTY_GAP_IN inside it counts as empty (smaller ones are line and float
# spacing).
TEXT_BLOCK_IN = (1.5, 1.0, 5.5, 9.0)  # left, top, width, height
EMPTY_GAP_IN = 0.3
MAX_EMPTY = 0.25  # of the text block of every body page before the last
BODY_PAGES = (4, 6)
LAYOUT_DPI = 50


@dataclass
class Layout:
    """The paper's pages as a reader sees them: the fraction of each page's text block left empty, and how many
    pages come before the references."""

    empty: list[float]  # per page, in order
    body_pages: int  # pages before the page the references start on

    def summary(self) -> str:
        worst = max(range(max(self.body_pages - 1, 0)), key=lambda i: self.empty[i], default=None)
        text = f"{self.body_pages} pages before the references"
        if worst is not None:
            text += f"; the emptiest before the last is page {worst + 1} ({self.empty[worst]:.0%} of its text block)"
        return text

    def problems(self) -> list[str]:
        """What breaks the page budget: 4-6 pages before the references, and no page before the body's last with
        more than a quarter of its text block empty."""
        low, high = BODY_PAGES
        out = []
        if not low <= self.body_pages <= high:
            out.append(f"{self.body_pages} pages before the references, outside the {low}-{high} the course asks for")
        out += [f"page {i + 1} leaves {e:.0%} of its text block empty (at most {MAX_EMPTY:.0%} before the last page "
                "of the body): move or resize its floats" for i, e in enumerate(self.empty[:self.body_pages - 1])
                if e > MAX_EMPTY]
        return out


def empty_fraction(pixels: Any, dpi: int = LAYOUT_DPI) -> float:
    """The fraction of a rendered page's text block (a greyscale array, 0 black) in blank bands taller than
    EMPTY_GAP_IN: the space a reader sees unused."""
    import numpy as np

    left, top, width, height = (round(v * dpi) for v in TEXT_BLOCK_IN)
    block = np.asarray(pixels)[top:top + height, left:left + width]
    ink = (block < 200).any(axis=1)
    empty, run = 0, 0
    gap = EMPTY_GAP_IN * dpi
    for row in [*ink.tolist(), True]:
        if row:
            empty += run if run > gap else 0
            run = 0
        else:
            run += 1
    return empty / len(ink)


def measure_layout(pdf: Path, dpi: int = LAYOUT_DPI) -> Layout:
    """Render `pdf` with pdftoppm and measure every page (Layout); the references start on the page whose text
    has a line 'References'."""
    import numpy as np
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="hf_project-layout-") as tmp:
        subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", str(pdf), f"{tmp}/page"], check=True,
                       capture_output=True, timeout=300)
        pages = sorted(Path(tmp).glob("page-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        empty = [empty_fraction(np.asarray(Image.open(p).convert("L")), dpi) for p in pages]
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True,
                          timeout=300).stdout
    body = next((i for i, page in enumerate(text.split("\f")) if re.search(r"^\s*References\s*$", page, re.M)),
                len(empty))
    return Layout(empty, body)


def first_error(stdout: str, build: Path) -> str:
    log = (build / "paper.log").read_text(errors="replace") if (build / "paper.log").exists() else ""
    for text in (log, stdout):
        for line in text.splitlines():
            if line.startswith("!") or re.match(r"^(I couldn't|I found no|Repeated entry)", line):
                return line.lstrip("! ").strip()
    return "see its log (run pdflatex by hand in the paper folder)"
