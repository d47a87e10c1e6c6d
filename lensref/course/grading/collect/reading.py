"""One member read into a scratch file, never past the limits: nothing is ever inflated whole.

A member is refused from its header if it declares more than 50 MB (the most the grader reads) or more than 100 times
its compressed size (past 1 MB), or more than the run has left of its 2 GB in all; otherwise it is copied a chunk at a
time, and the read stops as soon as the bytes actually read pass any of these limits or the size the header declared
(and a member that gives fewer bytes than declared is refused too).
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..submissions import MAX_NOTEBOOK_BYTES
from .archives import Member
from .text import exception_line

MAX_MEMBER_BYTES = MAX_NOTEBOOK_BYTES  # 50 MB: the grader refuses larger notebooks anyway
MAX_TOTAL_BYTES = 2 * 2**30  # notebook bytes read in one run, all archives together
MAX_RATIO = 100  # uncompressed / compressed size of one member ...
RATIO_FLOOR = 2**20  # ... once it is past 1 MB (small JSON files may compress better)
CHUNK = 2**16
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError)


def _size(n: int) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.1f} GB"
    if n >= 2**20:
        return f"{n / 2**20:.0f} MB"
    return f"{n} bytes"


def declared_problem(member: Member) -> str | None:
    """Why the sizes in ``member``'s header alone refuse it (too large, or a compression bomb), or None."""
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


class TooBig(Exception):
    """A bounded read stopped: the member gives more bytes than a limit allows."""


@dataclass(frozen=True)
class ReadLimits:
    """The limits one member is read under: the size its header declared, its compressed size, the run's total left."""

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


def copy_bounded(source: IO[bytes], target: IO[bytes], limits: ReadLimits) -> int:
    """Copy ``source`` to ``target`` a chunk at a time; :class:`TooBig` as soon as a limit is passed (so a bomb is
    never inflated past it), and if fewer bytes came than were declared."""
    n = 0
    while chunk := source.read(CHUNK):
        n += len(chunk)
        if problem := limits.problem(n):
            raise TooBig(problem)
        target.write(chunk)
    if n != limits.declared:
        raise TooBig(f"holds {_size(n)}, not the {_size(limits.declared)} its header declares")
    return n


@dataclass
class Reader:
    """Reads the members of one run into numbered scratch files in ``scratch``, counting the run's bytes."""

    scratch: Path
    bytes_read: int = 0
    reads: int = 0  # scratch files made

    def read(self, member: Member) -> Path | str:
        """The scratch file holding ``member``'s bytes, or why it was not read (whole)."""
        total_left = MAX_TOTAL_BYTES - self.bytes_read
        if member.declared_size > total_left:
            return f"takes this run past {_size(MAX_TOTAL_BYTES)} of notebooks in all"
        self.reads += 1
        scratch = self.scratch / f"{self.reads:06d}.ipynb"
        limits = ReadLimits(member.declared_size, member.compressed_size, total_left)
        try:
            with member.open() as source, open(scratch, "wb") as target:
                self.bytes_read += copy_bounded(source, target, limits)
        except TooBig as exc:
            return str(exc)
        except _READ_ERRORS as exc:
            return f"cannot be read ({exception_line(exc)})"
        return scratch
