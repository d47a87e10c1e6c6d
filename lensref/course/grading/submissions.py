"""Finding a student's notebooks in ``submitted/<student>/<assignment>/`` and making the notebook the sandbox runs.

A browser download renames ``logit_lens.ipynb`` to ``logit_lens (1).ipynb``: a folder that holds exactly one
notebook, for a one-notebook assignment, is graded with a note. Several candidates, or none, is one line saying what
was found and what was expected. Any nbformat version and any editor's metadata are accepted.

:func:`prepare` merges a submission with the instructor's source by nbgrader ``grade_id`` (as nbgrader's own
autograder does): locked cells come from the source, test cells become calls of the probe, cells the learner
deleted are put back where the source has them, cells the learner added stay where they are.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .. import cells

if TYPE_CHECKING:
    from nbformat import NotebookNode

MAX_NOTEBOOK_BYTES = 50 * 2**20


@dataclass
class Found:
    """A student's notebooks for an assignment: the file to grade per expected name, notes, or why none is graded."""

    notebooks: dict[str, Path] = field(default_factory=dict)  # expected name -> the file to grade
    notes: list[str] = field(default_factory=list)
    problem: str | None = None  # nothing to grade: why, in one line
    refused: str | None = None  # a link under submitted/: why, in one line


def link_problem(path: Path, top: Path) -> str | None:
    """Why ``path`` (at or below ``top``, the submissions folder) must not be read, or None.

    The grader never follows a link anywhere under ``submitted/``: a symbolic link in any folder on the way, or a
    notebook with other hard links, could point at the instructor's solutions or another learner's work."""
    try:
        relative = path.relative_to(top)
    except ValueError:
        return f"{path} is outside {top}"
    current = top
    for part in relative.parts:
        current = current / part
        if why := _entry_problem(current, top):
            return why
    return None


def _entry_problem(entry: Path, top: Path) -> str | None:
    """Why this one entry (not the folders above it) is a link, or cannot be looked at; None if it is neither."""
    shown = entry.relative_to(top)
    try:
        info = entry.lstat()
    except OSError as exc:
        return f"{shown} cannot be read ({type(exc).__name__})"
    if stat.S_ISLNK(info.st_mode):
        return f"{shown} is a symbolic link (links are never followed)"
    if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
        return f"{shown} has {info.st_nlink - 1} other hard link(s) (links are never followed)"
    return None


def _candidates(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith(".") and (p.is_symlink() or p.is_file()))


def find_notebooks(folder: Path, expected: list[str], top: Path | None = None) -> Found:
    """The notebooks to grade in ``folder`` (a student's ``<student>/<assignment>/``); with ``top`` (the
    submissions folder), any link on the way or among the candidates refuses the whole submission."""
    found = Found()
    if top is not None and (why := link_problem(folder, top)):
        found.refused = why
        return found
    candidates = _candidates(folder)
    for path in candidates:  # their folder passed above: each candidate itself is left to look at
        if top is not None and (why := _entry_problem(path, top)):
            found.refused = why
            return found
    present = {p.stem: p for p in candidates}
    missing = [name for name in expected if name not in present]
    for name in expected:
        if name in present:
            found.notebooks[name] = present[name]
    if not missing:
        return found
    others = [p for stem, p in present.items() if stem not in expected]
    wanted = ", ".join(f"{n}.ipynb" for n in expected)
    if len(expected) == 1 and len(others) == 1:
        found.notebooks[expected[0]] = others[0]
        found.notes.append(f"graded {others[0].name} as {expected[0]}.ipynb")
        return found
    seen = ", ".join(p.name for p in others) if others else "no notebook"
    found.problem = f"found {seen} in {folder}; expected {wanted}"
    return found


