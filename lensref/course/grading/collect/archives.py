"""The inputs as members: each zip, folder or loose notebook an instructor names, listed without extracting anything.

Each argument is a ``.zip``, an ``.ipynb`` or a folder; a folder is walked (symlinks not followed): each ``.zip`` in
it is an archive of its own, every other file is a member of the folder, named by its path inside it. A zip is read
one at a time, only while its members are scanned. A member's kind comes from the zip's Unix mode bits (what ``unzip``
honours) or from ``lstat``: symlinks, hard links and special files are refused, and so are absolute paths, ``..``
components and names with control characters. Hidden files and folders, ``__MACOSX/``, ``Thumbs.db`` and
``desktop.ini`` are clutter, ignored. A path that does not exist or a zip that cannot be read is a one-line
:class:`~lensref.errors.LensError` before anything is written.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ....errors import LensError
from .text import exception_line

MAX_MEMBERS = 10_000  # entries of one archive
FILE, DIRECTORY, SYMLINK, HARDLINK, SPECIAL = "file", "directory", "symlink", "hard link", "special"
_OS_CLUTTER = {"__MACOSX", "Thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class Member:
    """One member of an input, as its listing describes it: its name, kind and sizes, and how to open it."""

    name: str  # '/'-separated path inside the archive, or relative to the folder
    kind: str  # FILE, DIRECTORY, SYMLINK, HARDLINK or SPECIAL
    declared_size: int  # what the zip header (or the file system) says
    compressed_size: int | None  # None: not compressed (a file in a folder)
    open: Callable[[], IO[bytes]]
    encrypted: bool = False


@dataclass(frozen=True)
class Archive:
    """An input listed: a zip's or a folder's members (a loose notebook is a folder of one)."""

    path: Path  # as the instructor named it (a zip found in a folder: the folder's path / its place in it)
    members: list[Member]
    is_zip: bool
    too_many: bool = False  # more than MAX_MEMBERS members: the archive is refused whole


@dataclass(frozen=True)
class ZipInput:
    """A zip to read: opened only while its members are scanned, one zip at a time."""

    path: Path
    shown: Path


Input = ZipInput | Archive


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


def _zip_member(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> Member:
    encrypted = bool(info.flag_bits & 0x1)
    return Member(info.filename, _zip_kind(info), info.file_size, info.compress_size, lambda: z.open(info), encrypted)


@contextmanager
def opened(zip_input: ZipInput) -> Iterator[Archive]:
    """The zip's members, readable while the block runs; a one-line error if it is not a readable zip."""
    try:
        z = zipfile.ZipFile(zip_input.path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise LensError(f"{zip_input.shown}: not a readable zip file ({exception_line(exc)})") from None
    with z:
        infos = z.infolist()
        if len(infos) > MAX_MEMBERS:
            yield Archive(zip_input.shown, [], True, too_many=True)
        else:
            yield Archive(zip_input.shown, [_zip_member(z, info) for info in infos], True)


def open_regular(path: Path) -> IO[bytes]:
    """``path`` opened for reading without following a symlink, and only if it is still a lone regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
        os.close(fd)
        raise OSError(f"{path} changed into something other than a regular file")
    return os.fdopen(fd, "rb")


def _file_member(path: Path, name: str) -> Member:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        kind = SYMLINK
    elif stat.S_ISDIR(info.st_mode):
        kind = DIRECTORY
    elif not stat.S_ISREG(info.st_mode):
        kind = SPECIAL
    else:
        kind = HARDLINK if info.st_nlink > 1 else FILE
    return Member(name, kind, info.st_size, None, lambda: open_regular(path))


def _walk(folder: Path, skip: Path) -> Iterator[tuple[str, Path]]:
    """(name relative to ``folder``, path) of everything in it, in name order; symlinked and hidden folders (and
    ``__MACOSX``) are listed, not entered; ``skip`` (the destination ``submitted/``) is left out."""
    for top, dirs, files in os.walk(folder):
        here = Path(top)
        dirs.sort()
        entered = []
        for d in dirs:
            if (here / d).is_symlink() or is_clutter(d):
                files.append(d)
            elif (here / d).resolve() != skip:
                entered.append(d)
        dirs[:] = entered
        for name in sorted(files):
            yield (here / name).relative_to(folder).as_posix(), here / name


def find_inputs(paths: list[Path], skip: Path) -> list[Input]:
    """Every archive the paths name: zips, folders (their zips apart) and single notebooks; a one-line error for a
    path that does not exist or a zip that cannot be read (each zip is opened once here to check it)."""
    out: list[Input] = []
    seen: set[Path] = set()
    for given in paths:
        if not given.exists():
            raise LensError(f"{given}: no such archive, notebook or folder")
        if given.resolve() in seen:
            continue
        seen.add(given.resolve())
        if given.is_dir():
            loose: list[Member] = []
            for name, path in _walk(given, skip):
                if name.lower().endswith(".zip") and not path.is_symlink() and path.is_file():
                    out.append(ZipInput(path, given / name))
                else:
                    loose.append(_file_member(path, name))
            out.append(Archive(given, loose, False))
        elif given.suffix.lower() == ".zip":
            out.append(ZipInput(given, given))
        elif given.suffix.lower() == ".ipynb":
            out.append(Archive(given.parent, [_file_member(given, given.name)], False))
        else:
            raise LensError(f"{given}: not a .zip, an .ipynb or a folder")
    for item in out:
        if isinstance(item, ZipInput):
            with opened(item):
                pass
    return out


# --- what a member's listing alone refuses ---------------------------------------------------------------------------


def path_parts(name: str) -> list[str]:
    r"""A member's name split at ``/`` and ``\`` (a zip made on Windows may use either)."""
    return name.replace("\\", "/").split("/")


def is_clutter(name: str) -> bool:
    """A hidden file or folder, or the operating system's own (``__MACOSX``, ``Thumbs.db``, ``desktop.ini``)."""
    return any(part.startswith(".") or part in _OS_CLUTTER for part in path_parts(name))


def kind_problem(member: Member) -> str | None:
    """Why a member of this kind is refused (a link or a special file), or None for a file or folder."""
    if member.kind == SYMLINK:
        return "is a symbolic link: not followed, nothing written"
    if member.kind == HARDLINK:
        return "is a hard link: nothing written"
    if member.kind == SPECIAL:
        return "is not a regular file (a device, pipe or socket): nothing written"
    return None


def path_problem(name: str) -> str | None:
    """Why a member's name is refused (control characters, an absolute path, ``..``, empty or ``.`` parts), or
    None."""
    if any(not c.isprintable() for c in name):
        return "has control characters in its name"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "is an absolute path"
    parts = path_parts(name.rstrip("/"))
    if ".." in parts:
        return "has a '..' component"
    if any(part in ("", ".") for part in parts):
        return "is not a plain relative path (an empty or '.' component)"
    return None
