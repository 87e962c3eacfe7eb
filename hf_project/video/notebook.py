"""The notebook the video walks through: executed headless on the video's own runs (or taken with the outputs it has),
its key cells chosen, and their outputs turned into what a slide shows (text, tables, pictures).

Key cells: the code cells tagged `video` (cell metadata), when the author tagged any; else, in a notebook of sections
(Markdown headings of one level, `## 1. The data`, `## 2. The models`, ...), the first code cell with outputs of each
section; else every code cell with outputs. At most MAX_CELLS, spread over the notebook.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat

from hf_project import runs
from hf_project.errors import UserError, first_line
from hf_project.report import Report

logger = logging.getLogger(__name__)

WALKTHROUGH = runs.REPO_ROOT / "notebooks" / "walkthrough.ipynb"
VIDEO_TAG = "video"
MAX_CELLS = 6
CELL_TIMEOUT_S = 600
MAX_TEXT_LINES = 12  # of one text output; longer ones end with "… N more lines"
MAX_TABLE_ROWS = 10
MAX_CELL_CHARS = 28  # of a table cell (a checkpoint's path, a long label)
KERNEL = "hf-project-video"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_PLACEHOLDER = re.compile(r"<(Figure size .*|.* object)>")  # a repr that says nothing (the picture is another output)
_LONG_FLOAT = re.compile(r"-?\d+\.\d{5,}")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True)
class Table:
    """A table a cell displayed (a DataFrame, a Markdown table): header, rows of text, the (row, column) cells it
    marks bold (Markdown's **best** values) and the line above it."""

    header: list[str]
    rows: list[list[str]]
    bold: frozenset[tuple[int, int]] = frozenset()
    caption: str = ""


@dataclass(frozen=True)
class Output:
    """One thing a cell showed: text (what it printed, or a value's repr), a table, or a picture (PNG or JPEG)."""

    text: str | None = None
    table: Table | None = None
    picture: bytes | None = None


@dataclass(frozen=True)
class NotebookCell:
    """A code cell as a slide shows it: its place (`position`: 1-based among all cells, as the notebook is read), the
    section it belongs to, the Markdown before it, its source and its outputs."""

    position: int
    execution_count: int | None
    source: str
    outputs: tuple[Output, ...] = ()
    heading: str = ""
    section: int = 0  # 1-based among the notebook's sections; 0 before the first
    description: str = ""
    tagged: bool = field(default=False, compare=False)  # tagged `video` by the author


# ---- the notebook, executed on the video's runs ------------------------------------------------------------------


def notebook_of(path: Path, report: Report) -> nbformat.NotebookNode:
    """The notebook at `path`: as it is when it has outputs, else executed top to bottom on the report's runs (the
    kernel is this interpreter; HF_PROJECT_RUNS_DIR, DATASET and TASK name the runs). A failing cell is a one-line
    error naming it."""
    nb = read_notebook(path)
    if any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"):
        logger.info("notebook %s has outputs: shown as they are (clear them to execute it on these runs)", path)
        _check_no_errors(nb, path)
        return nb
    with tempfile.TemporaryDirectory(prefix="hf_project-video-nb-") as tmp:
        folder = Path(tmp)
        env = {**os.environ, "HF_PROJECT_RUNS_DIR": str(_runs_folder(report, folder / "runs")),
               "DATASET": report.dataset, "TASK": report.task, "HF_HUB_OFFLINE": "1"}
        env.pop("MPLBACKEND", None)  # the kernel's inline backend puts figures in the outputs
        execute(nb, path, folder / "kernels", env)
    return nb


def read_notebook(path: Path) -> nbformat.NotebookNode:
    if not path.is_file():
        raise UserError(f"notebook {path} not found: pass --notebook with the path of your .ipynb file")
    try:
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError, nbformat.ValidationError) as err:
        raise UserError(f"notebook {path} does not read as a Jupyter notebook ({first_line(err)}): open and save it "
                        "in Jupyter, or pass another --notebook") from None


