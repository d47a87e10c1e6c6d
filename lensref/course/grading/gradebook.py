"""nbgrader's SQLite gradebook, written only by the grader: one score per graded cell, updated in place.

The gradebook stays the instructor's record (``nbgrader formgrader`` and ``nbgrader export`` read it as usual). The
assignment's cells are registered by ``nbgrader generate_assignment``; here each student's submission is created once
and its grades are set on every run, so a re-run replaces scores and never adds rows. The CSV is written from what
this module reads back, so the two cannot disagree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import LensError

if TYPE_CHECKING:
    from nbgrader.api import Gradebook


@dataclass
class StoredScores:
    """A submission's scores as the gradebook holds them: the total, the maximum and the points per graded cell."""

    score: float
    max_score: float
    cells: dict[str, float] = field(default_factory=dict)  # "notebook:grade_id" -> points


def register_assignment(assignment: str, root: Path, db_url: str) -> None:
    """``nbgrader generate_assignment`` on the instructor's source: it puts the cells and points in the gradebook."""
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    with tempfile.TemporaryDirectory(prefix="lensref-release-") as release:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "nbgrader",
                "generate_assignment",
                assignment,
                "--force",
                f"--CourseDirectory.root={root}",
                f"--CourseDirectory.db_url={db_url}",
                f"--CourseDirectory.release_directory={release}",
            ],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    if run.returncode != 0:
        errors = [ln.strip() for ln in (run.stdout + run.stderr).splitlines() if "[ERROR]" in ln or "Error:" in ln]
        raise LensError(f"nbgrader generate_assignment {assignment} failed: {(errors or ['see its output'])[-1][:200]}")


_session = threading.local()  # the Gradebook kept open by session() in this thread, and its URL


@contextmanager
def session(db_url: str) -> Iterator[Gradebook]:
    """Keep one Gradebook open for a whole grading run in this thread (one engine: SQLAlchemy compiles each query
    once, not once per student); record() and read() in this thread use it."""
    with _opened(db_url) as gb:
        _session.open = (db_url, gb)
        try:
            yield gb
        finally:
            _session.open = None


@contextmanager
def _opened(db_url: str) -> Iterator[Gradebook]:
    """The ``Gradebook`` of nbgrader, without the SQLAlchemy warnings its own submission helpers trigger."""
    from nbgrader.api import Gradebook

    kept = getattr(_session, "open", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kept is not None and kept[0] == db_url:
            yield kept[1]
            return
        with Gradebook(db_url) as gb:
            yield gb


def record(db_url: str, assignment: str, student: str, points: dict[tuple[str, str], float]) -> None:
    """Set the auto score of every ``(notebook, grade_id)`` of ``student``'s submission, in one transaction."""
    from nbgrader.api import MissingEntry

    with _opened(db_url) as gb:
        try:  # nbgrader's update_or_create_* helpers commit every time; a known student needs no write here
            gb.find_submission(assignment, student)
        except MissingEntry:
            try:
                gb.find_student(student)
            except MissingEntry:
                gb.add_student(student)
            gb.add_submission(assignment, student)
        try:
            for (notebook, grade_id), score in points.items():
                grade = gb.find_grade(grade_id, notebook, assignment, student)
                grade.auto_score = float(score)
                grade.manual_score = None
                grade.needs_manual_grade = False
            gb.db.commit()
        except Exception:
            gb.db.rollback()
            raise


def read(db_url: str, assignment: str, student: str) -> StoredScores | None:
    """What the gradebook holds for ``student``'s submission of ``assignment``, or None if it has none."""
    from nbgrader.api import MissingEntry

    with _opened(db_url) as gb:
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            return None
        cells = {
            f"{nb.name}:{grade.name}": float(grade.score)
            for nb in sub.notebooks
            for grade in nb.grades
            if grade.max_score
        }
        return StoredScores(float(sub.score), float(sub.max_score), cells)
