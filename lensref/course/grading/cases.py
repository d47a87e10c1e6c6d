"""The cases each probe asks: drawn per (assignment, student, notebook, cell, call), so a re-run asks the same.

The cases stay with the judge; the sandbox gets them as ``cases/<notebook>/<grade_id>.json`` (:mod:`.layout`).
"""

from __future__ import annotations

import hashlib
import json

from .plan import NotebookPlan

CellKey = tuple[str, str]  # (notebook, grade_id)
CellCases = list[list[dict]]  # one list of cases per check call of the cell


def seed(*parts: str) -> int:
    """A stable seed from names (the same on every machine and every run)."""
    return int(hashlib.sha256("/".join(parts).encode()).hexdigest()[:12], 16)


def draw(assignment: str, student: str, plans: list[NotebookPlan]) -> dict[CellKey, CellCases]:
    """Every test cell's cases for ``student``."""
    from ..checks import EXERCISES

    out: dict[CellKey, CellCases] = {}
    for plan in plans:
        for cell in plan.test_cells:
            per_call = [
                EXERCISES[call.exercise].cases_from_data(
                    seed(assignment, student, plan.name, cell.grade_id, str(i)), call.options
                )
                for i, call in enumerate(cell.calls)
            ]
            out[(plan.name, cell.grade_id)] = per_call
    return out


def probe_files(plans: list[NotebookPlan], drawn: dict[CellKey, CellCases]) -> dict[CellKey, bytes]:
    """What each probe reads: the learner function to call and its cases, per check call."""
    files = {}
    for plan in plans:
        for cell in plan.test_cells:
            calls = [
                {"exercise": c.exercise, "function": c.function, "cases": cs}
                for c, cs in zip(cell.calls, drawn[(plan.name, cell.grade_id)])
            ]
            files[(plan.name, cell.grade_id)] = json.dumps({"calls": calls}).encode()
    return files
