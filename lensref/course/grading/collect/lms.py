"""Who handed a file in, read from the name Moodle's or Canvas's bulk download gives it, and the student folder each
such learner is collected into.

- Moodle's "Download all submissions": ``<Full Name>_<participant id>_assignsubmission_file_/<file>`` (the default
  since Moodle 3.1, a folder per participant) or ``<Full Name>_<participant id>_assignsubmission_file_<file>`` (flat).
  Moodle writes the name with ``_`` turned into spaces, so the last ``_<digits>_assignsubmission_file_`` ends it; with
  blind marking the name is "Participant". The participant id is Moodle's per-assignment mapping id, not a user id.
- Canvas's "Download Submissions": ``<name>[_LATE]_<user id>_<file id>_<file name>``, where ``<name>`` is the sortable
  name, lowercased, with everything but letters, digits and ``_`` removed ("Doe, Jane" is ``doejane``); ``LATE`` marks
  a late hand-in; a re-upload may add ``-1`` before the extension. With anonymous grading the name and id are
  ``anon_<anonymous id>``.

**Student folders.** The folder is a slug of the LMS name: accents dropped, lowercased, every run of other characters
a ``-`` ("Zoë O'Brien" is ``zoe-o-brien``; Canvas's ``doejane`` stays ``doejane``), at most 48 characters. Names are
kept (rather than ids) because a Moodle participant id changes from one assignment to the next, so the same learner
gets the same folder for every assignment. When two LMS identities (LMS and id) of one run give the same slug, each
gets ``<slug>-<id>`` instead; a name with no letter or digit left (e.g. in a non-Latin script) becomes
``<lms>-<id>``; Canvas's anonymous ids become ``anon-<id>``. The manifest keeps the LMS's id and name of every
collected folder, so grades can be matched to the LMS roster later.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from .text import shown

SLUG_LENGTH = 48  # leaves room for "-<id>" within the 64 characters of a student name

# The first match wins in both: Moodle's and Canvas's prefix comes first, the learner's own file name after it.
_MOODLE = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assignsubmission_file_(?P<rest>.*)$")
_CANVAS = re.compile(r"^(?P<name>.+?)(?:_(?P<late>LATE))?_(?P<id>\d+)_(?P<file_id>\d+)_(?P<file>.+)$")
_CANVAS_ANONYMOUS = re.compile(r"^(?:(?P<late>LATE)_)?anon_(?P<id>[A-Za-z0-9]+)_(?P<file_id>\d+)_(?P<file>.+)$")


@dataclass(frozen=True)
class LmsIdentity:
    """Who an LMS download says handed a file in."""

    lms: str  # "moodle" or "canvas"
    lms_id: str  # Moodle's participant id, Canvas's user id, or "anon_<id>"
    name: str  # as the LMS wrote it: Moodle's full name, Canvas's sanitised sortable name ("" when anonymous)
    late: bool = False  # Canvas's LATE marker

    def describe(self) -> str:
        """The identity in words, for the collection report: the LMS's id, the name it gave, LATE if it said so."""
        who = f"{'Moodle participant' if self.lms == 'moodle' else 'Canvas user'} {self.lms_id}"
        return ", ".join(part for part in (who, shown(self.name), "LATE" if self.late else "") if part)


def moodle_identity(parts: list[str]) -> LmsIdentity | None:
    """The participant of the first of ``parts`` (a member's path, split) that Moodle named, or None."""
    for part in parts:
        if m := _MOODLE.match(part):
            return LmsIdentity("moodle", m["id"], m["name"])
    return None


def canvas_identity(basename: str) -> LmsIdentity | None:
    """The user (or anonymous id) Canvas named a file ``basename`` for, or None."""
    if m := _CANVAS_ANONYMOUS.match(basename):
        return LmsIdentity("canvas", f"anon_{m['id']}", "", bool(m["late"]))
    if m := _CANVAS.match(basename):
        return LmsIdentity("canvas", m["id"], m["name"], bool(m["late"]))
    return None


def slug(name: str) -> str:
    """``name`` as a folder name: accents dropped, lowercased, every run of other characters one ``-``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:SLUG_LENGTH].strip("-")


def lms_folders(identities: set[LmsIdentity]) -> dict[tuple[str, str], str]:
    """(lms, id) -> student folder: the slug of the name; ``<slug>-<id>`` where two identities share a slug;
    ``<lms>-<id>`` where nothing is left of the name; ``anon-<id>`` for Canvas's anonymous ids."""
    slugs = {(i.lms, i.lms_id): slug(i.name) for i in identities}
    shared = Counter(slugs.values())
    out = {}
    for (lms, lms_id), s in slugs.items():
        if lms_id.startswith("anon_"):
            out[lms, lms_id] = lms_id.replace("_", "-")
        elif not s:
            out[lms, lms_id] = f"{lms}-{lms_id}"
        else:
            out[lms, lms_id] = s if shared[s] == 1 else f"{s}-{lms_id}"
    return out
