"""Where a member goes: its student and assignment from its path, its notebook from its nbgrader cells.

- ``<student>/<assignment>/<notebook>.ipynb`` (the last three parts, ``<assignment>`` a folder of ``solutions/``): a
  zip written by ``lensref submit``, or such a layout in a folder. With ``--assignment``, notebooks of the other
  assignments are left out (counted in the summary, not refused). The student must be a safe folder name (as
  ``lensref submit --student`` requires), and not the manifest's.
- A Moodle or Canvas download (:mod:`.lms`), recognised by the names the LMS gives its files. It does not name the
  assignment: ``--assignment`` says which (without it, the run is a one-line error); the student folder is named once
  the run's LMS identities are all known (:func:`.lms.lms_folders`).

Every notebook, whatever its layout, must be recognised as a copy of a course notebook of the assignment its path (or
``--assignment``) names, by its nbgrader cells (:func:`lensref.course.submit.identify`, as ``lensref submit``
recognises a notebook); its name comes from there, so ``logit_lens-1.ipynb`` is collected as ``logit_lens.ipynb``.
It must first be valid notebook JSON (:func:`lensref.course.grading.submissions.notebook_problem`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ....errors import LensError
from ...submit import CourseNotebook, check_student, identify
from ..submissions import notebook_problem, read_submission
from .archives import Archive, path_parts
from .lms import LmsIdentity, canvas_identity, moodle_identity
from .manifest import MANIFEST
from .text import shown


@dataclass(frozen=True)
class Context:
    """What every member is placed against: the course root, its assignments, and ``--assignment`` if given."""

    root: Path
    known: list[str]  # the course's assignments
    assignment: str | None  # --assignment


@dataclass(frozen=True)
class Placement:
    """A member's place from its path: the layout it follows, its student (LMS downloads: named later), its
    assignment."""

    layout: str  # "submit", "moodle" or "canvas"
    student: str | None  # None for LMS downloads: named once the run's identities are all known
    assignment: str  # from the path (submit layout) or --assignment
    identity: LmsIdentity | None = None


class LeftOut(Exception):
    """A notebook of another assignment than --assignment: not collected, not refused."""


def placement(archive: Path, name: str, ctx: Context) -> Placement | str:
    """Where ``name`` goes, or why it cannot go anywhere; :class:`LeftOut` for another assignment's notebook."""
    parts = path_parts(name)
    identity = moodle_identity(parts) or (
        None if len(parts) >= 3 and parts[-2] in ctx.known else canvas_identity(parts[-1])
    )
    if identity is not None:
        if ctx.assignment is None:
            lms = "Moodle" if identity.lms == "moodle" else "Canvas"
            raise LensError(
                f"{archive}: {shown(name)} is from a {lms} download, which does not name the assignment: "
                f"give --assignment ({', '.join(ctx.known)})"
            )
        return Placement(identity.lms, None, ctx.assignment, identity)
    if len(parts) < 3:
        return (
            "is in no layout collect knows: <student>/<assignment>/<notebook>.ipynb (lensref submit), "
            "a Moodle or a Canvas download"
        )
    student, assignment = parts[-3], parts[-2]
    if assignment not in ctx.known:
        return f"is for assignment {assignment!r}, which is not one of the course's ({', '.join(ctx.known)})"
    if ctx.assignment is not None and assignment != ctx.assignment:
        raise LeftOut
    if problem := student_problem(student):
        return problem
    return Placement("submit", student, assignment)


def student_problem(student: str) -> str | None:
    """Why ``student`` cannot be a folder of ``submitted/``, or None."""
    try:
        check_student(student)
    except LensError:
        return (
            f"student {shown(student)!r} is not a safe folder name "
            f"(1-64 letters, digits, '.', '_', '-' or '@', starting with a letter or digit)"
        )
    if student == MANIFEST:
        return f"student {student!r} is the manifest's name"
    return None


@dataclass(frozen=True)
class Candidate:
    """A member read and recognised: what would be collected, unless it conflicts with another hand-in."""

    archive: Path
    member: str
    container: str  # one hand-in: the zip, or the folder holding the file
    placement: Placement
    course_notebook: CourseNotebook
    scratch: Path
    sha256: str
    from_zip: bool
    student: str = ""  # set once LMS identities are named

    @property
    def key(self) -> tuple[str, str]:
        """The student and assignment this candidate would be collected for: what hand-ins conflict on."""
        return self.student, self.course_notebook.assignment


def recognise(archive: Archive, member: str, placement: Placement, scratch: Path, root: Path) -> Candidate | str:
    """``member`` of ``archive``, read into ``scratch``, as a candidate; or why it is not a notebook of
    ``placement``'s assignment."""
    if problem := notebook_problem(scratch):
        return problem
    where = f"{archive.path}: {member}"
    try:
        course_nb = identify(read_submission(scratch), where, root)
    except LensError as exc:
        return str(exc).removeprefix(f"{where}: ").split("; hand in")[0]
    if course_nb.assignment != placement.assignment:
        return f"is a copy of {course_nb.relpath}, not of a notebook of {placement.assignment}"
    parent = path_parts(member)[:-1]
    container = str(archive.path) if archive.is_zip else "/".join([str(archive.path), *parent])
    digest = hashlib.sha256(scratch.read_bytes()).hexdigest()
    return Candidate(
        archive.path,
        member,
        container,
        placement,
        course_nb,
        scratch,
        digest,
        archive.is_zip,
        placement.student or "",
    )
