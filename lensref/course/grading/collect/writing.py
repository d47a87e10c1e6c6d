"""Writing a notebook into ``submitted/<student>/<assignment>/``, never through a symlink.

Each notebook goes to a temporary file in its destination folder and is renamed over the final name. The folders are
opened one level at a time from ``submitted/`` with ``O_NOFOLLOW`` (``os.open`` with ``dir_fd``), so a symlink planted
at ``submitted/<student>`` or deeper is refused rather than followed, even if it appears between the check and the
write (:func:`lensref.files.replacing` resolves the whole path afresh, which follows such a symlink).
``submitted/`` itself may be a symlink: the instructor chose it.

A destination that is a symlink or not a folder is refused (nothing is written through it), and so is an existing
submission (any notebook in ``submitted/<student>/<assignment>/``) unless ``force`` — except that a notebook already
there byte for byte is "unchanged", not refused, so collecting a growing inbox again is quiet.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import stat
from contextlib import ExitStack
from pathlib import Path

from ....errors import LensError
from .placing import Candidate
from .reading import MAX_MEMBER_BYTES


class Unsafe(Exception):
    """The destination cannot be written safely (a symlink, not a folder, an existing submission)."""


class Unchanged(Exception):
    """The destination already holds these very bytes."""


def open_submitted(submitted: Path) -> int:
    """A descriptor of the submissions folder (made if missing, its parent must exist); a one-line error if it is
    not a folder."""
    if submitted.exists() and not submitted.is_dir():
        raise LensError(f"--submitted {submitted}: exists and is not a folder")
    if not submitted.exists():
        if not submitted.parent.is_dir():
            raise LensError(f"--submitted {submitted}: folder {submitted.parent} does not exist")
        submitted.mkdir()
    return os.open(submitted, os.O_RDONLY | os.O_DIRECTORY)


def open_folder(parent_fd: int, name: str, shown: str) -> int:
    """The folder ``name`` in ``parent_fd`` (made if missing), opened without following a symlink."""
    try:
        info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        os.mkdir(name, 0o755, dir_fd=parent_fd)
    else:
        if stat.S_ISLNK(info.st_mode):
            raise Unsafe(f"{shown} is a symlink: nothing written through it")
        if not stat.S_ISDIR(info.st_mode):
            raise Unsafe(f"{shown} exists and is not a folder")
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
    except OSError:  # it became a symlink (or something else) since the check
        raise Unsafe(f"{shown} is a symlink or not a folder: nothing written through it") from None


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


def write(submitted_fd: int, shown: Path, c: Candidate, force: bool) -> bool:
    """Write ``c`` into ``<submitted>/<student>/<assignment>/`` (``shown``: the submissions folder as given); whether
    an earlier submission was replaced. :class:`Unsafe` if it may not be written, :class:`Unchanged` if it is there
    already."""
    student, assignment, notebook = c.student, c.course_notebook.assignment, f"{c.course_notebook.notebook}.ipynb"
    folder = f"{shown / student / assignment}"
    with ExitStack() as stack:
        student_fd = open_folder(submitted_fd, student, f"{shown / student}")
        stack.callback(os.close, student_fd)
        folder_fd = open_folder(student_fd, assignment, folder)
        stack.callback(os.close, folder_fd)
        try:
            target = os.stat(notebook, dir_fd=folder_fd, follow_symlinks=False)
        except FileNotFoundError:
            target = None
        if target is not None and not stat.S_ISREG(target.st_mode):
            raise Unsafe(f"{folder}/{notebook} is a symlink or not a file: not replaced")
        if target is not None and _sha256_at(folder_fd, notebook) == c.sha256:
            raise Unchanged
        existing = sorted(n for n in os.listdir(folder_fd) if n.endswith(".ipynb") and not n.startswith("."))
        if existing and not force:
            raise Unsafe(f"{folder}/ already holds {', '.join(existing)}: not replaced (give --force to replace it)")
        _write_file(folder_fd, notebook, c.scratch)
    return bool(existing)