def _runs_folder(report: Report, root: Path) -> Path:
    """A runs/ folder (<dataset>/<model>/<run>) of links to the report's runs: the notebook reads exactly these."""
    for group in report.groups:
        for run in group.runs:
            link = root / report.dataset / run.metrics["model"] / run.path.name
            n = 1
            while link.exists():  # two runs of one model with the same folder name, from different places
                n += 1
                link = link.with_name(f"{run.path.name}-{n}")
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(run.path.resolve(), target_is_directory=True)
    return root


def execute(nb: nbformat.NotebookNode, path: Path, kernels: Path, env: dict[str, str]) -> None:
    """Every cell of `nb`, in order, in a kernel of this interpreter (whatever kernels the machine has installed)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    spec = kernels / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "hf_project (video)", "language": "python"}))
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    current: dict[str, int] = {}
    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(path.parent)}},
                            on_cell_start=lambda cell, cell_index: current.update(index=cell_index))
    code_cells = sum(cell.cell_type == "code" for cell in nb.cells)
    logger.info("executing %s (%d code cells) on the video's runs", path, code_cells)
    try:
        client.execute(env=env)
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
        index = current.get("index")
        if index is None:
            raise UserError(f"notebook {path} did not start ({first_line(err)}): check that ipykernel is installed "
                            "(pip install -r requirements.txt)") from None
        cell = nb.cells[index]
        error = next((o for o in cell.get("outputs", []) if o.output_type == "error"), None)
        reason = (f"{error.ename}: {first_line(Exception(error.evalue))}" if error is not None else
                  f"no result after {CELL_TIMEOUT_S} s" if isinstance(err, CellTimeoutError) else first_line(err))
        raise UserError(f"notebook {path}: cell {index + 1} ({_quote(cell.source)}) failed: {reason}; fix that cell "
                        "(run the notebook in Jupyter to see the traceback) or pass --notebook with one that runs; "
                        "no video was written") from None
    except (RuntimeError, OSError) as err:  # the kernel could not start
        raise UserError(f"notebook {path}: no Jupyter kernel could start ({first_line(err)}): install ipykernel "
                        "(pip install -r requirements.txt)") from None


def _check_no_errors(nb: nbformat.NotebookNode, path: Path) -> None:
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                raise UserError(f"notebook {path}: cell {index + 1} ({_quote(cell.source)}) shows an error "
                                f"({out.ename}: {first_line(Exception(out.evalue))}): fix it and run the notebook "
                                "again, or clear its outputs so that the video executes it")


def _quote(source: str) -> str:
    line = next((s.strip() for s in source.splitlines() if s.strip()), "")
    return f"`{line[:60]}{'…' if len(line) > 60 else ''}`"


# ---- the key cells ---------------------------------------------------------------------------------------------


def key_cells(nb: nbformat.NotebookNode, limit: int = MAX_CELLS) -> list[NotebookCell]:
    """The cells the video shows, in the notebook's order (module docstring)."""
    cells = _code_cells(nb)
    tagged = [c for c in cells if c.tagged]
    if tagged:
        return tagged
    shown = [c for c in cells if c.outputs]
    level = _section_level(nb)
    if level is not None:
        sections: dict[int, NotebookCell] = {}
        for cell in shown:
            if cell.section:
                sections.setdefault(cell.section, cell)
        shown = list(sections.values()) or shown
    return _spread(shown, limit)


def _spread(cells: list[NotebookCell], limit: int) -> list[NotebookCell]:
    """At most `limit` cells, evenly spaced from the first to the last."""
    if len(cells) <= limit:
        return cells
    step = (len(cells) - 1) / (limit - 1) if limit > 1 else 0
    return [cells[round(k * step)] for k in range(limit)]


def _headings(source: str) -> list[tuple[int, str]]:
    found = []
    for line in source.splitlines():
        match = _HEADING.match(line.strip())
        if match:
            found.append((len(match.group(1)), match.group(2)))
    return found


