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
from dataclasses import dataclass, field
from pathlib import Path

MAX_NOTEBOOK_BYTES = 50 * 2**20


@dataclass
class Found:
    notebooks: dict[str, Path] = field(default_factory=dict)  # expected name -> the file to grade
    notes: list[str] = field(default_factory=list)
    problem: str | None = None


def _candidates(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.ipynb") if p.is_file() and not p.name.startswith("."))


def find_notebooks(folder: Path, expected: list[str]) -> Found:
    found = Found()
    present = {p.stem: p for p in _candidates(folder)}
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
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot be read ({type(exc).__name__})"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"is not valid JSON (line {exc.lineno}: {exc.msg})"
    if not isinstance(data, dict) or ("cells" not in data and "worksheets" not in data) or "nbformat" not in data:
        return "is JSON but not a notebook (no 'cells' or 'nbformat')"
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises several types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"is not a valid notebook ({first[:120]})"
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta is not None and not isinstance(meta, dict):
            return "has corrupted nbgrader metadata"
    return None


def read_notebook(path: Path):
    """Any nbformat version (v3 upgraded) as a v4 NotebookNode; editor metadata is kept and ignored."""
    import nbformat

    return nbformat.read(path, as_version=4)


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta.get("grade_id") if isinstance(meta, dict) else None


def probe_source(notebook: str, grade_id: str) -> str:
    return (
        f"import lensref.course.grading.probe as _lensref_probe\n"
        f"_lensref_probe.record({notebook!r}, {grade_id!r}, globals())"
    )


@dataclass
class Prepared:
    notebook: object  # the v4 notebook the sandbox runs
    learner_code: list[str]  # the learner's own code cells (solution cells and cells they added)


def prepare(submission, source, notebook: str) -> Prepared:
    """The notebook to run: the submission, with the source's locked cells and probe calls for its test cells."""
    import copy

    import nbformat

    source_cells = {gid: cell for cell in source.cells if (gid := _grade_id(cell))}
    order = [gid for cell in source.cells if (gid := _grade_id(cell))]

    def from_source(gid: str):
        cell = copy.deepcopy(source_cells[gid])
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and cell.cell_type == "code":
            cell.source = probe_source(notebook, gid)
        return cell

    out: list = []
    placed: dict[str, int] = {}
    learner_code: list[str] = []
    for cell in submission.cells:
        gid = _grade_id(cell)
        if gid in source_cells:
            if gid in placed:
                continue  # a duplicated graded cell: the first copy counts
            meta = source_cells[gid].metadata.get("nbgrader", {})
            if meta.get("solution") and not meta.get("grade"):
                new = copy.deepcopy(cell)
                new.metadata["nbgrader"] = copy.deepcopy(meta)
                if new.cell_type == "code":
                    learner_code.append(new.source)
            else:
                new = from_source(gid)
            placed[gid] = len(out)
            out.append(new)
        else:
            new = copy.deepcopy(cell)
            if isinstance(new.get("metadata", {}).get("nbgrader"), dict):
                del new.metadata["nbgrader"]  # a stray or forged grade id does not make a graded cell
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
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    for i, cell in enumerate(out):
        cell["id"] = f"cell-{i}"  # ids of copied and learner cells may collide
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        nb.cells.append(cell)
    return Prepared(nb, learner_code)
