"""Writing files and folders atomically: a temporary sibling, then a rename.

A reader (or a crash) never sees a half-written JSON file, model cache or tuned lens: either the old one or the
complete new one. Every file lensref writes goes through here.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import LensError


def _check_folder(path: Path) -> None:
    if not path.parent.exists():
        raise LensError(f"cannot write {path}: folder {path.parent} does not exist")


@contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path next to ``path`` to write to; it replaces ``path`` when the block ends, and is deleted if
    the block raises. For writers that want a path (``savefig``, ``save_file``)."""
    path = Path(path)
    _check_folder(path)
    fd, name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file and a rename: never a half-written file."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """``data`` as indented JSON (non-ASCII kept as is), written atomically."""
    write_atomically(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


@contextmanager
def new_folder(folder: str | os.PathLike[str], replace: bool = False) -> Iterator[Path]:
    """A temporary sibling folder to fill; it is renamed to ``folder`` when the block ends, and removed if the block
    raises.

    If ``folder`` exists by then: with ``replace`` the old one is swapped out and deleted; without it the old one is
    kept and the new one dropped (another process finished the same work first).
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
    try:
        yield tmp
        if replace and folder.exists():
            old = Path(tempfile.mkdtemp(prefix=folder.name + ".old-", dir=folder.parent))
            os.rename(folder, old / folder.name)
            os.rename(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.rename(tmp, folder)
            except OSError:  # another process won the race: keep theirs
                pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
