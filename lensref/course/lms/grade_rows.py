"""One row of a grade export: a student's total and, when a roster was given, who they are in the LMS."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass

from ..grading.report import spreadsheet_safe
from .class_scores import StudentTotal
from .roster import RosterEntry


@dataclass(frozen=True)
class GradeRow:
    """A student's total and, when a roster was given, their roster entry."""

    total: StudentTotal
    entry: RosterEntry | None = None


def points(value: float) -> str:
    """A score as a grade import reads it: ``7``, ``7.5``."""
    return f"{value:g}"


def csv_text(header: list[str], rows: Iterable[list[str]]) -> str:
    """CSV text with every cell guarded against a spreadsheet's formulas (:func:`report.spreadsheet_safe`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([spreadsheet_safe(cell) for cell in row] for row in rows)
    return buffer.getvalue()
