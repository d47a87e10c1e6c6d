"""``lensref collect``: learners' zips and LMS downloads into ``submitted/<student>/<assignment>/<notebook>.ipynb``,
trusting nothing that is in them.

``unzip`` restores the symlinks a zip stores: a zip whose notebook is a symlink to the instructor's solution would be
graded as the solution. Collection therefore never extracts: it reads each member it accepts, with a bounded read, into
a scratch file, checks it is one of the course's notebooks, and only then writes it into ``submitted/``.

**What it reads.** Each argument is a ``.zip``, an ``.ipynb`` or a folder; a folder is walked (symlinks not followed):
each ``.zip`` in it is an archive of its own, every other file is a member of the folder, named by its path inside it.
A member is placed by its path:

- ``<student>/<assignment>/<notebook>.ipynb`` (the last three parts, ``<assignment>`` a folder of ``solutions/``): a
  zip written by ``lensref submit``, or such a layout in a folder. One zip holds one learner's work (as ``lensref
  submit`` writes it); a zip naming several students is refused as a whole. With ``--assignment``, notebooks of the
  other assignments are left out (counted in the summary, not refused).
- Moodle's "Download all submissions": ``<Full Name>_<participant id>_assignsubmission_file_/<file>`` (the default
  since Moodle 3.1, a folder per participant) or ``<Full Name>_<participant id>_assignsubmission_file_<file>`` (flat).
  Moodle writes the name with ``_`` turned into spaces, so the last ``_<digits>_assignsubmission_file_`` ends it; with
  blind marking the name is "Participant". The participant id is Moodle's per-assignment mapping id, not a user id.
- Canvas's "Download Submissions": ``<name>[_LATE]_<user id>_<file id>_<file name>``, where ``<name>`` is the sortable
  name, lowercased, with everything but letters, digits and ``_`` removed ("Doe, Jane" is ``doejane``); ``LATE`` marks
  a late hand-in; a re-upload may add ``-1`` before the extension. With anonymous grading the name and id are
  ``anon_<anonymous id>``.

An LMS download does not name the assignment: ``--assignment`` says which, and the notebook's own name comes from its
nbgrader cells (:func:`lensref.course.submit.identify`, as ``lensref submit`` recognises a notebook), so
``logit_lens-1.ipynb`` is collected as ``logit_lens.ipynb``. Every notebook, whatever its layout, must be recognised as
a copy of a course notebook of the assignment its path (or ``--assignment``) names.

**Student folders for LMS downloads.** The folder is a slug of the LMS name: accents dropped, lowercased, every run of
other characters a ``-`` ("Zoë O'Brien" is ``zoe-o-brien``; Canvas's ``doejane`` stays ``doejane``), at most 48
characters. Names are kept (rather than ids) because a Moodle participant id changes from one assignment to the next,
so the same learner gets the same folder for every assignment. When two LMS identities (LMS and id) of one run give
the same slug, each gets ``<slug>-<id>`` instead; a name with no letter or digit left (e.g. in a non-Latin script)
becomes ``<lms>-<id>``; Canvas's anonymous ids become ``anon-<id>``. ``submitted/collected.csv`` keeps the LMS's id
and name of every collected folder, so grades can be matched to the LMS roster later.

**What it refuses**, one line each naming the archive and the member, going on with the rest: symlinks, hard links and
special files; absolute paths and ``..`` components; members declaring more than 50 MB (the most the grader reads),
or expanding more than 100 times their compressed size (past 1 MB), or whose bytes actually read pass either limit,
or the run's 2 GB in all (the read stops at the limit: nothing is ever inflated whole); files that are not notebooks
(not ``.ipynb``, not valid notebook JSON — :func:`~.submissions.notebook_problem` — or not one of the course's);
student names that are not safe folder names; two hand-ins (two archives, or two files) for one student and
assignment in one run (none of them is collected: collect the right one alone); a destination ``submitted/<student>``
or deeper that is a symlink or not a folder (nothing is written through it); an existing submission (any notebook in
``submitted/<student>/<assignment>/``) unless ``force`` — except that a notebook already there byte for byte is
"unchanged", not refused, so collecting a growing inbox again is quiet. Hidden files and folders, ``__MACOSX/``,
``Thumbs.db`` and ``desktop.ini`` are ignored (counted in the summary). A zip inside an archive is not opened. A bad input — no such archive, an unreadable zip, an unknown
``--assignment``, or an LMS download without ``--assignment`` — is a one-line :class:`~lensref.errors.LensError`
before anything is written.

**How it writes.** Each notebook goes to a temporary file in its destination folder and is renamed over the final
name. The folders are opened one level at a time from ``submitted/`` with ``O_NOFOLLOW`` (``os.open`` with
``dir_fd``), so a symlink planted at ``submitted/<student>`` or deeper is refused rather than followed, even if it
appears between the check and the write (:func:`lensref.files.replacing` resolves the whole path afresh, which
follows such a symlink). ``submitted/`` itself may be a symlink: the instructor chose it.

**The manifest** ``submitted/collected.csv`` gets one row per collected notebook, appended run after run (the last row
for a student, assignment and notebook describes the file in ``submitted/``): ``collected_at`` (UTC), ``student``,
``assignment``, ``notebook``, ``lms`` (``submit`` for the lensref submit layout, ``moodle`` or ``canvas``), ``lms_id``
(Moodle participant id, Canvas user id or ``anon_<id>``), ``lms_name`` (the name as the LMS wrote it), ``late`` (``yes`` for Canvas's
LATE), ``archive``, ``member`` and ``sha256`` of the notebook written. Cells that a spreadsheet would read as a formula
get a leading ``'``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import secrets
import shutil
import stat
import tempfile
import unicodedata
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from ...errors import LensError
from ...files import write_atomically
from ..submit import CourseNotebook, check_student, identify
from .grader import assignments, course_root
from .submissions import MAX_NOTEBOOK_BYTES, notebook_problem, read_submission

MAX_MEMBER_BYTES = MAX_NOTEBOOK_BYTES  # 50 MB: the grader refuses larger notebooks anyway
MAX_TOTAL_BYTES = 2 * 2**30  # notebook bytes read in one run, all archives together
MAX_RATIO = 100  # uncompressed / compressed size of one member ...
RATIO_FLOOR = 2**20  # ... once it is past 1 MB (small JSON files may compress better)
MAX_MEMBERS = 10_000  # entries of one archive
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
SLUG_LENGTH = 48  # leaves room for "-<id>" within the 64 characters of a student name
_CHUNK = 2**16
_OS_CLUTTER = {"__MACOSX", "Thumbs.db", "desktop.ini"}
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError)

# The first match wins in both: Moodle's and Canvas's prefix comes first, the learner's own file name after it.
_MOODLE = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assignsubmission_file_(?P<rest>.*)$")
_CANVAS = re.compile(r"^(?P<name>.+?)(?:_(?P<late>LATE))?_(?P<id>\d+)_(?P<file_id>\d+)_(?P<file>.+)$")
_CANVAS_ANONYMOUS = re.compile(r"^(?:(?P<late>LATE)_)?anon_(?P<id>[A-Za-z0-9]+)_(?P<file_id>\d+)_(?P<file>.+)$")


# --- the result ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LmsIdentity:
    """Who an LMS download says handed a file in."""

    lms: str  # "moodle" or "canvas"
    lms_id: str  # Moodle's participant id, Canvas's user id, or "anon_<id>"
    name: str  # as the LMS wrote it: Moodle's full name, Canvas's sanitised sortable name ("" when anonymous)
    late: bool = False  # Canvas's LATE marker

    def describe(self) -> str:
        who = f"{'Moodle participant' if self.lms == 'moodle' else 'Canvas user'} {self.lms_id}"
        return ", ".join(part for part in (who, _shown(self.name), "LATE" if self.late else "") if part)


@dataclass(frozen=True)
class Collected:
    student: str
    assignment: str
    notebook: str
    archive: Path  # the zip or folder the notebook came from
    member: str  # its path inside the archive or folder
    layout: str  # "submit" (a lensref submit zip or that layout), "moodle" or "canvas"
    identity: LmsIdentity | None  # for LMS downloads
    replaced: bool  # an earlier submission was replaced (--force)
    sha256: str
    unchanged: bool = False  # the same bytes were there already: nothing written

    @property
    def relpath(self) -> str:
        return f"{self.student}/{self.assignment}/{self.notebook}.ipynb"

    def line(self) -> str:
        notes = [note for note in (self.identity and self.identity.describe(), self.replaced and "replaced") if note]
        extra = f" ({'; '.join(notes)})" if notes else ""
        verb = "unchanged" if self.unchanged else "collected"
        return f"{verb} {self.relpath} from {_shown(str(self.archive))}: {_shown(self.member)}{extra}"


@dataclass(frozen=True)
class Refused:
    archive: Path
    member: str  # "" for the archive as a whole
    reason: str

    def line(self) -> str:
        member = _shown(self.member) if self.member else "(every member)"
        return f"refused {_shown(str(self.archive))}: {member}: {self.reason}"


@dataclass
class CollectReport:
    submitted: Path
    collected: list[Collected] = field(default_factory=list)
    unchanged: list[Collected] = field(default_factory=list)  # collected before, byte for byte: nothing written
    refused: list[Refused] = field(default_factory=list)
    left_out: int = 0  # notebooks of other assignments than --assignment
    ignored: int = 0  # hidden files, __MACOSX/ and the like
    manifest: Path | None = None

    @property
    def exit_status(self) -> int:
        return 1 if self.refused else 0

    def lines(self) -> list[str]:
        done = [c.line() for c in self.collected + self.unchanged]
        return done + [r.line() for r in self.refused] + [self.summary()]

    def summary(self) -> str:
        students = len({c.student for c in self.collected})
        parts = [f"collected {_count(len(self.collected), 'notebook')} of {_count(students, 'student')}"]
        if self.unchanged:
            parts.append(f"{len(self.unchanged)} unchanged")
        parts.append(f"refused {len(self.refused)}")
        if self.left_out:
            parts.append(f"left out {_count(self.left_out, 'notebook')} of other assignments")
        if self.ignored:
            parts.append(f"ignored {_count(self.ignored, 'hidden or system file')}")
        text = ", ".join(parts)
        if self.manifest is not None:
            text += f"; manifest {self.manifest}"
        graded = sorted({c.assignment for c in self.collected + self.unchanged})
        if graded:
            text += "; next: " + ", ".join(f"lensref grade {a}" for a in graded)
        return text


# --- reading archives and folders ------------------------------------------------------------------------------------


FILE, DIRECTORY, SYMLINK, HARDLINK, SPECIAL = "file", "directory", "symlink", "hard link", "special"


@dataclass(frozen=True)
class _Member:
    name: str  # '/'-separated path inside the archive, or relative to the folder
    kind: str  # FILE, DIRECTORY, SYMLINK, HARDLINK or SPECIAL
    declared_size: int  # what the zip header (or the file system) says
    compressed_size: int | None  # None: not compressed (a file in a folder)
    open: Callable[[], IO[bytes]]
    encrypted: bool = False


@dataclass(frozen=True)
class _Archive:
    path: Path  # as the instructor named it (a zip found in a folder: the folder's path / its place in it)
    members: list[_Member]
    is_zip: bool
    too_many: bool = False  # more than MAX_MEMBERS members: the archive is refused whole


@dataclass(frozen=True)
class _ZipInput:
    """A zip to read: opened only while its members are scanned, one zip at a time."""

    path: Path
    shown: Path


def _zip_kind(info: zipfile.ZipInfo) -> str:
    """The member's type from its Unix mode bits, whatever system the header claims made it (unzip honours them)."""
    if info.is_dir():
        return DIRECTORY
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind in (0, stat.S_IFREG):
        return FILE
    if kind == stat.S_IFDIR:
        return DIRECTORY
    return SYMLINK if kind == stat.S_IFLNK else SPECIAL


