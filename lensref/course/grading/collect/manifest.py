"""``submitted/collected.csv``: where every collected notebook came from.

One row per collected notebook, appended run after run (the last row for a student, assignment and notebook
describes the file in ``submitted/``): ``collected_at`` (UTC), ``student``, ``assignment``, ``notebook``, ``lms``
(``submit`` for the lensref submit layout, ``moodle`` or ``canvas``), ``lms_id`` (Moodle participant id, Canvas user
id or ``anon_<id>``), ``lms_name`` (the name as the LMS wrote it), ``late`` (``yes`` for Canvas's LATE), ``archive``,
``member`` and ``sha256`` of the notebook written. Cells that a spreadsheet would read as a formula get a leading
``'``. A notebook found unchanged adds no row.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from pathlib import Path

from ....files import write_atomically
from ..report import spreadsheet_safe
from .results import Collected

MANIFEST = "collected.csv"
MANIFEST_FIELDS = [
    "collected_at",
    "student",
    "assignment",
    "notebook",
    "lms",
    "lms_id",
    "lms_name",
    "late",
    "archive",
    "member",
    "sha256",
]


def _row(c: Collected, when: str) -> dict[str, str]:
    identity = c.identity
    row = {
        "collected_at": when,
        "student": c.student,
        "assignment": c.assignment,
        "notebook": c.notebook,
        "lms": c.layout,
        "lms_id": identity.lms_id if identity else "",
        "lms_name": identity.name if identity else "",
        "late": "yes" if identity and identity.late else "",
        "archive": str(c.archive.resolve()),
        "member": c.member,
        "sha256": c.sha256,
    }
    return {k: spreadsheet_safe(v) for k, v in row.items()}


def write_manifest(path: Path, collected: list[Collected]) -> None:
    """Append one row per collected notebook to ``path`` (rewritten atomically; a symlink there is not read)."""
    rows: list[dict[str, str]] = []
    if path.is_file() and not path.is_symlink():
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows += [_row(c, when) for c in collected]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=MANIFEST_FIELDS, extrasaction="ignore", restval="")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, out.getvalue())
