"""Which roster entry each graded student is.

A student folder matches a roster entry when (first rule that applies):

1. the roster has a ``student`` column and it names the folder;
2. ``submitted/collected.csv`` says the folder came from Canvas and its user id is the entry's ``ID``;
3. it came from Moodle and its full name is the entry's name (Moodle's download names learners, its grade export
   does too; the participant id of a download is not in the grade export);
4. the folder is the name as ``lensref collect`` would have named it: a slug of the name (``Jane Doe`` and
   ``Doe, Jane`` give ``jane-doe``) or Canvas's download name (``doejane``).

A student that matches two entries, or an entry that two students match, is a one-line error: the export would
give one student's grade to another. A student that matches none is *unmatched*: the caller lists each one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from ...errors import LensError
from ..grading.collect.lms import slug
from .collected import CollectedFrom
from .roster import Roster, RosterEntry


@dataclass(frozen=True)
class Matching:
    """The roster entry of each student folder matched, and the folders matched by none."""

    matched: dict[str, RosterEntry]  # student folder -> roster entry
    unmatched: tuple[str, ...]  # student folders in no roster entry


def _folded(name: str) -> str:
    return " ".join(name.split()).casefold()


def canvas_download_name(name: str) -> str:
    """Canvas's download names: the sortable name lowercased, keeping only letters and digits."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", ascii_name.lower())


def _matches(student: str, record: CollectedFrom | None, entry: RosterEntry) -> bool:
    if entry.student:
        return entry.student == student
    if record is not None and record.lms == "canvas" and entry.lms_id:
        return record.lms_id == entry.lms_id
    if record is not None and record.lms == "moodle" and record.lms_name:
        return any(_folded(n) == _folded(record.lms_name) for n in entry.names())
    return any(slug(n) == student for n in entry.names()) or canvas_download_name(entry.name) == student


def match_students(students: Iterable[str], roster: Roster, collected: dict[str, CollectedFrom]) -> Matching:
    """Each student folder's roster entry (the first rule that applies); two entries for one folder, or one entry
    for two folders, is an error."""
    matched: dict[str, RosterEntry] = {}
    unmatched = []
    taken: dict[int, str] = {}  # roster line -> student
    for student in students:
        found = [e for e in roster.entries if _matches(student, collected.get(student), e)]
        if len(found) > 1:
            lines = " and ".join(roster.describe(e) for e in found[:2])
            raise LensError(f"student {student!r} matches {lines}: add a 'student' column to tell them apart")
        if not found:
            unmatched.append(student)
            continue
        entry = found[0]
        if entry.line in taken:
            raise LensError(
                f"students {taken[entry.line]!r} and {student!r} both match {roster.describe(entry)} "
                f"(the same learner collected twice?)"
            )
        taken[entry.line] = student
        matched[student] = entry
    return Matching(matched, tuple(unmatched))
