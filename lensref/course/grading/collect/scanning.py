"""Every member of every input to one outcome: ignored (clutter), left out (another assignment), refused (one line),
or a candidate read into a scratch file.

A member is refused from its listing first (its kind and path, :mod:`.archives`; not ``.ipynb``; its declared size,
:mod:`.reading`; encrypted), then from its place (:mod:`.placing`), then while it is read, and last from its bytes.
A zip inside an archive is not opened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .archives import (
    DIRECTORY,
    MAX_MEMBERS,
    Archive,
    Input,
    Member,
    is_clutter,
    kind_problem,
    opened,
    path_problem,
)
from .placing import Candidate, Context, LeftOut, placement, recognise
from .reading import Reader, declared_problem
from .results import CollectReport, Refused


def _extension_problem(name: str) -> str | None:
    lower = name.lower()
    if lower.endswith(".ipynb"):
        return None
    if lower.endswith(".zip"):
        return "is a zip inside an archive: not opened (collect that zip on its own)"
    return "is not a notebook (not .ipynb)"


@dataclass
class Scan:
    """One scan over the inputs: it refuses into the report, counts what it ignores or leaves out, and gathers the
    candidates."""

    ctx: Context
    reader: Reader
    report: CollectReport  # gets the refusals and the counts of ignored and left-out members
    candidates: list[Candidate] = field(default_factory=list)

    def refuse(self, archive: Path, member: str, reason: str) -> None:
        """Record one refusal for the report."""
        self.report.refused.append(Refused(archive, member, reason))

    def input(self, item: Input) -> None:
        """Scan one input (a zip is opened only while its members are scanned)."""
        if isinstance(item, Archive):
            return self.archive(item)
        with opened(item) as archive:
            self.archive(archive)

    def archive(self, archive: Archive) -> None:
        """Scan an archive's members (one with too many is refused whole)."""
        if archive.too_many:
            return self.refuse(archive.path, "", f"holds more than {MAX_MEMBERS} members: not read")
        for member in archive.members:
            self.member(archive, member)

    def member(self, archive: Archive, member: Member) -> None:
        """One member to its outcome: ignored, left out, refused with its reason, or read and kept as a candidate."""
        if member.kind == DIRECTORY:
            if is_clutter(member.name.rstrip("/")):
                self.report.ignored += 1
            return
        problem = kind_problem(member) or path_problem(member.name)
        if problem is None and is_clutter(member.name):
            self.report.ignored += 1
            return
        problem = problem or _extension_problem(member.name) or declared_problem(member)
        if problem is None and member.encrypted:
            problem = "is encrypted"
        if problem is not None:
            return self.refuse(archive.path, member.name, problem)
        try:
            where = placement(archive.path, member.name, self.ctx)
        except LeftOut:
            self.report.left_out += 1
            return
        if isinstance(where, str):
            return self.refuse(archive.path, member.name, where)
        scratch = self.reader.read(member)
        if isinstance(scratch, str):
            return self.refuse(archive.path, member.name, scratch)
        result = recognise(archive, member.name, where, scratch, self.ctx.root)
        if isinstance(result, str):
            return self.refuse(archive.path, member.name, result)
        self.candidates.append(result)