def notebook_problem(path: Path) -> str | None:
    """Why ``path`` is not a gradable notebook (one line), or None if it is fine."""
    import nbformat

    try:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return f"is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB"
        text = read_no_follow(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot be read ({type(exc).__name__})"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"is not valid JSON (line {exc.lineno}: {exc.msg})"
    if not isinstance(data, dict) or ("cells" not in data and "worksheets" not in data) or "nbformat" not in data:
        return "is JSON but not a notebook (no 'cells' or 'nbformat')"
    try:
        nb = nbformat.reads(text, as_version=4)  # type: ignore[no-untyped-call]  # nbformat is unannotated
    except Exception as exc:  # nbformat raises several types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"is not a valid notebook ({first[:120]})"
    if any(cells.has_corrupt_meta(cell) for cell in nb.cells):
        return "has corrupted nbgrader metadata"
    return None


def read_no_follow(path: Path, limit: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """The bytes of a regular file, refusing a symbolic link at the last step (``O_NOFOLLOW``): a link swapped in
    after :func:`link_problem` looked is still not followed."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(limit + 1)
    finally:
        os.close(fd)


def read_submission(path: Path) -> NotebookNode:
    """A submitted notebook of any nbformat version (v3 upgraded) as a v4 node, read without following links."""
    import nbformat

    nb: NotebookNode = nbformat.reads(read_no_follow(path).decode("utf-8"), as_version=4)  # type: ignore[no-untyped-call]  # nbformat is unannotated
    return nb


def probe_source(notebook: str, grade_id: str) -> str:
    """The code a graded test cell becomes: the probe records this cell's answers."""
    return (
        f"import lensref.course.grading.probe as _lensref_probe\n"
        f"_lensref_probe.record({notebook!r}, {grade_id!r}, globals())"
    )


@dataclass
class Prepared:
    """The notebook the sandbox runs, and the learner's own code cells (read, never run, by :mod:`.static`)."""

    notebook: object  # the v4 notebook the sandbox runs
    learner_code: list[str]  # the learner's own code cells (solution cells and cells they added)


def prepare(submission: NotebookNode, source: NotebookNode, notebook: str) -> Prepared:
    """The notebook to run: the submission, with the source's locked cells and probe calls for its test cells."""
    import copy

    import nbformat

    source_cells = cells.by_grade_id(source)
    order = list(source_cells)

    def from_source(gid: str) -> NotebookNode:
        cell: NotebookNode = copy.deepcopy(source_cells[gid])
        if cells.is_graded_code(cell):
            cell.source = probe_source(notebook, gid)
        return cell

    out: list[NotebookNode] = []
    placed: dict[str, int] = {}
    learner_code: list[str] = []
    for cell in submission.cells:
        gid = cells.grade_id(cell)
        if gid in source_cells:
            if gid in placed:
                continue  # a duplicated graded cell: the first copy counts
            mine = source_cells[gid]
            if cells.is_solution(mine) and not cells.nbgrader_meta(mine).get("grade"):
                new = copy.deepcopy(cell)
                cells.set_meta(new, cells.nbgrader_meta(mine))
                if new.cell_type == "code":
                    learner_code.append(new.source)
            else:
                new = from_source(gid)
            placed[gid] = len(out)
            out.append(new)
        else:
            new = copy.deepcopy(cell)
            cells.drop_meta(new)  # a stray or forged grade id does not make a graded cell
            if new.cell_type == "code":
                learner_code.append(new.source)
            out.append(new)
    for i, gid in enumerate(order):  # cells the learner deleted go back after their source predecessor
        if gid in placed:
            continue
        before = [placed[g] for g in order[:i] if g in placed]
        at = (max(before) + 1) if before else 0
        out.insert(at, from_source(gid))
        placed = {g: (p + 1 if p >= at else p) for g, p in placed.items()}
        placed[gid] = at
    nb = nbformat.v4.new_notebook(  # type: ignore[no-untyped-call]  # nbformat is unannotated
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    for i, cell in enumerate(out):
        cell["id"] = f"cell-{i}"  # ids of copied and learner cells may collide
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        nb.cells.append(cell)
    return Prepared(nb, learner_code)
