"""Moodle's grade import file (Grades > Import > CSV file).

One column identifies the user and one holds the grade; on import the instructor maps the first to a user field
("Identify user by": Email address, Username or ID number) and the second to a grade item (or a new one). Source:
Moodle docs, "Grade import" (docs.moodle.org/en/Grade_import). The identifier is the first of ``Email address``,
``Username``, ``ID number`` that the roster gives for every exported student.
"""

from __future__ import annotations

from ...errors import LensError
from .grade_rows import GradeRow, csv_text, points
from .roster import MOODLE_IDENTIFIERS

_FIELDS = {"Email address": "email", "Username": "username", "ID number": "id_number"}


def identifier_column(rows: list[GradeRow]) -> str:
    """The user field the import identifies students by: the first of Email address, Username and ID number that
    every row's roster entry has."""
    for label in MOODLE_IDENTIFIERS:
        if all(r.entry is not None and getattr(r.entry, _FIELDS[label]) for r in rows):
            return label
    raise LensError(
        "the roster gives no Email address, Username or ID number shared by every exported student "
        "(Moodle's grade import needs one of them)"
    )


def moodle_grades_csv(rows: list[GradeRow], column: str) -> str:
    """Moodle's grade import file: the identifier column, then each student's score in ``column``."""
    identifier = identifier_column(rows)
    field = _FIELDS[identifier]
    return csv_text(
        [identifier, column],
        ([getattr(r.entry, field), points(r.total.score)] for r in rows),
    )