def _zip_member(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Member:
    encrypted = bool(info.flag_bits & 0x1)
    return _Member(info.filename, _zip_kind(info), info.file_size, info.compress_size, lambda: z.open(info), encrypted)


@contextmanager
def _opened(zip_input: _ZipInput) -> Iterator[_Archive]:
    """The zip's members, readable while the block runs; a one-line error if it is not a readable zip."""
    try:
        z = zipfile.ZipFile(zip_input.path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise LensError(f"{zip_input.shown}: not a readable zip file ({_exception(exc)})") from None
    with z:
        infos = z.infolist()
        if len(infos) > MAX_MEMBERS:
            yield _Archive(zip_input.shown, [], True, too_many=True)
        else:
            yield _Archive(zip_input.shown, [_zip_member(z, info) for info in infos], True)


def _open_regular(path: Path) -> IO[bytes]:
    """``path`` opened for reading without following a symlink, and only if it is still a lone regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
        os.close(fd)
        raise OSError(f"{path} changed into something other than a regular file")
    return os.fdopen(fd, "rb")


def _file_member(path: Path, name: str) -> _Member:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        kind = SYMLINK
    elif stat.S_ISDIR(info.st_mode):
        kind = DIRECTORY
    elif not stat.S_ISREG(info.st_mode):
        kind = SPECIAL
    else:
        kind = HARDLINK if info.st_nlink > 1 else FILE
    return _Member(name, kind, info.st_size, None, lambda: _open_regular(path))


def _walk(folder: Path, skip: Path) -> Iterator[tuple[str, Path]]:
    """(name relative to ``folder``, path) of everything in it, in name order; symlinked and hidden folders (and
    ``__MACOSX``) are listed, not entered; ``skip`` (the destination ``submitted/``) is left out."""
    for top, dirs, files in os.walk(folder):
        here = Path(top)
        dirs.sort()
        entered = []
        for d in dirs:
            if (here / d).is_symlink() or _is_clutter(d):
                files.append(d)
            elif (here / d).resolve() != skip:
                entered.append(d)
        dirs[:] = entered
        for name in sorted(files):
            yield (here / name).relative_to(folder).as_posix(), here / name


def _inputs(paths: list[Path], skip: Path) -> list[_ZipInput | _Archive]:
    """Every archive the paths name: zips, folders (their zips apart) and single notebooks; a one-line error for a
    path that does not exist or a zip that cannot be read (each zip is opened once here to check it)."""
    out: list[_ZipInput | _Archive] = []
    seen: set[Path] = set()
    for given in paths:
        if not given.exists():
            raise LensError(f"{given}: no such archive, notebook or folder")
        if given.resolve() in seen:
            continue
        seen.add(given.resolve())
        if given.is_dir():
            loose: list[_Member] = []
            for name, path in _walk(given, skip):
                if name.lower().endswith(".zip") and not path.is_symlink() and path.is_file():
                    out.append(_ZipInput(path, given / name))
                else:
                    loose.append(_file_member(path, name))
            out.append(_Archive(given, loose, False))
        elif given.suffix.lower() == ".zip":
            out.append(_ZipInput(given, given))
        elif given.suffix.lower() == ".ipynb":
            out.append(_Archive(given.parent, [_file_member(given, given.name)], False))
        else:
            raise LensError(f"{given}: not a .zip, an .ipynb or a folder")
    for item in out:
        if isinstance(item, _ZipInput):
            with _opened(item):
                pass
    return out


# --- checking one member ---------------------------------------------------------------------------------------------


def _parts(name: str) -> list[str]:
    return name.replace("\\", "/").split("/")


def _kind_problem(member: _Member) -> str | None:
    if member.kind == SYMLINK:
        return "is a symbolic link: not followed, nothing written"
    if member.kind == HARDLINK:
        return "is a hard link: nothing written"
    if member.kind == SPECIAL:
        return "is not a regular file (a device, pipe or socket): nothing written"
    return None


def _path_problem(name: str) -> str | None:
    if any(not c.isprintable() for c in name):
        return "has control characters in its name"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "is an absolute path"
    parts = _parts(name.rstrip("/"))
    if ".." in parts:
        return "has a '..' component"
    if any(part in ("", ".") for part in parts):
        return "is not a plain relative path (an empty or '.' component)"
    return None


def _is_clutter(name: str) -> bool:
    return any(part.startswith(".") or part in _OS_CLUTTER for part in _parts(name))


def _extension_problem(name: str) -> str | None:
    lower = name.lower()
    if lower.endswith(".ipynb"):
        return None
    if lower.endswith(".zip"):
        return "is a zip inside an archive: not opened (collect that zip on its own)"
    return "is not a notebook (not .ipynb)"


def _size(n: int) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.1f} GB"
    if n >= 2**20:
        return f"{n / 2**20:.0f} MB"
    return f"{n} bytes"


def _declared_problem(member: _Member) -> str | None:
    if member.declared_size > MAX_MEMBER_BYTES:
        return f"declares {_size(member.declared_size)}, more than the {_size(MAX_MEMBER_BYTES)} a notebook may have"
    if (
        member.compressed_size is not None
        and member.declared_size > RATIO_FLOOR
        and member.declared_size > MAX_RATIO * max(member.compressed_size, 1)
    ):
        ratio = member.declared_size // max(member.compressed_size, 1)
        return f"expands {ratio} times its compressed size (more than {MAX_RATIO}: a compression bomb)"
    return None


class _TooBig(Exception):
    """A bounded read stopped: the member gives more bytes than a limit allows."""


@dataclass(frozen=True)
class _ReadLimits:
    declared: int
    compressed: int | None
    total_left: int  # what the run's total still allows

    def problem(self, n: int) -> str | None:
        """Why ``n`` bytes read so far are too many, or None."""
        if n > MAX_MEMBER_BYTES:
            return f"expands past {_size(MAX_MEMBER_BYTES)} (read stopped there)"
        if self.compressed is not None and n > RATIO_FLOOR and n > MAX_RATIO * max(self.compressed, 1):
            return f"expands more than {MAX_RATIO} times its compressed size (read stopped there: a compression bomb)"
        if n > self.total_left:
            return f"takes this run past {_size(MAX_TOTAL_BYTES)} of notebooks in all (read stopped there)"
        if n > self.declared:
            return f"holds more than the {_size(self.declared)} its header declares (read stopped there)"
        return None


def _copy_bounded(source: IO[bytes], target: IO[bytes], limits: _ReadLimits) -> int:
    """Copy ``source`` to ``target`` a chunk at a time; :class:`_TooBig` as soon as a limit is passed (so a bomb is
    never inflated past it), and if fewer bytes came than were declared."""
    n = 0
    while chunk := source.read(_CHUNK):
        n += len(chunk)
        if problem := limits.problem(n):
            raise _TooBig(problem)
        target.write(chunk)
    if n != limits.declared:
        raise _TooBig(f"holds {_size(n)}, not the {_size(limits.declared)} its header declares")
    return n


# --- where a member goes ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placement:
    layout: str  # "submit", "moodle" or "canvas"
    student: str | None  # None for LMS downloads: named once the run's identities are all known
    assignment: str  # from the path (submit layout) or --assignment
    identity: LmsIdentity | None = None


class _LeftOut(Exception):
    """A notebook of another assignment than --assignment: not collected, not refused."""


def _moodle(parts: list[str]) -> LmsIdentity | None:
    for part in parts:
        if m := _MOODLE.match(part):
            return LmsIdentity("moodle", m["id"], m["name"])
    return None


def _canvas(basename: str) -> LmsIdentity | None:
    if m := _CANVAS_ANONYMOUS.match(basename):
        return LmsIdentity("canvas", f"anon_{m['id']}", "", bool(m["late"]))
    if m := _CANVAS.match(basename):
        return LmsIdentity("canvas", m["id"], m["name"], bool(m["late"]))
    return None


@dataclass(frozen=True)
class _Context:
    root: Path
    known: list[str]  # the course's assignments
    assignment: str | None  # --assignment


def _placement(archive: Path, name: str, ctx: _Context) -> _Placement | str:
    """Where ``name`` goes, or why it cannot go anywhere; :class:`_LeftOut` for another assignment's notebook."""
    parts = _parts(name)
    identity = _moodle(parts) or (None if len(parts) >= 3 and parts[-2] in ctx.known else _canvas(parts[-1]))
    if identity is not None:
        if ctx.assignment is None:
            lms = "Moodle" if identity.lms == "moodle" else "Canvas"
            raise LensError(
                f"{archive}: {_shown(name)} is from a {lms} download, which does not name the assignment: "
                f"give --assignment ({', '.join(ctx.known)})"
            )
        return _Placement(identity.lms, None, ctx.assignment, identity)
    if len(parts) < 3:
        return (
            "is in no layout collect knows: <student>/<assignment>/<notebook>.ipynb (lensref submit), "
            "a Moodle or a Canvas download"
        )
    student, assignment = parts[-3], parts[-2]
    if assignment not in ctx.known:
        return f"is for assignment {assignment!r}, which is not one of the course's ({', '.join(ctx.known)})"
    if ctx.assignment is not None and assignment != ctx.assignment:
        raise _LeftOut
    if problem := _student_problem(student):
        return problem
    return _Placement("submit", student, assignment)


def _student_problem(student: str) -> str | None:
    try:
        check_student(student)
    except LensError:
        return (
            f"student {_shown(student)!r} is not a safe folder name "
            f"(1-64 letters, digits, '.', '_', '-' or '@', starting with a letter or digit)"
        )
    if student == MANIFEST:
        return f"student {student!r} is the manifest's name"
    return None


# --- scanning: every member to a refusal or a candidate in a scratch file --------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    archive: Path
    member: str
    container: str  # one hand-in: the zip, or the folder holding the file
    placement: _Placement
    course_notebook: CourseNotebook
    scratch: Path
    sha256: str
    from_zip: bool
    student: str = ""  # set once LMS identities are named

    @property
    def key(self) -> tuple[str, str]:
        return self.student, self.course_notebook.assignment


@dataclass
class _Scan:
    ctx: _Context
    scratch: Path
    report: CollectReport
    candidates: list[_Candidate] = field(default_factory=list)
    bytes_read: int = 0
    reads: int = 0  # scratch files made

    def refuse(self, archive: Path, member: str, reason: str) -> None:
        self.report.refused.append(Refused(archive, member, reason))

    def input(self, item: _ZipInput | _Archive) -> None:
        if isinstance(item, _Archive):
            return self.archive(item)
        with _opened(item) as archive:
            self.archive(archive)

    def archive(self, archive: _Archive) -> None:
        if archive.too_many:
            return self.refuse(archive.path, "", f"holds more than {MAX_MEMBERS} members: not read")
        for member in archive.members:
            self.member(archive, member)

    def member(self, archive: _Archive, member: _Member) -> None:
        if member.kind == DIRECTORY:
            if _is_clutter(member.name.rstrip("/")):
                self.report.ignored += 1
            return
        problem = _kind_problem(member) or _path_problem(member.name)
        if problem is None and _is_clutter(member.name):
            self.report.ignored += 1
            return
        problem = problem or _extension_problem(member.name) or _declared_problem(member)
        if problem is None and member.encrypted:
            problem = "is encrypted"
        if problem is not None:
            return self.refuse(archive.path, member.name, problem)
        try:
            placement = _placement(archive.path, member.name, self.ctx)
        except _LeftOut:
            self.report.left_out += 1
            return
        if isinstance(placement, str):
            return self.refuse(archive.path, member.name, placement)
        result = self.read(archive, member, placement)
        if isinstance(result, str):
            return self.refuse(archive.path, member.name, result)
        self.candidates.append(result)

    def read(self, archive: _Archive, member: _Member, placement: _Placement) -> _Candidate | str:
        total_left = MAX_TOTAL_BYTES - self.bytes_read
        if member.declared_size > total_left:
            return f"takes this run past {_size(MAX_TOTAL_BYTES)} of notebooks in all"
        self.reads += 1
        scratch = self.scratch / f"{self.reads:06d}.ipynb"
        limits = _ReadLimits(member.declared_size, member.compressed_size, total_left)
        try:
            with member.open() as source, open(scratch, "wb") as target:
                self.bytes_read += _copy_bounded(source, target, limits)
        except _TooBig as exc:
            return str(exc)
        except _READ_ERRORS as exc:
            return f"cannot be read ({_exception(exc)})"
        return self.recognise(archive, member, placement, scratch)

    def recognise(self, archive: _Archive, member: _Member, placement: _Placement, scratch: Path) -> _Candidate | str:
        if problem := notebook_problem(scratch):
            return problem
        where = f"{archive.path}: {member.name}"
        try:
            course_nb = identify(read_submission(scratch), where, self.ctx.root)
        except LensError as exc:
            return str(exc).removeprefix(f"{where}: ").split("; hand in")[0]
        if course_nb.assignment != placement.assignment:
            return f"is a copy of {course_nb.relpath}, not of a notebook of {placement.assignment}"
        parent = _parts(member.name)[:-1]
        container = str(archive.path) if archive.is_zip else "/".join([str(archive.path), *parent])
        digest = hashlib.sha256(scratch.read_bytes()).hexdigest()
        return _Candidate(
            archive.path,
            member.name,
            container,
            placement,
            course_nb,
            scratch,
            digest,
            archive.is_zip,
            placement.student or "",
        )


# --- naming LMS students, and refusing hand-ins that cannot both be right --------------------------------------------


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


def _name_students(candidates: list[_Candidate]) -> list[_Candidate]:
    identities = {c.placement.identity for c in candidates if c.placement.identity is not None}
    folders = lms_folders(identities)
    named = []
    for c in candidates:
        identity = c.placement.identity
        named.append(c if identity is None else replace(c, student=folders[identity.lms, identity.lms_id]))
    return named


def _unsafe_folders(candidates: list[_Candidate]) -> dict[int, str]:
    """Candidates (by index) whose LMS identity gave no safe folder name (an id too long for 64 characters)."""
    out = {}
    for i, c in enumerate(candidates):
        if c.placement.identity is not None and (problem := _student_problem(c.student)):
            out[i] = problem
    return out


def _several_students(candidates: list[_Candidate]) -> dict[int, str]:
    """Candidates (by index) from ``lensref submit`` zips that name more than one student: one zip per learner."""
    students: dict[Path, set[str]] = defaultdict(set)
    for c in candidates:
        if c.from_zip and c.placement.layout == "submit":
            students[c.archive].add(c.student)
    out = {}
    for i, c in enumerate(candidates):
        if c.from_zip and c.placement.layout == "submit" and len(students[c.archive]) > 1:
            names = ", ".join(sorted(students[c.archive]))
            out[i] = f"this zip holds work of several students ({names}): one zip per learner, none collected"
    return out


def _handed_in_twice(candidates: list[_Candidate]) -> dict[int, str]:
    """Candidates (by index) of a student and assignment handed in by two archives (or two files) in this run."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, c in enumerate(candidates):
        groups[c.key].append(i)
    out = {}
    for (student, assignment), indices in groups.items():
        group = [candidates[i] for i in indices]
        containers = {c.container for c in group}
        notebooks = Counter(c.course_notebook.notebook for c in group)
        if len(containers) == 1 and max(notebooks.values()) == 1:
            continue
        for i in indices:
            others = [f"{_shown(str(o.archive))}: {_shown(o.member)}" for o in group if o is not candidates[i]]
            out[i] = (
                f"{student}/{assignment} is handed in {len(group)} times in this run (also {'; '.join(others)}): "
                f"none collected; collect the right one alone"
            )
    return out


# --- writing, never through a symlink --------------------------------------------------------------------------------


class _Unsafe(Exception):
    """The destination cannot be written safely (a symlink, not a folder, an existing submission)."""


def _open_folder(parent_fd: int, name: str, shown: str) -> int:
    """The folder ``name`` in ``parent_fd`` (made if missing), opened without following a symlink."""
    try:
        info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        os.mkdir(name, 0o755, dir_fd=parent_fd)
    else:
        if stat.S_ISLNK(info.st_mode):
            raise _Unsafe(f"{shown} is a symlink: nothing written through it")
        if not stat.S_ISDIR(info.st_mode):
            raise _Unsafe(f"{shown} exists and is not a folder")
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
    except OSError:  # it became a symlink (or something else) since the check
        raise _Unsafe(f"{shown} is a symlink or not a folder: nothing written through it") from None


def _write_file(folder_fd: int, name: str, source: Path) -> None:
    """``source`` copied to a temporary file in ``folder_fd``, renamed to ``name`` (a symlink there is replaced, never
    followed)."""
    tmp = f".{name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=folder_fd)
    try:
        with os.fdopen(fd, "wb") as target, open(source, "rb") as data:
            shutil.copyfileobj(data, target)
        os.replace(tmp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=folder_fd)
        except FileNotFoundError:
            pass  # already renamed
        raise


class _Unchanged(Exception):
    """The destination already holds these very bytes."""


def _sha256_at(folder_fd: int, name: str) -> str | None:
    """The SHA-256 of the regular file ``name`` in ``folder_fd`` (not followed if a link), or None if there is none."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder_fd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_MEMBER_BYTES:
            return None
        return hashlib.sha256(f.read()).hexdigest()


def _write(submitted_fd: int, shown: Path, c: _Candidate, force: bool) -> bool:
    """Write ``c`` into ``<submitted>/<student>/<assignment>/`` (``shown``: the submissions folder as given); whether
    an earlier submission was replaced."""
    student, assignment, notebook = c.student, c.course_notebook.assignment, f"{c.course_notebook.notebook}.ipynb"
    folder = f"{shown / student / assignment}"
    with ExitStack() as stack:
        student_fd = _open_folder(submitted_fd, student, f"{shown / student}")
        stack.callback(os.close, student_fd)
        folder_fd = _open_folder(student_fd, assignment, folder)
        stack.callback(os.close, folder_fd)
        try:
            target = os.stat(notebook, dir_fd=folder_fd, follow_symlinks=False)
        except FileNotFoundError:
            target = None
        if target is not None and not stat.S_ISREG(target.st_mode):
            raise _Unsafe(f"{folder}/{notebook} is a symlink or not a file: not replaced")
        if target is not None and _sha256_at(folder_fd, notebook) == c.sha256:
            raise _Unchanged
        existing = sorted(n for n in os.listdir(folder_fd) if n.endswith(".ipynb") and not n.startswith("."))
        if existing and not force:
            raise _Unsafe(f"{folder}/ already holds {', '.join(existing)}: not replaced (give --force to replace it)")
        _write_file(folder_fd, notebook, c.scratch)
    return bool(existing)


def _open_submitted(submitted: Path) -> int:
    if submitted.exists() and not submitted.is_dir():
        raise LensError(f"--submitted {submitted}: exists and is not a folder")
    if not submitted.exists():
        if not submitted.parent.is_dir():
            raise LensError(f"--submitted {submitted}: folder {submitted.parent} does not exist")
        submitted.mkdir()
    return os.open(submitted, os.O_RDONLY | os.O_DIRECTORY)


# --- the manifest ----------------------------------------------------------------------------------------------------


def _cell(value: str) -> str:
    """A CSV cell a spreadsheet will not read as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _manifest_row(c: Collected, when: str) -> dict[str, str]:
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
    return {k: _cell(v) for k, v in row.items()}


def _write_manifest(path: Path, collected: list[Collected]) -> None:
    """Append one row per collected notebook to ``path`` (rewritten atomically; a symlink there is not read)."""
    rows: list[dict[str, str]] = []
    if path.is_file() and not path.is_symlink():
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows += [_manifest_row(c, when) for c in collected]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=MANIFEST_FIELDS, extrasaction="ignore", restval="")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, out.getvalue())


# --- the run ---------------------------------------------------------------------------------------------------------


def collect(
    inputs: list[str | Path],
    assignment: str | None = None,
    submitted: str | Path | None = None,
    force: bool = False,
    root: Path | None = None,
) -> CollectReport:
    """Collect every notebook of ``inputs`` (zips, notebooks, folders) into ``submitted`` (default: ``submitted/`` of
    the course root); see the module docstring. Refusals are in the report; bad input is a :class:`LensError`."""
    root = root or course_root()
    known = assignments(root)
    if assignment is not None and assignment not in known:
        raise LensError(f"--assignment {assignment!r}: not one of the course's assignments ({', '.join(known)})")
    if not inputs:
        raise LensError("name at least one zip, notebook or folder to collect")
    submitted = Path(submitted) if submitted is not None else root / "submitted"
    report = CollectReport(submitted)
    items = _inputs([Path(p) for p in inputs], submitted.resolve())
    with tempfile.TemporaryDirectory(prefix="lensref-collect-") as scratch:
        scan = _Scan(_Context(root, known, assignment), Path(scratch), report)
        for item in items:
            scan.input(item)
        if not scan.candidates and not report.refused:
            raise LensError(_nothing_found(inputs, assignment, report))
        accepted = _refuse_conflicts(_name_students(scan.candidates), report)
        if accepted:
            _write_all(accepted, submitted, force, report)
    return report


def _nothing_found(inputs: list[str | Path], assignment: str | None, report: CollectReport) -> str:
    where = ", ".join(str(p) for p in inputs)
    if report.left_out:
        return (
            f"found no notebook of {assignment} in {where} ({_count(report.left_out, 'notebook')} of other assignments)"
        )
    return f"found no notebook to collect in {where}"


def _refuse_conflicts(candidates: list[_Candidate], report: CollectReport) -> list[_Candidate]:
    problems = {**_handed_in_twice(candidates), **_several_students(candidates), **_unsafe_folders(candidates)}
    for i, problem in sorted(problems.items()):
        report.refused.append(Refused(candidates[i].archive, candidates[i].member, problem))
    return [c for i, c in enumerate(candidates) if i not in problems]


def _write_all(accepted: list[_Candidate], submitted: Path, force: bool, report: CollectReport) -> None:
    submitted_fd = _open_submitted(submitted)
    try:
        for c in sorted(accepted, key=lambda c: (c.student, c.course_notebook.relpath)):
            try:
                replaced = _write(submitted_fd, submitted, c, force)
            except _Unchanged:
                report.unchanged.append(_collected(c, replaced=False, unchanged=True))
                continue
            except _Unsafe as exc:
                report.refused.append(Refused(c.archive, c.member, str(exc)))
                continue
            except OSError as exc:
                report.refused.append(Refused(c.archive, c.member, f"could not be written ({_exception(exc)})"))
                continue
            report.collected.append(_collected(c, replaced))
    finally:
        os.close(submitted_fd)
    if report.collected:
        report.manifest = submitted / MANIFEST
        _write_manifest(report.manifest, report.collected)


def _collected(c: _Candidate, replaced: bool, unchanged: bool = False) -> Collected:
    nb = c.course_notebook
    identity = c.placement.identity
    return Collected(
        c.student,
        nb.assignment,
        nb.notebook,
        c.archive,
        c.member,
        c.placement.layout,
        identity,
        replaced,
        c.sha256,
        unchanged,
    )


# --- small helpers ---------------------------------------------------------------------------------------------------


def _shown(text: str) -> str:
    """``text`` on one line: control characters (a newline in a zip member's name) shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _exception(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
