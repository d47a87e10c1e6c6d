"""Canvas's quiz "Student Analysis" report (Quizzes > the quiz > Quiz Statistics > Student Analysis), read as a
class's responses.

The report's columns, as Canvas writes them (canvas-lms, ``app/models/quizzes/quiz_statistics/student_analysis.rb``,
``to_csv``): ``name`` and ``id`` (left out when the quiz is anonymous), ``sis_id`` and ``root_account`` (only on
some instances), ``section``, ``section_id``, ``section_sis_id`` (with SIS ids), ``submitted``, ``attempt`` (when the
report includes every attempt); then, for each question, a column headed ``<Canvas question id>: <question text
without its HTML tags>`` holding the chosen answer's text, followed by a column headed by the question's points
possible holding the points earned; then ``n correct``, ``n incorrect`` and ``score``.

Question columns are matched to the bank by their text (Canvas's ids are its own), so a quiz imported from
``lensref quiz export --format qti`` (or typed in with the same wording) is recognised in any column order; each
points column is skipped with its question.
"""

from __future__ import annotations

import html
import re

from ...errors import LensError
from ..quiz.bank import Bank, Question

TOTALS = ["n correct", "n incorrect", "score"]
_QUESTION_HEADER = re.compile(r"^(\d+): (.*)$", re.S)
COLUMN_HINT = "a Canvas Student Analysis heads each question's column '<id>: <question text>'; the quiz's wording must be the bank's"
LEARNER_COLUMNS = ("name", "id")  # the default learner column: the first of these the report has


def _plain(text: str) -> str:
    return " ".join(html.unescape(text).split()).casefold()


def is_student_analysis(header: list[str]) -> bool:
    """Whether ``header`` is a Student Analysis report's: section columns, question columns, the three totals."""
    return header[-3:] == TOTALS and "section_id" in header and any(_QUESTION_HEADER.match(h) for h in header)


def map_columns(
    bank: Bank, header: list[str], id_column: str | None, where: str
) -> tuple[int, dict[int, int], tuple[str, ...]]:
    """(learner column index, {question number: answer column index}, ignored headers), like
    :func:`lensref.course.quiz.classgrade.map_columns` for an ordinary responses CSV; questions without a column
    are left for the caller to name (:func:`lensref.course.quiz.classgrade.require_every_question`)."""
    learner_col = _learner_column(header, id_column, where)
    by_text: dict[str, Question] = {_plain(q.text): q for q in bank.questions}
    by_question: dict[int, int] = {}
    points_columns = set()
    ignored = []
    for col, name in enumerate(header):
        match = _QUESTION_HEADER.match(name)
        question = by_text.get(_plain(match.group(2))) if match else None
        if question is None:
            continue
        if question.number in by_question:
            first = header[by_question[question.number]]
            raise LensError(f"{where}: columns {first!r} and {name!r} both hold {question.label}")
        by_question[question.number] = col
        points_columns.add(col + 1)
    for col, name in enumerate(header):
        if col != learner_col and col not in points_columns and col not in by_question.values():
            ignored.append(name)
    return learner_col, by_question, tuple(ignored)


def _learner_column(header: list[str], id_column: str | None, where: str) -> int:
    if id_column is not None:
        if id_column not in header:
            raise LensError(f"{where}: no column {id_column!r} for the learner (columns: {', '.join(header)})")
        return header.index(id_column)
    for name in LEARNER_COLUMNS:
        if name in header:
            return header.index(name)
    raise LensError(
        f"{where}: this Student Analysis names no learner (an anonymous quiz has no 'name' or 'id' column); "
        f"give --id-column"
    )
