"""Every student's total for one assignment, as the gradebook holds it (the same numbers as ``grades-<a>.csv``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import LensError
from ..grading import gradebook


@dataclass(frozen=True)
class StudentTotal:
    """One student's total for the assignment, as the gradebook holds it."""

    student: str  # the student's folder under submitted/, nbgrader's student id
    score: float
    max_score: float


def read_class(gradebook_path: Path, assignment: str) -> list[StudentTotal]:
    """Each student with a submission of ``assignment`` in ``gradebook_path``, in name order."""
    from nbgrader.api import MissingEntry

    if not gradebook_path.is_file():
        raise LensError(f"no gradebook at {gradebook_path}: grade the class first (lensref grade {assignment})")
    db_url = f"sqlite:///{gradebook_path}"
    with gradebook.session(db_url) as gb:
        try:
            students = sorted(s.student.id for s in gb.find_assignment(assignment).submissions)
        except MissingEntry:
            raise LensError(f"{gradebook_path}: no assignment {assignment!r} in the gradebook") from None
        totals = []
        for student in students:
            stored = gradebook.read(db_url, assignment, student)
            if stored is not None:
                totals.append(StudentTotal(student, stored.score, stored.max_score))
    if not totals:
        raise LensError(f"{gradebook_path}: no graded submission of {assignment}")
    return totals
