"""Canvas's gradebook import file (Grades > Import).

Columns, as Canvas's gradebook export writes them and its import reads them: ``Student``, ``ID``, ``SIS User ID``,
``SIS Login ID``, ``Section``, then one assignment column. A student is found by ``ID`` (or the SIS ids, or the
name); an assignment column headed ``<name> (<assignment id>)`` updates that assignment, one headed by a new name
creates an assignment. The row after the header gives ``Points Possible``. Sources: Canvas guide "How do I import
grades in the Gradebook?" (community.canvaslms.com/t5/Instructor-Guide/How-do-I-import-grades-in-the-Gradebook/ta-p/807),
Ohio State's "Import a CSV file to Carmen Grades" (teaching.resources.osu.edu), and "Detailed Canvas Export Info"
(nemogb-dev.github.io/nemogb-r/articles/detailed-canvas-export-info.html) for the export's ``Points Possible`` row and
``<name> (<id>)`` headers.
"""

from __future__ import annotations

import re

from ...errors import LensError
from .grade_rows import GradeRow, csv_text, points
from .roster import CANVAS_COLUMNS, Roster

POINTS_POSSIBLE = "Points Possible"


def assignment_column(roster: Roster, column: str) -> str:
    """The roster's ``<column> (<id>)`` header when Canvas already has that assignment, else ``column`` (new)."""
    existing = [h for h in roster.header if re.fullmatch(re.escape(column) + r" \(\d+\)", h)]
    return existing[0] if len(existing) == 1 else column


def canvas_grades_csv(rows: list[GradeRow], roster: Roster, column: str) -> str:
    """Canvas's grade import file: a Points Possible row, then each student's ids, section and score in ``column``."""
    header = [*CANVAS_COLUMNS, assignment_column(roster, column)]
    max_score = max(r.total.max_score for r in rows)
    lines = [[POINTS_POSSIBLE, "", "", "", "", points(max_score)]]
    for row in rows:
        entry = row.entry
        if entry is None or not (entry.lms_id or entry.sis_user_id or entry.sis_login_id):
            raise LensError(
                f"student {row.total.student!r}: the roster gives no Canvas ID, SIS User ID or SIS Login ID"
            )
        lines.append(
            [
                entry.name,
                entry.lms_id,
                entry.sis_user_id,
                entry.sis_login_id,
                entry.section,
                points(row.total.score),
            ]
        )
    return csv_text(header, lines)
