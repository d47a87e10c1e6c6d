"""Showing a figure on a lesson page: legible, described, and checkable after the build.

``show(fig, alt)`` renders a matplotlib figure to PNG and displays it in the notebook. The PNG carries text
chunks that the site build and the tests read back:

- ``Description``: the alt text (a sentence saying what the figure shows); ``book/_ext/lesson_site.py``
  copies it into the page's ``<img alt>``;
- ``lensref:width_in``: the saved figure's width in inches, and ``lensref:min_font_pt``: its smallest text, so
  the browser test can work out how tall that text is at the width the page shows the image;
- ``lensref:missing_glyphs``: characters of any label that the label's font has no glyph for (must be empty);
- ``lensref:ambiguous_lines``: legend entries of one axes that share both line style and marker, so they
  differ only by colour (must be empty);
- ``lensref:covered``: legends and in-plot labels that lie over a plotted line, area or marker
  (``lensref.plotting.overlap``; must be empty).

:func:`check_figure` computes the last four; ``show`` refuses a figure whose text is smaller than
:data:`MIN_FONT_PT`, that is wider than :data:`MAX_WIDTH_IN` or that fails a check, so a page cannot
silently ship an illegible figure.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import cache

import matplotlib
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.text import Text

from .overlap import covered_data

DPI = 100
# The lesson's content column shows images at most 688 px wide (sphinx-book-theme, 1280 px window). A figure
# W inches wide is scaled by 688 / (W * DPI) there, so text of s points is s/72 * 688/W px tall:
# 8 pt on an 8-inch figure is 9.6 px, above the 9 px the course asks for.
MIN_FONT_PT = 8.0
COLUMN_PX = 688
MAX_WIDTH_IN = 8.0
META_ALT = "Description"
META_WIDTH = "lensref:width_in"
META_FONT = "lensref:min_font_pt"
META_GLYPHS = "lensref:missing_glyphs"
META_LINES = "lensref:ambiguous_lines"
META_COVERED = "lensref:covered"


@dataclass
class FigureCheck:
    """What :func:`check_figure` found: the smallest text, and any glyph or line-style problem."""

    min_font_pt: float
    missing_glyphs: str = ""
    ambiguous_lines: list[str] = field(default_factory=list)
    covered: list[str] = field(default_factory=list)


@cache
def _charmap(path: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(path).get_charmap())


def _visible_texts(fig: Figure) -> list[Text]:
    texts = []
    for t in fig.findobj(Text):
        if t.get_visible() and t.get_text().strip() and (t.axes is None or t.axes.get_visible()):
            texts.append(t)
    return texts


def _is_mathtext(text: str) -> bool:
    return text.count("$") >= 2 and matplotlib.rcParams["text.usetex"] is False


def check_figure(fig: Figure) -> FigureCheck:
    """The smallest font size of any visible text, characters no label's font can draw, legend entries
    whose lines differ only in colour (same line style and same marker on one axes), and legends or labels
    that lie over the data."""
    fig.canvas.draw()  # tick labels exist only once drawn
    texts = _visible_texts(fig)
    min_pt = min((float(t.get_fontsize()) for t in texts), default=float("inf"))
    missing: set[str] = set()
    for t in texts:
        raw = t.get_text()
        if _is_mathtext(raw):
            continue
        path = font_manager.findfont(t.get_fontproperties(), fallback_to_default=True)
        charmap = _charmap(path)
        missing.update(ch for ch in raw if not ch.isspace() and ord(ch) not in charmap)
    ambiguous = []
    for ax in fig.axes:
        styled: dict[tuple[str, str], str] = {}
        for line in ax.get_lines():
            label = str(line.get_label() or "")
            if not label or label.startswith("_"):
                continue
            key = (str(line.get_linestyle()), str(line.get_marker()))
            if key in styled:
                ambiguous.append(f"{styled[key]!r} / {label!r}")
            styled[key] = label
    return FigureCheck(min_pt, "".join(sorted(missing)), ambiguous, covered_data(fig))


def png_bytes(fig: Figure, alt: str, dpi: int = DPI) -> bytes:
    """The figure as PNG (tight bounding box, white background) with the checks and ``alt`` in its text chunks."""
    check = check_figure(fig)
    buf = io.BytesIO()
    # A tight box can be wider than the figure (a long label) or narrower: measure the saved width itself.
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    from PIL import Image

    width_px = Image.open(io.BytesIO(buf.getvalue())).size[0]
    metadata = {
        META_ALT: alt,
        META_WIDTH: f"{width_px / dpi:.3f}",
        META_FONT: f"{check.min_font_pt:g}",
        META_GLYPHS: check.missing_glyphs,
        META_LINES: "; ".join(check.ambiguous_lines),
        META_COVERED: "; ".join(check.covered),
    }
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi, bbox_inches="tight", facecolor="white", metadata=metadata)
    return out.getvalue()


def read_png_info(data: bytes) -> dict[str, str]:
    """The text chunks of a PNG written by :func:`png_bytes` (``{}`` for another PNG)."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    info = {k: v for k, v in getattr(image, "text", {}).items()}
    info["width_px"] = str(image.size[0])
    return info


def check_alt(alt: str) -> None:
    """Refuse an alt text that is not a sentence (a capital, at least six words, a full stop)."""
    words = alt.split()
    if len(words) < 6 or not alt[:1].isupper() or not alt.rstrip().endswith((".", "?", "!")):
        raise ValueError(f"alt text must be a sentence of at least six words, got {alt!r}")


def show(fig: Figure, alt: str, dpi: int = DPI) -> None:
    """Display ``fig`` in the notebook as a PNG described by ``alt``, then close it.

    Raises ``ValueError`` for text smaller than :data:`MIN_FONT_PT`, a figure wider than
    :data:`MAX_WIDTH_IN`, a glyph the font lacks, lines that differ only by colour, a legend or label over
    the data, or an alt text that is not a sentence."""
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    check_alt(alt)
    data = png_bytes(fig, alt, dpi)
    info = read_png_info(data)
    problems = []
    if float(info[META_FONT]) < MIN_FONT_PT:
        problems.append(f"text of {info[META_FONT]} pt (at least {MIN_FONT_PT:g} pt)")
    if float(info[META_WIDTH]) > MAX_WIDTH_IN + 0.3:  # the tight box may add a little margin
        problems.append(f"a width of {info[META_WIDTH]} in (at most {MAX_WIDTH_IN:g} in)")
    if info[META_GLYPHS]:
        problems.append(f"characters the font cannot draw: {info[META_GLYPHS]!r}")
    if info[META_LINES]:
        problems.append(f"lines that differ only by colour: {info[META_LINES]}")
    if info[META_COVERED]:
        problems.append(f"text over the data: {info[META_COVERED]}")
    plt.close(fig)
    if problems:
        raise ValueError("illegible figure: " + "; ".join(problems))
    display(Image(data=data, format="png"))  # type: ignore[no-untyped-call]  # IPython.display is unannotated
