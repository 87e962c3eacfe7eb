"""What a notebook slide shows: a cell as Jupyter shows it once run, the Markdown above it, its code (In [n]) and its
outputs in order (Out: printed text, tables, pictures), laid out to give the code a legible font and the pictures the
most room."""

from __future__ import annotations

import re
import textwrap

from matplotlib.figure import Figure

from hf_project.video.layout import (
    CODE_INK,
    CONTENT,
    DPI,
    GAP,
    INK,
    MIN_FONT,
    MUTED,
    PROMPT_IN,
    PROMPT_OUT,
    PX,
    Box,
    aspect,
    card,
    clip,
    fit_line,
    picture,
    pixels,
    table,
    text_width,
    two_lines,
    wrap,
)
from hf_project.video.notebook import NotebookCell, Output, Table


def cell_title(cell: NotebookCell) -> str:
    return f"Notebook: {cell.heading}" if cell.heading else f"Notebook: cell {cell.position}"


def draw_cell(fig: Figure, cell: NotebookCell) -> None:
    """A notebook cell as Jupyter shows it once run: the Markdown before it (when there is room for it), its code
    (In [n]) and its outputs in turn (Out), laid out to give the code a legible font and the pictures the most room
    (_layouts)."""
    code = _code_lines(cell.source)
    outputs = list(cell.outputs)
    notes = plain_markdown(cell.description)
    plans = []
    for with_notes in ([False, True] if notes else [False]):
        region, note_lines, size = CONTENT, [], 0.0
        if with_notes:
            size = 16.0
            note_lines = wrap(notes, pixels(fig, CONTENT)[0], size)
            if len(note_lines) > NOTE_LINES:
                note_lines = [*note_lines[: NOTE_LINES - 1], clip(" ".join(note_lines[NOTE_LINES - 1:]), 200)]
                note_lines[-1] = fit_line(fig, note_lines[-1], pixels(fig, CONTENT)[0], size)
            strip = (len(note_lines) * 1.3 * size * PX) / (fig.get_figheight() * DPI) + 0.012
            region = Box(CONTENT.x, CONTENT.y, CONTENT.w, CONTENT.h - strip - GAP)
        used = (CONTENT.top - region.top - GAP) * CONTENT.w if with_notes else 0.0
        for score, code_box, out_box in _layouts(fig, code, outputs, region, used):
            plans.append((score, code_box, out_box, note_lines, size))
    _, code_box, out_box, note_lines, size = max(plans, key=lambda plan: plan[0])
    if note_lines:
        fig.text(CONTENT.x, CONTENT.top, "\n".join(note_lines), fontsize=size, color=INK, va="top", linespacing=1.3,
                 style="italic")
    _code_panel(fig, code_box, code, cell, CODE_LARGEST)
    if out_box is not None:
        _outputs_panel(fig, out_box, outputs)


NOTE_LINES = 3  # of the Markdown above a cell


