"""The shapes slides are made of: the slide frame (title band, page number), cards, text fitted to a box, tables
with their best values marked, pictures and bar charts; and how empty a rendered slide is.

Slides are laid out at 1280 pixels wide and 100 dpi (12.8 inches; a font of s points is s * 100 / 72 pixels high) and
saved at the video's size, so every size shows the same slide. Text is never smaller than MIN_FONT points. Things sit
on white cards on a light grey-blue ground; emptiness() measures how much of a slide holds no ink at all.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import FancyBboxPatch, Rectangle
from PIL import Image

DPI = 100
PX = DPI / 72  # pixels per point
DESIGN_WIDTH = 1280  # pixels: slides are laid out at 720p and scaled to the video's size
MIN_FONT = 11  # points: 15 pixels, the smallest text a 720p video shows legibly
BACKGROUND = "#eef1f6"
CARD = "white"
CARD_EDGE = "#c8d1df"
BAND = "#1f3b63"
INK = "#1d2433"
MUTED = "#5b6579"
ACCENT = "#2f6db5"
BEST = "#dbe7f6"  # the background of a best value
PLACEHOLDER = "#b3261e"  # a field the author still has to fill in
CODE_INK = "#13301a"
PROMPT_IN, PROMPT_OUT = "#2f5fb5", "#b5402f"  # Jupyter's In [n]: and Out: colours
# Below the title band and above the footer, in figure fractions: where slides put things.
LEFT, RIGHT, BOTTOM, TOP = 0.03, 0.97, 0.075, 0.825
GAP = 0.015
BAND_BOTTOM, FOOTER_TOP = 0.85, 0.06


@dataclass(frozen=True)
class Box:
    """A rectangle in figure fractions: left, bottom, width, height."""

    x: float
    y: float
    w: float
    h: float

    @property
    def top(self) -> float:
        return self.y + self.h

    def inset(self, dx: float, dy: float | None = None) -> Box:
        dy = dx if dy is None else dy
        return Box(self.x + dx, self.y + dy, self.w - 2 * dx, self.h - 2 * dy)

    def split_x(self, fraction: float, gap: float = GAP) -> tuple[Box, Box]:
        left = (self.w - gap) * fraction
        return Box(self.x, self.y, left, self.h), Box(self.x + left + gap, self.y, self.w - left - gap, self.h)

    def split_y(self, fraction: float, gap: float = GAP) -> tuple[Box, Box]:
        """(top, bottom): the top one `fraction` of the height."""
        top = (self.h - gap) * fraction
        return Box(self.x, self.top - top, self.w, top), Box(self.x, self.y, self.w, self.h - top - gap)


CONTENT = Box(LEFT, BOTTOM, RIGHT - LEFT, TOP - BOTTOM)


# ---- the frame -------------------------------------------------------------------------------------------------


def new_slide(width: int, height: int, title: str, number: int, total: int) -> Figure:
    """An empty slide of the video's shape, laid out at DESIGN_WIDTH pixels wide whatever the video's size (saved at
    save_dpi(width), so that a smaller video is the same slide, smaller)."""
    fig = Figure(figsize=(DESIGN_WIDTH / DPI, DESIGN_WIDTH * height / width / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.patch.set_facecolor(BACKGROUND)
    fig.add_artist(Rectangle((0, BAND_BOTTOM), 1, 1 - BAND_BOTTOM, transform=fig.transFigure, color=BAND, zorder=-1))
    size = _fit_size(title, 0.92 * DESIGN_WIDTH, 30, 20, weight="bold")
    fig.text(0.03, (1 + BAND_BOTTOM) / 2, title, fontsize=size, weight="bold", color="white", va="center")
    fig.text(0.97, 0.022, f"{number}/{total}", fontsize=12, color=MUTED, ha="right")
    fig.text(0.03, 0.022, "drafted by hf_project from the run directories", fontsize=MIN_FONT, color=MUTED)
    return fig


def save_dpi(width: int) -> float:
    """The resolution that saves a slide (new_slide) `width` pixels wide."""
    return DPI * width / DESIGN_WIDTH


def emptiness(image: np.ndarray, block: int | None = None) -> float:
    """The share of a slide's content area (below the title band, above the footer) where nothing is drawn: the area
    is cut into square blocks (a twentieth of the height: 36 pixels at 720p), and a block is empty when it holds no
    ink: every pixel in it is the slide's background or plain white (a card's or a picture's ground), to within 8 in
    each channel (0 to 255). A card with nothing in it, or the white margin of a picture, is empty."""
    height = image.shape[0]
    block = block or max(1, height // 20)
    top, bottom = int(np.ceil(height * (1 - BAND_BOTTOM))), int(height * (1 - FOOTER_TOP))
    area = image[top:bottom, :, :3].astype(np.int16)
    plain = np.zeros(area.shape[:2], dtype=bool)
    for colour in (BACKGROUND, "#ffffff"):
        rgb = np.array([int(colour[k: k + 2], 16) for k in (1, 3, 5)])
        plain |= np.abs(area - rgb).max(axis=2) <= 8
    rows, cols = area.shape[0] // block, area.shape[1] // block
    blocks = plain[: rows * block, : cols * block].reshape(rows, block, cols, block).all(axis=(1, 3))
    return float(blocks.mean())


# ---- shapes ----------------------------------------------------------------------------------------------------


def pixels(fig: Figure, box: Box) -> tuple[float, float]:
    """The box's width and height in pixels, at the slides' design size."""
    return box.w * fig.get_figwidth() * DPI, box.h * fig.get_figheight() * DPI


def text_width(text: str, size: float, family: str = "sans-serif", weight: str = "normal") -> float:
    """The width in pixels of one line of text at `size` points (at the slides' DPI)."""
    return _unit_width(text, family, weight) * size


@functools.lru_cache(maxsize=100_000)
def _unit_width(text: str, family: str, weight: str) -> float:
    """The width of `text` at 1 point, measured once at 100 points (layouts try many sizes of the same texts)."""
    renderer = RendererAgg(DESIGN_WIDTH, 100, DPI)
    width, _, _ = renderer.get_text_width_height_descent(text or " ", FontProperties(family=family, weight=weight,
                                                                                   size=100), ismath=False)
    return width / 100


def _fit_size(text: str, width_px: float, largest: float, smallest: float = MIN_FONT,
              family: str = "sans-serif", weight: str = "normal") -> float:
    """The largest font size (points, whole) up to `largest` at which `text` is at most `width_px` wide."""
    width = text_width(text, largest, family, weight)
    return float(max(smallest, min(largest, int(largest * width_px / max(width, 1e-6)))))


def card(fig: Figure, box: Box, color: str = CARD, edge: str = CARD_EDGE) -> None:
    fig.add_artist(FancyBboxPatch((box.x, box.y), box.w, box.h, boxstyle="round,pad=0,rounding_size=0.008",
                                  transform=fig.transFigure, facecolor=color, edgecolor=edge, linewidth=1.2,
                                  zorder=-0.5))


def wrap(text: str, width_px: float, size: float, weight: str = "normal",
          family: str = "sans-serif") -> list[str]:
    """Words of `text` in lines at most `width_px` wide at `size` points."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        indent = " " * (len(paragraph) - len(paragraph.lstrip(" ")))  # kept, on every line (code)
        line = ""
        for word in paragraph.split():
            trial = f"{line} {word}" if line else indent + word
            if line and text_width(trial, size, family, weight) > width_px:
                lines.append(line)
                line = indent + word
            else:
                line = trial
        lines.append(line)
    return lines


def fit_line(fig: Figure, line: str, width_px: float, size: float, weight: str = "normal") -> str:
    """The line, cut with … to `width_px`."""
    while line and text_width(line, size, weight=weight) > width_px:
        line = line[:-2] + "…"
    return line


def clip(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def paragraphs(fig: Figure, box: Box, items: Sequence[tuple[str, dict[str, Any]]], largest: float = 24,
               smallest: float = 14, spacing: float = 0.45) -> float:
    """Text items (text, matplotlib text properties such as weight or color, and `scale`: its size relative to the
    rest), wrapped to the box's width, top down, at the largest size up to `largest` at which they fit the box.
    Returns the size."""
    width, height = pixels(fig, box)

    def layout(size: float) -> tuple[list[tuple[list[str], float, dict[str, Any]]], float, float]:
        placed, used, widest = [], 0.0, 0.0
        for text, props in items:
            own = size * props.get("scale", 1.0)
            family, weight = props.get("family", "sans-serif"), props.get("weight", "normal")
            lines = wrap(text, width, own, weight, family)
            placed.append((lines, own, props))
            used += len(lines) * own * PX * 1.25 + spacing * own * PX
            widest = max([widest, *(text_width(line, own, family, weight) for line in lines)])
        return placed, used, widest

    size = largest
    placed, used, widest = layout(size)
    while (used > height or widest > width) and size > smallest:
        size -= 1
        placed, used, widest = layout(size)
    y = box.top
    for lines, own, props in placed:
        kwargs = {k: v for k, v in props.items() if k != "scale"}
        kwargs.setdefault("color", INK)
        fig.text(box.x, y, "\n".join(lines), fontsize=max(own, MIN_FONT), va="top", linespacing=1.25, **kwargs)
        y -= (len(lines) * own * PX * 1.25 + spacing * own * PX) / (fig.get_figheight() * DPI)
    return size


def picture(fig: Figure, source: Path | bytes, box: Box, frame: bool = True) -> Box:
    """A picture (a file or PNG/JPEG bytes) as large as the box allows without distortion, centred in it, on a white
    card when `frame`; returns where it went."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
        rgb = np.asarray(im.convert("RGB"))
    width, height = pixels(fig, box)
    scale = min(width / rgb.shape[1], height / rgb.shape[0])
    w = rgb.shape[1] * scale / (fig.get_figwidth() * DPI)
    h = rgb.shape[0] * scale / (fig.get_figheight() * DPI)
    placed = Box(box.x + (box.w - w) / 2, box.y + (box.h - h) / 2, w, h)
    if frame:
        card(fig, placed.inset(-0.006, -0.01))
    ax = fig.add_axes([placed.x, placed.y, placed.w, placed.h])
    ax.imshow(rgb, interpolation="antialiased")
    ax.set_axis_off()
    return placed


def aspect(source: Path | bytes) -> float:
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
        return im.width / im.height


def table(fig: Figure, box: Box, header: Sequence[str], rows: Sequence[Sequence[str]],
          bold: set[tuple[int, int]] | frozenset[tuple[int, int]] = frozenset(), largest: float = 20,
          smallest: float = MIN_FONT, align_top: bool = True, row_ems: float = 1.9) -> float:
    """A table drawn into the box: a dark header, striped rows, and the cells in `bold` ((row, column) of `rows`)
    bold on a light blue ground. Columns are as wide as their text; the font is the largest up to `largest` that
    fits the box (headers wrap onto two lines first). Returns the height it used, in figure fractions."""
    width_px, height_px = pixels(fig, box)
    header, rows = _fitting_columns(list(header), [list(r) for r in rows], width_px, smallest)
    ncols = len(header)
    headers = [two_lines(h) for h in header]

    def column_widths(size: float) -> list[float]:
        widths = []
        for c in range(ncols):
            texts = [(line, "bold") for line in headers[c].split("\n")] + [
                (row[c], "bold" if (r, c) in bold else "normal") for r, row in enumerate(rows)]
            widths.append(max(text_width(t, size, weight=w) for t, w in texts) + 1.2 * size * PX)
        return widths

    header_lines = max(h.count("\n") + 1 for h in headers)
    size = largest
    while True:
        widths = column_widths(size)
        row_px = row_ems * size * PX
        needed = (len(rows) + 0.35 + 0.85 * header_lines) * row_px
        if (sum(widths) <= width_px and needed <= height_px) or size <= smallest:
            break
        size -= 1
    scale = min(1.0, width_px / sum(widths))  # still too wide at the smallest size: squeeze the columns
    extra = (width_px - sum(widths) * scale) / ncols  # the table as wide as its box
    xs = np.cumsum([0.0, *(w * scale + extra for w in widths)]) / (fig.get_figwidth() * DPI)
    fh = fig.get_figheight() * DPI
    head_h = (0.35 + 0.85 * header_lines) * row_px / fh
    row_h = row_px / fh
    top = box.top if align_top else box.y + (box.h + head_h + len(rows) * row_h) / 2
    fig.add_artist(Rectangle((box.x, top - head_h), xs[-1], head_h, transform=fig.transFigure, color=BAND))
    for c, text in enumerate(headers):
        fig.text(box.x + (xs[c] + xs[c + 1]) / 2, top - head_h / 2, text, fontsize=size, weight="bold", color="white",
                 ha="center", va="center_baseline", linespacing=1.05)
    for r, row in enumerate(rows):
        y = top - head_h - (r + 1) * row_h
        fig.add_artist(Rectangle((box.x, y), xs[-1], row_h, transform=fig.transFigure,
                                 color="white" if r % 2 == 0 else "#f4f6fa"))
        for c, text in enumerate(row):
            best = (r, c) in bold
            if best:
                fig.add_artist(Rectangle((box.x + xs[c], y), xs[c + 1] - xs[c], row_h, transform=fig.transFigure,
                                         color=BEST))
            fig.text(box.x + (xs[c] + xs[c + 1]) / 2, y + row_h / 2, text, fontsize=size, ha="center",
                     va="center_baseline",
                     weight="bold" if best else "normal", color=INK)
    fig.add_artist(Rectangle((box.x, top - head_h - len(rows) * row_h), xs[-1], head_h + len(rows) * row_h,
                             transform=fig.transFigure, fill=False, edgecolor=CARD_EDGE, linewidth=1.2))
    return head_h + len(rows) * row_h


def _fitting_columns(header: list[str], rows: list[list[str]], width_px: float,
                     size: float) -> tuple[list[str], list[list[str]]]:
    """The first columns that fit `width_px` at `size` points, and a last one of "…" for those left out."""
    widths = [max([text_width(line, size, weight="bold") for line in two_lines(h).split("\n")]
                  + [text_width(r[c], size) for r in rows]) + 1.2 * size * PX
              for c, h in enumerate(header)]
    if sum(widths) <= width_px:
        return header, rows
    keep = max(1, int(np.searchsorted(np.cumsum(widths), width_px - 2 * size * PX)))
    return [*header[:keep], "…"], [[*r[:keep], "…"] for r in rows]


def two_lines(text: str) -> str:
    """A header of several words on two lines of about equal length."""
    words = text.split()
    if len(words) < 2 or len(text) <= 8:
        return text
    cut = min(range(1, len(words)), key=lambda k: abs(len(" ".join(words[:k])) - len(" ".join(words[k:]))))
    return " ".join(words[:cut]) + "\n" + " ".join(words[cut:])


def style_axes(ax: Any, size: float = 14) -> None:
    ax.set_facecolor("white")
    ax.tick_params(labelsize=size, colors=INK)
    ax.xaxis.label.set_size(size)
    ax.yaxis.label.set_size(size)
    ax.title.set_size(size + 2)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(True, axis="x", alpha=0.3)


def card_axes(fig: Figure, box: Box, left: float = 0.06, bottom: float = 0.1, top: float = 0.08,
          right: float = 0.02) -> Any:
    """Axes in a white card filling `box`, with room (fractions of the box) for tick labels and titles."""
    card(fig, box)
    return fig.add_axes([box.x + left * box.w, box.y + bottom * box.h, box.w * (1 - left - right),
                         box.h * (1 - bottom - top)])


def hbars(fig: Figure, box: Box, labels: list[str], values: list[float], title: str, fmt: str | list[str],
           color: str = ACCENT, size: float = 14) -> None:
    """Horizontal bars with their value written at their end (formatted by `fmt`, or given), in the given order."""
    label_px = max(text_width(label, size) for label in labels) + 14
    width_px, height_px = pixels(fig, box)
    ax = card_axes(fig, box, left=min(0.5, label_px / width_px + 0.03), bottom=0.06,
                   top=0.05 + 3 * size * PX / height_px, right=0.17)
    fig.text(box.x + 0.012, box.top - 0.02, title, fontsize=size + 2, color=INK, va="top", weight="bold")
    ax.barh(range(len(values)), values, color=color, height=0.6)
    ax.set_yticks(range(len(values)), labels, fontsize=size)
    ax.invert_yaxis()
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_facecolor("white")
    ax.tick_params(labelsize=size, colors=INK, length=0)
    for k, v in enumerate(values):
        ax.text(v, k, " " + (fmt[k] if isinstance(fmt, list) else format(v, fmt)), va="center", fontsize=size,
                color=INK)
    ax.set_xlim(0, max(values) * 1.02 if max(values) > 0 else 1)


def columns(box: Box, n: int, gap: float = GAP) -> list[Box]:
    width = (box.w - gap * (n - 1)) / max(n, 1)
    return [Box(box.x + k * (width + gap), box.y, width, box.h) for k in range(n)]
