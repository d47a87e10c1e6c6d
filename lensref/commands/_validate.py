"""Checks of command-line options that run before any model is loaded: a bad option costs one line, not a
model load followed by a traceback."""

from __future__ import annotations

from pathlib import Path

from ..errors import LensError

# what ``--plot`` can write, by file extension (matplotlib's own list, minus its raw-buffer formats)
FIGURE_FORMATS = ("png", "svg", "pdf", "jpg", "jpeg", "webp", "tif", "tiff", "eps", "ps")


def check_output(path: str | None, option: str) -> None:
    """``path`` (given as ``option``) can be written: it is not a folder and its folder exists."""
    if path is None:
        return
    target = Path(path)
    if not str(path).strip():
        raise LensError(f"{option} needs a file name")
    if target.is_dir():
        raise LensError(f"{option} {path}: is a folder; give a file name")
    if not target.parent.is_dir():
        raise LensError(f"{option} {path}: folder {target.parent} does not exist")


def check_figure_output(path: str | None, option: str = "--plot") -> None:
    """:func:`check_output`, and the extension names a format the figure can be written in (none = PNG)."""
    check_output(path, option)
    if path is None:
        return
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix and suffix not in FIGURE_FORMATS:
        raise LensError(
            f"{option} {path}: cannot write a .{suffix} figure; use one of "
            + ", ".join(f".{f}" for f in FIGURE_FORMATS)
        )
