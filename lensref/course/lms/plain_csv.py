"""A plain grade CSV for any other system: the student folder, who they are in the roster (when one is given), the
score and the maximum."""

from __future__ import annotations

from .grade_rows import GradeRow, csv_text, points

COLUMNS = ["student", "name", "id", "email", "score", "max_score"]


def plain_grades_csv(rows: list[GradeRow]) -> str:
    """The plain grade CSV: a row per student, with their roster name and id when a roster was given."""
    return csv_text(
        COLUMNS,
        (
            [
                r.total.student,
                r.entry.name if r.entry else "",
                (r.entry.lms_id or r.entry.sis_user_id or r.entry.id_number) if r.entry else "",
                r.entry.email if r.entry else "",
                points(r.total.score),
                points(r.total.max_score),
            ]
            for r in rows
        ),
    )