def plain_markdown(text: str) -> str:
    """Markdown as plain text: no emphasis, code or link marks."""
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\*\*|__|`", "", text)
    return " ".join(text.split())


def _code_lines(source: str) -> list[str]:
    lines = [line.rstrip().expandtabs(4) for line in source.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


MONO_EM = 0.602  # DejaVu Sans Mono's advance, in ems
CODE_LARGEST, OUTPUT_LARGEST = 22.0, 20.0  # points: a short cell is shown large
OUTPUT_BESIDE_PICTURES = 15.0  # points: text leaves the room to the pictures
LINE = 1.22  # line spacing of code and printed text


def _mono_fit(fig: Figure, lines: list[str], box: Box, largest: float) -> tuple[float, int, int]:
    """(size, lines shown, characters per line) of monospace `lines` in the box: the largest size up to `largest`
    at which all fit, else MIN_FONT with the lines that fit."""
    width, height = pixels(fig, box)
    longest = max([len(line) for line in lines] or [1])
    size = min(largest, width / (longest * MONO_EM * PX), height / (max(len(lines), 1) * LINE * PX))
    size = max(MIN_FONT, float(int(size * 2) / 2))
    fit_lines = int(height / (LINE * size * PX))
    fit_chars = int(width / (MONO_EM * size * PX))
    return size, fit_lines, fit_chars


def _mono_text(lines: list[str], fit_lines: int, fit_chars: int) -> str:
    if len(lines) > fit_lines:
        lines = [*lines[: max(fit_lines - 1, 0)], f"… {len(lines) - fit_lines + 1} more lines in the notebook"]
    return "\n".join(line if len(line) <= fit_chars else line[: fit_chars - 1] + "…" for line in lines)


def _layouts(fig: Figure, code: list[str], outputs: list[Output], region: Box,
             used: float) -> list[tuple[float, Box, Box | None]]:
    """Candidate (score, code box, outputs box) plans in `region`: code left of the outputs at several widths, or
    above them at several heights (the code alone when there are no outputs). The score favours large pictures, code
    and text at a legible size, nothing cut off or left out, and little empty space (`used`: what is drawn outside
    the region, as a share of the slide)."""
    plans: list[tuple[Box, Box | None]] = [(region, None)] if not outputs else []
    for share in ((0.36, 0.44, 0.52, 0.6) if outputs else ()):
        plans.append(region.split_x(share))
    for share in ((0.3, 0.4, 0.5, 0.6) if outputs else ()):
        plans.append(region.split_y(share))
    scored = []
    content = CONTENT.w * CONTENT.h
    for code_box, out_box in plans:
        area = _code_area(code_box)
        size, fit_lines, fit_chars = _mono_fit(fig, code, area, CODE_LARGEST)
        lines = max(len(code), 1)
        hidden = max(0, len(code) - fit_lines) / lines
        clipped = sum(len(line) > fit_chars for line in code[:fit_lines]) / lines
        code_used = min(len(code), fit_lines) * LINE * size * PX / (fig.get_figheight() * DPI) * area.w
        fill = (_fill(fig, out_box, outputs) if out_box is not None else
                {"pictures": 0.0, "size": 16.0, "dropped": 0, "used": 0.0})
        empty = max(0.0, 1 - (code_used + fill["used"] + used) / content)
        score = (2 * fill["pictures"] + min(size, 16) / 16 + fill["size"] / 16 - 2 * hidden - 0.8 * clipped
                 - 0.6 * fill["dropped"] - 1.5 * empty)
        scored.append((score, code_box, out_box))
    return scored


def _code_area(box: Box) -> Box:
    """Inside a code panel, under its In [n] prompt."""
    inner = box.inset(0.012, 0.02)
    return Box(inner.x, inner.y, inner.w, inner.h - 0.045)


def _code_panel(fig: Figure, box: Box, code: list[str], cell: NotebookCell, largest: float) -> None:
    card(fig, box)
    inner = box.inset(0.012, 0.02)
    count = cell.execution_count if cell.execution_count is not None else " "
    fig.text(inner.x, inner.top, f"In [{count}]:", fontsize=14, color=PROMPT_IN, va="top", family="monospace")
    area = _code_area(box)
    size, fit_lines, fit_chars = _mono_fit(fig, code, area, largest)
    fig.text(area.x, area.top, _mono_text(code, fit_lines, fit_chars), fontsize=size, family="monospace",
             color=CODE_INK, va="top", linespacing=LINE)


def _text_lines(output: Output, width_px: float, size: float) -> list[str]:
    """A text output's lines, wrapped at the width (as Jupyter wraps a long printed line)."""
    chars = max(8, int(width_px / (MONO_EM * size * PX)))
    lines = []
    for line in (output.text or "").splitlines():
        line = line.expandtabs(4).rstrip()
        lines += textwrap.wrap(line, chars, break_on_hyphens=False) if len(line) > chars else [line]
    return lines


def _fill(fig: Figure, box: Box, outputs: list[Output]) -> dict[str, float]:
    """How the outputs fill `box` (see _place): the pictures' share of the slide, the text size, outputs left out."""
    placed = _place(fig, box, outputs)
    area = sum(b.w * b.h for o, b, _ in placed if o.picture is not None)
    sizes = [size for o, _, size in placed if o.picture is None]
    fw = fig.get_figwidth() * DPI
    used = area + sum(b.h * min(b.w, _output_width(fig, o, size, b.w * fw) / fw)
                      for o, b, size in placed if o.picture is None)
    return {"pictures": area, "size": min(sizes) if sizes else 15.0, "dropped": len(outputs) - len(placed),
            "used": used}


def _output_area(box: Box) -> Box:
    """Inside an outputs panel, under its Out: prompt."""
    return Box(box.x + 0.012, box.y + 0.02, box.w - 0.024, box.h - 0.072)


def _place(fig: Figure, box: Box, outputs: list[Output]) -> list[tuple[Output, Box, float]]:
    """Where the outputs go in the outputs panel: the longest run of them from the first that fits (the rest are
    counted as left out), in order (_stacked), or texts beside the pictures (_beside), whichever gives the pictures
    more room."""
    for k in range(len(outputs), 0, -1):
        if 1 < k < len(outputs) and _heading_like(outputs[k - 1]):
            continue  # a one-line text before more outputs reads as their heading: not shown without them
        placed = _try_place(fig, _output_area(box), outputs[:k], force=k == 1)
        if placed is not None:
            return placed
    return []


def _output_height(output: Output, size: float, width_px: float) -> float:
    """The height in pixels of a text or table output at `size` points."""
    if output.table is not None:
        shown = output.table
        header = 0.85 * max(two_lines(h).count("\n") + 1 for h in shown.header)
        return (len(shown.rows) + 0.35 + header) * OUTPUT_ROW * size * PX + (1.5 * size * PX if shown.caption else 0)
    return len(_text_lines(output, width_px, size)) * LINE * size * PX + 0.5 * size * PX


def _output_width(fig: Figure, output: Output, size: float, width_px: float) -> float:
    if output.table is not None:
        shown = output.table
        return sum(max([text_width(line, size, weight="bold") for line in two_lines(h).split("\n")]
                       + [text_width(r[c], size) for r in shown.rows]) + 1.2 * size * PX
                   for c, h in enumerate(shown.header))
    return max([len(line) for line in _text_lines(output, width_px, size)] or [1]) * MONO_EM * size * PX


def _heading_like(output: Output) -> bool:
    return output.text is not None and len(output.text.splitlines()) == 1


def _try_place(fig: Figure, inner: Box, outputs: list[Output], force: bool) -> list[tuple[Output, Box, float]] | None:
    """The outputs in `inner`; None when their texts do not fit at MIN_FONT (unless forced: then they are cut)."""
    texts = [o for o in outputs if o.picture is None]
    pictures = [o for o in outputs if o.picture is not None]
    plans = [_stacked(fig, inner, outputs, force)]
    if texts and pictures:
        plans.append(_beside(fig, inner, texts, pictures))
    plans = [p for p in plans if p is not None]
    if not plans:
        return None
    return max(plans, key=lambda placed: sum(b.w * b.h for o, b, _ in placed if o.picture is not None))


def _text_size(fig: Figure, texts: list[Output], width_px: float, room_px: float, largest: float) -> float:
    """The largest size up to `largest` points (in half points) at which the texts fit the width and the height."""
    size = largest
    while size > MIN_FONT and (sum(_output_height(o, size, width_px) for o in texts) > room_px
                               or any(_output_width(fig, o, size, width_px) > width_px for o in texts)):
        size -= 0.5
    return size


def _stack_texts(fig: Figure, box: Box, texts: list[Output], size: float) -> tuple[list[tuple[Output, Box, float]],
                                                                                     float]:
    """The texts top down in the box (the last cut at its bottom); returns them and the y below them."""
    fh = fig.get_figheight() * DPI
    placed, y = [], box.top
    for o in texts:
        h = min(_output_height(o, size, pixels(fig, box)[0]), (y - box.y) * fh)
        placed.append((o, Box(box.x, y - h / fh, box.w, h / fh), size))
        y -= (h + OUTPUT_GAP) / fh
    return placed, y


OUTPUT_GAP = 10  # pixels between outputs
OUTPUT_ROW = 1.6  # a table row of an output, in ems: as compact as Jupyter's


def _stacked(fig: Figure, inner: Box, outputs: list[Output], force: bool) -> list[tuple[Output, Box, float]] | None:
    """Top down in the outputs' order: texts at one size, each run of pictures side by side in a row; the rows share
    what the texts leave (at least a third of the height)."""
    width_px, height_px = pixels(fig, inner)
    texts = [o for o in outputs if o.picture is None]
    rows: list[list[Output]] = []  # runs of pictures
    for k, o in enumerate(outputs):
        if o.picture is not None:
            if k and outputs[k - 1].picture is not None:
                rows[-1].append(o)
            else:
                rows.append([o])
    room = height_px * (0.64 if rows else 1.0) - OUTPUT_GAP * (len(texts) + len(rows) - 1)
    size = _text_size(fig, texts, width_px, room, OUTPUT_BESIDE_PICTURES if rows else OUTPUT_LARGEST)
    text_px = sum(_output_height(o, size, width_px) for o in texts)
    if text_px > room + 1 and not force:
        return None
    # each row as high as the width allows, all scaled down together to share the height left
    natural = [(width_px - OUTPUT_GAP * (len(row) - 1)) / sum(aspect(o.picture) for o in row) for row in rows]
    left = height_px - text_px - OUTPUT_GAP * (len(texts) + len(rows) - 1)
    scale = min(1.0, max(left, 0.0) / sum(natural)) if rows else 1.0
    fh = fig.get_figheight() * DPI
    placed: list[tuple[Output, Box, float]] = []
    y = inner.top
    k = 0
    while k < len(outputs):
        o = outputs[k]
        if o.picture is None:
            h = min(_output_height(o, size, width_px), max((y - inner.y) * fh, 0.0))
            placed.append((o, Box(inner.x, y - h / fh, inner.w, h / fh), size))
            y -= (h + OUTPUT_GAP) / fh
            k += 1
            continue
        row = rows.pop(0)
        h = natural.pop(0) * scale
        placed += _picture_row(fig, Box(inner.x, y - h / fh, inner.w, h / fh), row)
        y -= (h + OUTPUT_GAP) / fh
        k += len(row)
    return placed


def _beside(fig: Figure, inner: Box, texts: list[Output], pictures: list[Output]) -> list[tuple[Output, Box,
                                                                                                   float]] | None:
    """Texts in a column on the left, as narrow as they allow (at most 60% of the width), pictures stacked right."""
    width_px, height_px = pixels(fig, inner)
    room = height_px - OUTPUT_GAP * len(texts)
    size = _text_size(fig, texts, 0.6 * width_px, room, OUTPUT_BESIDE_PICTURES)
    if (sum(_output_height(o, size, 0.6 * width_px) for o in texts) > room + 1
            or any(_output_width(fig, o, size, 0.6 * width_px) > 0.6 * width_px for o in texts)):
        return None
    share = min(0.6, max(_output_width(fig, o, size, 0.6 * width_px) for o in texts) / width_px + 0.01)
    left, right = inner.split_x(share, gap=0.01)
    placed, _ = _stack_texts(fig, left, texts, size)
    fh = fig.get_figheight() * DPI
    aspects = [aspect(o.picture) for o in pictures]
    right_w, right_h = pixels(fig, right)
    heights = [right_w / a for a in aspects]  # stacked, each as wide as the column, then scaled to fit its height
    scale = min(1.0, (right_h - OUTPUT_GAP * (len(aspects) - 1)) / sum(heights))
    y = right.top
    for o, h in zip(pictures, heights, strict=True):
        placed.append((o, Box(right.x, y - h * scale / fh, right.w, h * scale / fh), size))
        y -= (h * scale + OUTPUT_GAP) / fh
    return placed


def _picture_row(fig: Figure, rest: Box, pictures: list[Output]) -> list[tuple[Output, Box, float]]:
    """Pictures side by side, one common height, as high as the row's width allows, centred."""
    fh, fw = fig.get_figheight() * DPI, fig.get_figwidth() * DPI
    aspects = [aspect(o.picture) for o in pictures]
    rest_w, rest_h = pixels(fig, rest)
    h_px = min(rest_h, (rest_w - OUTPUT_GAP * (len(aspects) - 1)) / sum(aspects))
    x = rest.x + (rest.w - (h_px * sum(aspects) + OUTPUT_GAP * (len(aspects) - 1)) / fw) / 2
    placed = []
    for o, a in zip(pictures, aspects, strict=True):
        placed.append((o, Box(x, rest.y + (rest.h - h_px / fh), a * h_px / fw, h_px / fh), MIN_FONT))
        x += (a * h_px + OUTPUT_GAP) / fw
    return placed


def _outputs_panel(fig: Figure, box: Box, outputs: list[Output]) -> None:
    card(fig, box)
    fig.text(box.x + 0.012, box.top - 0.02, "Out:", fontsize=14, color=PROMPT_OUT, va="top", family="monospace")
    placed = _place(fig, box, outputs)
    for output, where, size in placed:
        if output.picture is not None:
            picture(fig, output.picture, where, frame=False)
        elif output.table is not None:
            _output_table(fig, where, output.table, size)
        else:
            width, height = pixels(fig, where)
            lines = _text_lines(output, width, size)
            fig.text(where.x, where.top, _mono_text(lines, max(1, int(height / (LINE * size * PX))),
                                                    int(width / (MONO_EM * size * PX))),
                     fontsize=size, family="monospace", color=INK, va="top", linespacing=LINE)
    if len(placed) < len(outputs):
        left = len(outputs) - len(placed)
        fig.text(box.x + box.w - 0.012, box.top - 0.02, f"{left} more output{'s' if left > 1 else ''} in the notebook",
                 fontsize=MIN_FONT + 1, color=MUTED, va="top", ha="right")


def _output_table(fig: Figure, where: Box, shown: Table, size: float) -> None:
    box = where
    if shown.caption:
        fig.text(where.x, where.top, clip(shown.caption, int(pixels(fig, where)[0] / (0.55 * size * PX))),
                 fontsize=size, color=MUTED, va="top")
        cap = 1.5 * size * PX / (fig.get_figheight() * DPI)
        box = Box(where.x, where.y, where.w, where.h - cap)
    table(fig, box, shown.header, shown.rows, shown.bold, largest=size, smallest=MIN_FONT, row_ems=OUTPUT_ROW)
