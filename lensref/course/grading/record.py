"""Recording a judged submission on the instructor's machine: the gradebook, then the files beside it.

For each student, in name order, one writer: the scores go into nbgrader's gradebook, then ``autograded/<student>/
<assignment>/`` gets ``verdicts.json``, the executed notebooks and their per-cell records, and ``feedback/<student>/
<assignment>/`` the pages the judge rendered. Nothing here computes a verdict or parses what the run left.
"""

from __future__ import annotations

import time
from dataclasses import asdict

from ...errors import LensError
from ...files import write_atomically, write_json
from . import feedback, gradebook
from .report import StudentResult
from .status import Status
from .task import Graded, GradingSetup


def record(setup: GradingSetup, graded: Graded) -> tuple[StudentResult, float]:
    """Write ``graded``; the student's result (read back from the gradebook) and the seconds it took."""
    start = time.time()
    student, assignment = graded.student, setup.assignment
    gradebook.record(setup.db_url, assignment, student, graded.points)
    done = setup.out / "autograded" / student / assignment
    done.mkdir(parents=True, exist_ok=True)
    write_json(
        done / "verdicts.json",
        {
            "student": student,
            "assignment": assignment,
            "notes": graded.notes,
            "cells": [asdict(v) for v in graded.verdicts],
        },
    )
    for notebook, data in graded.executed.items():
        write_atomically(done / f"{notebook}.ipynb", data.decode("utf-8"))
    for notebook, data in graded.cell_records.items():
        write_atomically(done / f"{notebook}.cells.json", data.decode("utf-8", "replace"))
    for notebook, page in graded.pages.items():
        feedback.write(setup.out / "feedback" / student / assignment / f"{notebook}.html", page)
    write_atomically(setup.out / "autograded" / student / f"{assignment}.grading.log", graded.log)
    stored = gradebook.read(setup.db_url, assignment, student)
    if stored is None:  # gradebook.record() made the submission just above
        raise LensError(f"the gradebook lost {student}'s submission while grading")
    result = StudentResult(
        student, Status.GRADED, stored.score, stored.max_score, message="; ".join(graded.notes), cells=stored.cells
    )
    result.warm_s = graded.warm_s
    return result, time.time() - start