def _section_level(nb: nbformat.NotebookNode) -> int | None:
    """The heading level of the notebook's sections: the highest that two or more headings have (a notebook's one
    `#` title is no section)."""
    levels = [level for cell in nb.cells if cell.cell_type == "markdown" for level, _ in _headings(cell.source)]
    repeated = sorted({level for level in levels if levels.count(level) > 1})
    return repeated[0] if repeated else None


def _code_cells(nb: nbformat.NotebookNode) -> list[NotebookCell]:
    level = _section_level(nb)
    heading, section, notes, cells = "", 0, [], []
    for position, cell in enumerate(nb.cells, 1):
        if cell.cell_type == "markdown":
            for found_level, text in _headings(cell.source):
                if level is not None and found_level == level:
                    heading, section = _clean_heading(text), section + 1
                elif level is not None and found_level < level:  # above the sections (a part's title)
                    heading = ""
            notes += [line for line in cell.source.splitlines() if not _HEADING.match(line.strip())]
        elif cell.cell_type == "code":
            tags = cell.get("metadata", {}).get("tags", [])
            cells.append(NotebookCell(position, cell.get("execution_count"), cell.source.rstrip(),
                                      tuple(outputs_of(cell.get("outputs", []))), heading, section if heading else 0,
                                      " ".join(" ".join(notes).split()), VIDEO_TAG in tags))
            notes = []
    return cells


def _clean_heading(text: str) -> str:
    """'1. The data' -> 'The data'; Markdown emphasis and code marks dropped."""
    text = re.sub(r"^\s*\d+(\.\d+)*[.)]?\s+", "", text)
    return re.sub(r"[*_`]{1,2}([^*_`]+)[*_`]{1,2}", r"\1", text).strip()


# ---- outputs as a slide shows them --------------------------------------------------------------------------------


def outputs_of(raw: list[dict[str, Any]]) -> list[Output]:
    """The outputs of a code cell in order, consecutive printed text joined: stdout (stderr holds warnings and
    progress bars), pictures, tables (DataFrames' HTML, Markdown tables), other values' text/plain."""
    shown: list[Output] = []
    text: list[str] = []

    def flush() -> None:
        joined = terminal_text("".join(text))
        if joined.strip():
            shown.append(Output(text=_clip_lines(joined)))
        text.clear()

    for out in raw:
        kind = out.get("output_type")
        if kind == "stream":
            if out.get("name") == "stdout":
                text.append(out.get("text", ""))
            continue
        if kind not in ("display_data", "execute_result"):
            continue
        data = out.get("data", {})
        found = _rich(data)
        if found:
            flush()
            shown.extend(found)
            continue
        plain = data.get("text/plain", "")
        if plain and not _PLACEHOLDER.fullmatch(plain.strip()):
            text.append(plain.rstrip("\n") + "\n")
    flush()
    return shown


def _rich(data: dict[str, Any]) -> list[Output]:
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            return [Output(picture=base64.b64decode(data[mime]))]
    if "text/markdown" in data:
        tables = markdown_tables(data["text/markdown"])
        if tables:
            return [Output(table=t) for t in tables]
        return [Output(text=_clip_lines(_plain_markdown(data["text/markdown"])))]
    html = data.get("text/html", "")
    if "<table" in html:
        tables = html_tables(html)
        if tables:
            return [Output(table=t) for t in tables]
    if "<audio" in html:
        return [Output(text="(an audio player: the clip plays in the notebook)")]
    return []


def terminal_text(text: str) -> str:
    """Printed text as a terminal leaves it: colours dropped, a carriage return overwrites its line."""
    lines = []
    for line in _ANSI.sub("", text).split("\n"):
        parts = [p for p in line.split("\r") if p]
        lines.append(parts[-1] if parts else "")
    return "\n".join(lines).strip("\n")


