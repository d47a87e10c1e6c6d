"""``lensref submit``: hand a notebook in, in exactly the layout ``lensref grade`` reads.

``lensref grade ASSIGNMENT`` reads ``submitted/<student>/<assignment>/<notebook>.ipynb``, with the notebook
names of ``solutions/<assignment>/``. :func:`submit` writes ``<student>/<assignment>/<notebook>.ipynb`` into
a zip (the default, ``submission-<student>.zip``, one per learner, which the instructor collects into
``submitted/`` with ``lensref collect``, never by unzipping it) or into a folder (e.g. ``submitted/`` itself).
The notebook is recognised by its nbgrader cells (:func:`identify`, which ``lensref collect`` uses too): the
ids of its exercise and test cells must be (mostly) those of one notebook in ``solutions/`` (or, where there is
no course folder, in the released notebooks an installed wheel carries: nbgrader's release keeps every graded
cell's id), so a renamed copy still lands under the right name, and a notebook that is not one of the course's
is refused with one line.
The file is copied byte for byte; zips and files are written via a temporary file + rename.
"""

from __future__ import annotations

import os
import re
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ..errors import LensError
from .cells import nbgrader_meta, read_notebook
from .release import COURSE_ROOT, PACKAGED

if TYPE_CHECKING:
    from nbformat import NotebookNode

_STUDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MATCH_SHARE = 0.5  # share of a course notebook's graded cell ids a submission must carry


@dataclass(frozen=True)
class CourseNotebook:
    """One of the course's notebooks: its assignment and its name in ``solutions/<assignment>/``."""

    assignment: str  # e.g. "01-logit-lens"
    notebook: str  # the file name's stem in solutions/<assignment>/, e.g. "logit_lens"

    @property
    def relpath(self) -> str:
        """``<assignment>/<notebook>.ipynb``: where the notebook goes under a student's folder."""
        return f"{self.assignment}/{self.notebook}.ipynb"


@dataclass(frozen=True)
class Submission:
    """One hand-in as written: the student, the notebook, the zip or folder and the member in it."""

    student: str
    course_notebook: CourseNotebook
    target: Path  # the zip or folder written
    member: str  # "<student>/<assignment>/<notebook>.ipynb" inside it
    replaced: bool  # an earlier hand-in of the same notebook was replaced
    is_zip: bool

    def summary(self) -> str:
        """The hand-in in one line: what was added (or replaced) where."""
        verb = "replaced" if self.replaced else "added"
        where = f"{self.target} (zip)" if self.is_zip else f"{self.target}/"
        return f"{verb} {self.member} in {where}"


def graded_ids(nb: NotebookNode) -> set[str]:
    """The grade ids of a notebook's exercise (solution) and test cells."""
    ids = set()
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if (meta.get("solution") or meta.get("grade")) and isinstance(meta.get("grade_id"), str):
            ids.add(meta["grade_id"])
    return ids


def course_folder(root: Path = COURSE_ROOT) -> Path:
    """The notebooks a hand-in is matched against: ``root/solutions/``; for lensref installed from a wheel (no
    course folder beside it), the released notebooks it carries."""
    folder = root / "solutions"
    if folder.is_dir():
        return folder
    if root == COURSE_ROOT and PACKAGED.is_dir():
        return PACKAGED
    raise LensError(
        f"{folder}: no such folder: run lensref submit from the course's checkout "
        f"(or give --course DIR, the folder holding solutions/)"
    )


def course_notebooks(root: Path = COURSE_ROOT) -> dict[CourseNotebook, set[str]]:
    """Every notebook of :func:`course_folder` (``<assignment>/<notebook>.ipynb``) with its graded cell ids."""
    folder = course_folder(root)
    out = {}
    for path in sorted(folder.glob("*/*.ipynb")):
        out[CourseNotebook(path.parent.name, path.stem)] = graded_ids(read_notebook(path))
    return out


