"""nbgrader's cell metadata, read in one place: which cell is an exercise, a test, how many points, which id.

nbgrader marks cells with ``metadata["nbgrader"]``: ``solution`` (the learner writes it), ``grade`` with ``points``
(a graded cell: a test cell when it is code and not a solution), ``locked`` and ``grade_id`` (its name). Learner
files may carry anything there: every reader here treats a metadata value that is not a dict as no metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LensError

if TYPE_CHECKING:
    from nbformat import NotebookNode


def nbgrader_meta(cell: NotebookNode) -> dict[str, Any]:
    """The cell's nbgrader metadata, or ``{}`` (none, or not a dict: a corrupted or forged file)."""
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def set_meta(cell: NotebookNode, meta: dict[str, Any]) -> None:
    """Give ``cell`` a copy of ``meta`` as its nbgrader metadata."""
    import copy

    cell.setdefault("metadata", {})["nbgrader"] = copy.deepcopy(meta)


def drop_meta(cell: NotebookNode) -> None:
    """Remove any nbgrader metadata (a stray or forged grade id must not make a graded cell)."""
    cell.get("metadata", {}).pop("nbgrader", None)


def has_corrupt_meta(cell: NotebookNode) -> bool:
    """Whether the cell has nbgrader metadata that is not a dict."""
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta is not None and not isinstance(meta, dict)


def grade_id(cell: NotebookNode) -> str | None:
    """The cell's nbgrader ``grade_id``, or None where it has no usable one (missing, empty or not a string)."""
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) and gid else None


def is_solution(cell: NotebookNode) -> bool:
    """A cell the learner writes (an exercise), graded or not."""
    return bool(nbgrader_meta(cell).get("solution"))


def is_graded_code(cell: NotebookNode) -> bool:
    """A code cell nbgrader scores (``grade: true``)."""
    return cell.get("cell_type") == "code" and bool(nbgrader_meta(cell).get("grade"))


def is_test_cell(cell: NotebookNode) -> bool:
    """A graded code cell that is not the learner's: the instructor's tests."""
    return is_graded_code(cell) and not is_solution(cell)


def points(cell: NotebookNode) -> float:
    """The points nbgrader gives the cell (0 when it gives none)."""
    return float(nbgrader_meta(cell).get("points", 0) or 0)


def by_grade_id(nb: NotebookNode) -> dict[str, Any]:
    """``grade_id -> cell`` for every cell that has one (the first, if a learner duplicated a cell)."""
    cells: dict[str, Any] = {}
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid is not None and gid not in cells:
            cells[gid] = cell
    return cells


def read_notebook(path: str | Path) -> NotebookNode:
    """A notebook of any nbformat version (v3 upgraded) as a v4 node; one ``LensError`` line when it cannot be."""
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise LensError(f"{path}: no such notebook")
    try:
        nb: NotebookNode = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]  # nbformat is unannotated
        return nb
    except Exception as exc:  # nbformat raises JSON, validation and OS errors
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise LensError(f"{path}: not a readable notebook ({first})") from None
