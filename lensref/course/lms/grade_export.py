"""``lensref grade export``: the gradebook as an LMS's grade import file, or the feedback pages as its bulk upload.

Grades come from ``gradebook.db`` (the same totals as ``grades-<assignment>.csv``); students are matched to the
roster by :mod:`.matching`, with ``submitted/collected.csv`` telling which LMS identity each folder came from.
A student that cannot be matched is never dropped silently: each is one line in :attr:`ExportResult.unmatched`, and
nothing is written unless ``skip_unmatched`` (then the file holds everyone else). Files are written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import LensError
from ...files import replacing, write_atomically
from .canvas import canvas_grades_csv
from .class_scores import read_class
from .collected import by_student, read_collected
from .feedback_package import FEEDBACK_FORMATS, feedback_pages, package_feedback, zip_bytes
from .grade_rows import GradeRow
from .matching import match_students
from .moodle import moodle_grades_csv
from .plain_csv import plain_grades_csv
from .roster import Roster, read_roster

GRADE_FORMATS = ("canvas", "moodle", "csv")


@dataclass(frozen=True)
class ExportResult:
    """What an export did: the file, how many students or pages it holds, who was left out, and whether it was
    written (not while anyone is left out, unless skipped)."""

    path: Path
    count: int  # students (grades) or pages (feedback) in the file
    unmatched: tuple[str, ...]  # one line each
    written: bool


@dataclass(frozen=True)
class ExportPlaces:
    """Where the exports read from: the grading run's output and the collected submissions."""

    graded: Path  # where lensref grade wrote gradebook.db and feedback/
    submitted: Path  # where lensref collect wrote collected.csv


def default_output(places: ExportPlaces, fmt: str, assignment: str, feedback: bool) -> Path:
    """The export's file when ``--out`` is not given: ``<fmt>-grades-<a>.csv`` or ``<fmt>-feedback-<a>.zip``
    beside the gradebook."""
    return places.graded / (f"{fmt}-feedback-{assignment}.zip" if feedback else f"{fmt}-grades-{assignment}.csv")


def _grades_text(fmt: str, rows: list[GradeRow], roster: Roster | None, column: str) -> str:
    if fmt == "canvas":
        assert roster is not None, "--format canvas reads a roster"
        return canvas_grades_csv(rows, roster, column)
    if fmt == "moodle":
        return moodle_grades_csv(rows, column)
    return plain_grades_csv(rows)


def export_grades(
    assignment: str,
    fmt: str,
    places: ExportPlaces,
    out: Path,
    *,
    roster_path: Path | None,
    column: str,
    skip_unmatched: bool,
) -> ExportResult:
    """Write the assignment's grades as ``fmt``'s import file, students matched to the roster; nothing is written
    while a student is unmatched, unless ``skip_unmatched``."""
    if fmt not in GRADE_FORMATS:
        raise LensError(f"unknown grade format {fmt!r} (one of {', '.join(GRADE_FORMATS)})")
    if fmt != "csv" and roster_path is None:
        raise LensError(f"--format {fmt} needs --roster: the LMS's gradebook export, or a CSV with a 'student' column")
    totals = read_class(places.graded / "gradebook.db", assignment)
    roster: Roster | None = None
    unmatched: tuple[str, ...] = ()
    if roster_path is None:
        rows = [GradeRow(t) for t in totals]
    else:
        roster = read_roster(roster_path)
        matching = match_students(
            [t.student for t in totals], roster, by_student(read_collected(places.submitted, assignment))
        )
        rows = [GradeRow(t, matching.matched[t.student]) for t in totals if t.student in matching.matched]
        unmatched = tuple(
            f"{t.student} ({t.score:g}/{t.max_score:g}): not in {roster.path.name}"
            for t in totals
            if t.student not in matching.matched
        )
    if unmatched and not skip_unmatched:
        return ExportResult(out, len(rows), unmatched, written=False)
    if not rows:
        raise LensError(f"no student of {assignment} is in the roster {roster_path}")
    write_atomically(out, _grades_text(fmt, rows, roster, column))
    return ExportResult(out, len(rows), unmatched, written=True)


def export_feedback(
    assignment: str, fmt: str, places: ExportPlaces, out: Path, *, skip_unmatched: bool
) -> ExportResult:
    """Write the assignment's feedback pages as ``fmt``'s bulk-upload zip; nothing is written while a page has no
    LMS identity, unless ``skip_unmatched``."""
    if fmt not in FEEDBACK_FORMATS:
        raise LensError(f"--feedback is packaged for {' or '.join(FEEDBACK_FORMATS)}, not {fmt!r}")
    pages = feedback_pages(places.graded / "feedback", assignment)
    if not pages:
        raise LensError(f"no feedback pages in {places.graded / 'feedback'}/<student>/{assignment}/: grade first")
    package = package_feedback(fmt, pages, read_collected(places.submitted, assignment))
    if package.unmatched and not skip_unmatched:
        return ExportResult(out, len(package.members), package.unmatched, written=False)
    if not package.members:
        raise LensError(f"no feedback page of {assignment} has a {fmt} identity in {places.submitted}/collected.csv")
    with replacing(out) as tmp:
        tmp.write_bytes(zip_bytes(package))
    return ExportResult(out, len(package.members), package.unmatched, written=True)