def _clip_lines(text: str) -> str:
    lines = text.splitlines()
    if len(lines) <= MAX_TEXT_LINES:
        return text
    return "\n".join([*lines[: MAX_TEXT_LINES - 1], f"… {len(lines) - MAX_TEXT_LINES + 1} more lines"])


def _plain_markdown(text: str) -> str:
    text = re.sub(r"\*\*([^*]+)\*\*|__([^_]+)__", lambda m: m.group(1) or m.group(2), text)
    return re.sub(r"`([^`]+)`", r"\1", text).strip()


def _cell_text(text: str) -> str:
    text = " ".join(text.split())
    text = _LONG_FLOAT.sub(lambda m: f"{float(m.group(0)):.4f}", text)
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def _table(header: list[str], rows: list[list[str]], bold: set[tuple[int, int]], caption: str) -> Table:
    width = max([len(header), *(len(r) for r in rows)])
    header = [_cell_text(h) for h in header] + [""] * (width - len(header))
    body = [[_cell_text(c) for c in r] + [""] * (width - len(r)) for r in rows]
    caption = " ".join(caption.split())
    if len(body) > MAX_TABLE_ROWS:
        caption = (caption + " " if caption else "") + f"(first {MAX_TABLE_ROWS} of {len(body)} rows)"
        body = body[:MAX_TABLE_ROWS]
    return Table(header, body, frozenset((r, c) for r, c in bold if r < len(body)), caption)


def markdown_tables(text: str) -> list[Table]:
    """The pipe tables of a Markdown text, each with the line of text above it; `**x**` cells are bold."""
    tables, caption, block = [], "", []
    for line in [*text.splitlines(), ""]:
        if line.strip().startswith("|"):
            block.append(line.strip())
            continue
        if len(block) >= 2 and re.fullmatch(r"\|?[\s:|-]+\|?", block[1]):
            split = [[c.strip() for c in row.strip("|").split("|")] for row in block]
            body = [r for k, r in enumerate(split) if k != 1]
            bold = {(r - 1, c) for r, row in enumerate(body) for c, cell in enumerate(row)
                    if r > 0 and re.fullmatch(r"\*\*.*\*\*", cell)}
            rows = [[_plain_markdown(c) for c in row] for row in body]
            tables.append(_table(rows[0], rows[1:], bold, caption))
            caption = ""
        block = []
        if line.strip():
            caption = _plain_markdown(line)
    return tables


class _HTMLTables(HTMLParser):
    """The tables of an HTML text: per table its rows; per row its cells' text and whether each is a header cell."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[tuple[list[str], bool]]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_head = False
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("style", "script"):
            self._skip += 1
        elif tag == "table":
            self.tables.append([])
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr" and self.tables:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip -= 1
        elif tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append((self._row, self._in_head))
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None and not self._skip:
            self._cell.append(data)


def html_tables(html: str) -> list[Table]:
    """The tables of an HTML text (pandas' DataFrame HTML): header rows joined into one, the index name row (pandas
    puts it under the column names) moved into the header's first cell."""
    parser = _HTMLTables()
    parser.feed(html)
    tables = []
    for rows in parser.tables:
        head = [cells for cells, in_head in rows if in_head]
        body = [cells for cells, in_head in rows if not in_head]
        if not head and body:
            head, body = [body[0]], body[1:]
        if not head:
            continue
        header = head[0]
        for extra in head[1:]:
            if extra and extra[0] and not any(extra[1:]):  # the index's name
                header = [extra[0], *header[1:]]
            else:
                header = [f"{a} {b}".strip() for a, b in zip(header, extra + [""] * len(header), strict=False)]
        if header and not header[0] and body and all(re.fullmatch(r"\d+", r[0]) for r in body if r):
            header, body = header[1:], [r[1:] for r in body]  # a default index (0, 1, 2 ...) says nothing
        tables.append(_table(header, body, set(), ""))
    return tables