def identify(nb: NotebookNode, where: str, root: Path = COURSE_ROOT) -> CourseNotebook:
    """Which course notebook ``nb`` is a copy of; a one-line :class:`LensError` if none."""
    ids = graded_ids(nb)
    if not ids:
        raise LensError(
            f"{where}: not one of the course's notebooks (it has no nbgrader exercise cells); "
            f"hand in your copy of exercises/<assignment>/<notebook>.ipynb"
        )
    best, share = None, 0.0
    for course_nb, course_ids in course_notebooks(root).items():
        s = len(ids & course_ids) / len(course_ids) if course_ids else 0.0
        if s > share:
            best, share = course_nb, s
    if best is None or share < MATCH_SHARE:
        raise LensError(
            f"{where}: not one of the course's notebooks (its nbgrader cells match none in "
            f"{course_folder(root)}); hand in your copy of exercises/<assignment>/<notebook>.ipynb"
        )
    return best


def check_student(student: str) -> str:
    """``student`` if it can be a student's folder name (1-64 letters, digits, ``.``, ``_``, ``-`` or ``@``), else
    an error."""
    if not _STUDENT.match(student or ""):
        raise LensError(
            f"--student {student!r}: use 1-64 letters, digits, '.', '_', '-' or '@', starting with "
            f"a letter or digit (it becomes a folder name)"
        )
    return student


def default_output(student: str) -> Path:
    """The zip a hand-in goes into by default: ``submission-<student>.zip``."""
    return Path(f"submission-{student}.zip")


def submit(notebook: str | Path, student: str, out: str | Path | None = None, root: Path = COURSE_ROOT) -> Submission:
    """Hand ``notebook`` in as ``student`` into ``out`` (a ``.zip`` file or a folder; default a zip)."""
    student = check_student(student)
    path = Path(notebook)
    nb = read_notebook(path)
    course_nb = identify(nb, str(path), root)
    data = path.read_bytes()
    member = f"{student}/{course_nb.relpath}"
    target = Path(out) if out is not None else default_output(student)
    if target.suffix.lower() == ".zip":
        replaced = _write_zip(target, member, data, student)
        return Submission(student, course_nb, target, member, replaced, True)
    replaced = _write_folder(target, member, data)
    return Submission(student, course_nb, target, member, replaced, False)


def _write_folder(folder: Path, member: str, data: bytes) -> bool:
    if folder.exists() and not folder.is_dir():
        raise LensError(f"--out {folder}: exists and is not a folder (name a folder, or a .zip file)")
    if not folder.parent.is_dir():
        raise LensError(f"--out {folder}: folder {folder.parent} does not exist")
    final = folder / member
    replaced = final.exists()
    final.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(final, lambda f: f.write(data))
    return replaced


def _write_zip(target: Path, member: str, data: bytes, student: str) -> bool:
    if target.is_dir():
        raise LensError(f"--out {target}: is a folder; give a .zip file name, or a folder name without .zip")
    if not target.parent.is_dir():
        raise LensError(f"--out {target}: folder {target.parent} does not exist")
    kept: list[tuple[zipfile.ZipInfo, bytes]] = []
    replaced = False
    if target.exists():
        try:
            with zipfile.ZipFile(target) as old:
                for info in old.infolist():
                    owner = info.filename.split("/", 1)[0]
                    if owner != student:
                        raise LensError(
                            f"{target}: already holds work of {owner!r}, not {student!r}: "
                            f"one zip per learner (give another --out)"
                        )
                    if info.filename == member:
                        replaced = True
                    elif not info.is_dir():
                        kept.append((info, old.read(info)))
        except zipfile.BadZipFile:
            raise LensError(f"{target}: exists and is not a zip file (move it away or give another --out)") from None

    def write(f: IO[bytes]) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for info, content in kept:
                z.writestr(info, content)
            z.writestr(zipfile.ZipInfo(member, date_time=_now()), data, compress_type=zipfile.ZIP_DEFLATED)

    _atomic_write(target, write)
    return replaced


def _now() -> tuple[int, int, int, int, int, int]:
    import time

    return time.localtime()[:6]


def _atomic_write(final: Path, write: Callable[[IO[bytes]], object]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=final.name + ".", suffix=".tmp", dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a hand-in is read by whoever grades it
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
