"""The instructor's roster: who the students are in the LMS, read from a CSV of one of three kinds.

- **Canvas's gradebook export** (Grades > Export > Export Entire Gradebook): ``Student`` (``Last, First``), ``ID``
  (Canvas's user id), ``SIS User ID``, ``SIS Login ID``, ``Section``, then one column per assignment headed
  ``<name> (<assignment id>)`` and read-only totals; its second row is ``Points Possible`` (and a row of posting
  policies may follow), which are skipped: only rows with an ``ID`` are students. Layout as described in "Detailed
  Canvas Export Info" (nemogb-dev.github.io/nemogb-r/articles/detailed-canvas-export-info.html) and the Canvas
  guide "How do I import grades in the Gradebook?" (community.canvaslms.com, Instructor Guide).
- **Moodle's grade export** (Grades > Export > Plain text file): ``First name``, ``Last name``, ``ID number``,
  ``Institution``, ``Department``, ``Email address``, then the grade items (any of ``Username``, ``ID number``
  and ``Email address`` can identify a user on import: docs.moodle.org/en/Grade_import).
- **A plain CSV** with a ``student`` column (the folder names under ``submitted/``) and any of ``name``, ``id``,
  ``email``, ``username``, ``id_number``, ``sis_user_id``, ``sis_login_id``, ``section``.

A roster that lists one LMS id (or e-mail, username, SIS id, student folder) twice is refused, naming both lines.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from ...errors import LensError
from ..quiz.bank import read_text_file

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
MOODLE_NAME_COLUMNS = ("First name", "Last name")
MOODLE_IDENTIFIERS = ("Email address", "Username", "ID number")  # the user fields Moodle's import matches on
PLAIN_COLUMNS = ("student", "name", "id", "email", "username", "id_number", "sis_user_id", "sis_login_id", "section")


@dataclass(frozen=True)
class RosterEntry:
    """One student of the roster: their line, name and the ids the LMS knows them by."""

    line: int  # in the roster file
    name: str  # as the LMS shows it: Canvas "Last, First", Moodle "First Last"
    lms_id: str = ""  # Canvas's user id
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    email: str = ""
    username: str = ""
    id_number: str = ""
    student: str = ""  # a plain roster's student folder

    def names(self) -> list[str]:
        """The name, and for ``Last, First`` also ``First Last``."""
        last, comma, first = self.name.partition(",")
        return [self.name, f"{first.strip()} {last.strip()}"] if comma else [self.name]


@dataclass(frozen=True)
class Roster:
    """A roster as read: its file, kind (``canvas``, ``moodle`` or ``plain``), header and students."""

    path: Path
    kind: str  # "canvas", "moodle" or "plain"
    header: tuple[str, ...]
    entries: tuple[RosterEntry, ...]

    def describe(self, entry: RosterEntry) -> str:
        """How messages name ``entry``: the roster's file name, its line and the student's name."""
        return f"{self.path.name} line {entry.line} ({entry.name or entry.student})"


def read_roster(path: str | Path) -> Roster:
    """The roster in the CSV at ``path``, its kind told by its header; two lines with one id are an error."""
    path = Path(path)
    text = read_text_file(path, "roster", encoding="utf-8-sig", missing="no such roster file")
    try:
        rows = list(csv.reader(io.StringIO(text), strict=True))
    except csv.Error as exc:
        raise LensError(f"{path}: malformed CSV ({exc})") from None
    if not rows or not any(f.strip() for f in rows[0]):
        raise LensError(f"{path}: roster file is empty")
    header = tuple(h.strip() for h in rows[0])
    kind = roster_kind(header)
    if kind is None:
        raise LensError(
            f"{path}: not a roster: expected Canvas's gradebook export ({', '.join(CANVAS_COLUMNS)}), Moodle's grade "
            f"export ({', '.join(MOODLE_NAME_COLUMNS)}, Email address) or a CSV with a 'student' column"
        )
    entries = []
    for number, fields in enumerate(rows[1:], start=2):
        row = dict(zip(header, (f.strip() for f in fields)))
        entry = _entry(kind, number, row)
        if entry is not None:
            entries.append(entry)
    if not entries:
        raise LensError(f"{path}: no students in the roster")
    roster = Roster(path, kind, header, tuple(entries))
    _refuse_repeats(roster)
    return roster


def roster_kind(header: tuple[str, ...]) -> str | None:
    """The roster's kind from its header (``canvas``, ``moodle`` or ``plain``), or None if it is none of them."""
    if all(c in header for c in ("Student", "ID", "Section")):
        return "canvas"
    if all(c in header for c in MOODLE_NAME_COLUMNS) or "Email address" in header:
        return "moodle"
    if "student" in header:
        return "plain"
    return None


def _entry(kind: str, line: int, row: dict[str, str]) -> RosterEntry | None:
    if kind == "canvas":
        if not row.get("ID"):  # "Points Possible", posting policies: not students
            return None
        return RosterEntry(
            line,
            row.get("Student", ""),
            lms_id=row["ID"],
            sis_user_id=row.get("SIS User ID", ""),
            sis_login_id=row.get("SIS Login ID", ""),
            section=row.get("Section", ""),
        )
    if kind == "moodle":
        name = " ".join(p for p in (row.get("First name", ""), row.get("Last name", "")) if p)
        if not name and not any(row.get(c) for c in MOODLE_IDENTIFIERS):
            return None
        return RosterEntry(
            line,
            name,
            email=row.get("Email address", ""),
            username=row.get("Username", ""),
            id_number=row.get("ID number", ""),
        )
    if not row.get("student"):
        return None
    return RosterEntry(
        line,
        row.get("name", ""),
        lms_id=row.get("id", ""),
        sis_user_id=row.get("sis_user_id", ""),
        sis_login_id=row.get("sis_login_id", ""),
        section=row.get("section", ""),
        email=row.get("email", ""),
        username=row.get("username", ""),
        id_number=row.get("id_number", ""),
        student=row["student"],
    )


_UNIQUE = (
    ("student", "student folder"),
    ("lms_id", "ID"),
    ("sis_user_id", "SIS User ID"),
    ("sis_login_id", "SIS Login ID"),
    ("email", "e-mail address"),
    ("username", "username"),
    ("id_number", "ID number"),
)


def _refuse_repeats(roster: Roster) -> None:
    for field, label in _UNIQUE:
        first: dict[str, RosterEntry] = {}
        for entry in roster.entries:
            value = getattr(entry, field)
            if not value:
                continue
            key = value.casefold() if field == "email" else value
            if key in first:
                raise LensError(
                    f"{roster.path}: lines {first[key].line} and {entry.line} both list {label} {value!r} "
                    f"(a student once in the roster)"
                )
            first[key] = entry
