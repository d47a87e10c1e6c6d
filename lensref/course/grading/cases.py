"""The cases each probe asks: drawn per (assignment, student, notebook, cell, call), so a re-run asks the same.

The cases stay with the judge as records (:class:`~lensref.course.checks.Case`); the sandbox gets them as plain
data, ``cases/<notebook>/<grade_id>.json`` (:mod:`.layout`), and so does the judge process (:func:`as_data`), each
rebuilding them with its exercise's ``case_from_data`` (:func:`from_data`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .plan import NotebookPlan, TestCell

if TYPE_CHECKING:
    from ..checks import Case

CellKey = tuple[str, str]  # (notebook, grade_id)
CellCases = list[list["Case"]]  # one list of case records per check call of the cell
CellData = list[list[dict[str, Any]]]  # the same as plain data (Case.to_data)


def seed(*parts: str) -> int:
    """A stable seed from names (the same on every machine and every run)."""
    return int(hashlib.sha256("/".join(parts).encode()).hexdigest()[:12], 16)


def draw(assignment: str, student: str, plans: list[NotebookPlan]) -> dict[CellKey, CellCases]:
    """Every test cell's cases for ``student``."""
    from ..checks import EXERCISES

    out: dict[CellKey, CellCases] = {}
    for plan in plans:
        for cell in plan.test_cells:
            per_call: CellCases = [
                EXERCISES[call.exercise].cases_from_data(
                    seed(assignment, student, plan.name, cell.grade_id, str(i)), call.options
                )
                for i, call in enumerate(cell.calls)
            ]
            out[(plan.name, cell.grade_id)] = per_call
    return out


def as_data(drawn: dict[CellKey, CellCases]) -> dict[CellKey, CellData]:
    """``drawn`` as plain data, to cross a process boundary."""
    return {key: [[case.to_data() for case in call] for call in calls] for key, calls in drawn.items()}


def from_data(cells: Iterable[TestCell], data: dict[CellKey, CellData]) -> dict[CellKey, CellCases]:
    """The records :func:`as_data` gave ``data``, each rebuilt by its call's exercise (a malformed case raises
    :class:`~lensref.errors.LensError`, one line)."""
    from ..checks import EXERCISES

    out: dict[CellKey, CellCases] = {}
    for cell in cells:
        key = (cell.notebook, cell.grade_id)
        if key in data:
            out[key] = [
                [EXERCISES[call.exercise].case_from_data(d) for d in call_data]
                for call, call_data in zip(cell.calls, data[key])
            ]
    return out


def probe_files(plans: list[NotebookPlan], drawn: dict[CellKey, CellCases]) -> dict[CellKey, bytes]:
    """What each probe reads: the learner function to call and its cases (as data), per check call."""
    files = {}
    data = as_data(drawn)
    for plan in plans:
        for cell in plan.test_cells:
            calls = [
                {"exercise": c.exercise, "function": c.function, "cases": cs}
                for c, cs in zip(cell.calls, data[(plan.name, cell.grade_id)])
            ]
            files[(plan.name, cell.grade_id)] = json.dumps({"calls": calls}).encode()
    return files
