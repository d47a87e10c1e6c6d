"""Who each student folder is in the LMS, read from ``submitted/collected.csv`` (written by ``lensref collect``).

The manifest appends a row per collected notebook; the last row for a student, assignment and notebook describes
the file in ``submitted/``. Its ``lms`` is ``moodle``, ``canvas`` or ``submit``; ``lms_id`` is Moodle's participant
id for that assignment or Canvas's user id; ``lms_name`` the name as the LMS wrote it; ``member`` the file's name
in the LMS download (Canvas's holds the submitted file's id).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ...errors import LensError
from ..grading.collect.manifest import MANIFEST

_FORMULA_GUARD = ("'=", "'+", "'-", "'@", "'\t", "'\r")  # report.spreadsheet_safe's leading quote, taken off


@dataclass(frozen=True)
class CollectedFrom:
    """Where a student's notebook came from: the manifest's last row for it (the LMS, the id and name it gave, the
    member)."""

    student: str
    notebook: str
    lms: str  # "moodle", "canvas" or "submit"
    lms_id: str
    lms_name: str
    member: str


def _unguarded(value: str) -> str:
    return value[1:] if value.startswith(_FORMULA_GUARD) else value


def read_collected(submitted: Path, assignment: str) -> dict[tuple[str, str], CollectedFrom]:
    """(student, notebook) -> where it came from, for ``assignment``; empty when nothing was collected."""
    path = submitted / MANIFEST
    if not path.is_file() or path.is_symlink():
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LensError(f"{path}: cannot read ({exc})") from None
    out = {}
    for row in rows:
        row = {k: _unguarded(v or "") for k, v in row.items() if k}
        if row.get("assignment") == assignment:
            key = (row.get("student", ""), row.get("notebook", ""))
            out[key] = CollectedFrom(
                key[0],
                key[1],
                row.get("lms", ""),
                row.get("lms_id", ""),
                row.get("lms_name", ""),
                row.get("member", ""),
            )
    return out


def by_student(collected: dict[tuple[str, str], CollectedFrom]) -> dict[str, CollectedFrom]:
    """One record per student (any of its notebooks: they came from one LMS identity)."""
    return {student: record for (student, _), record in sorted(collected.items())}
