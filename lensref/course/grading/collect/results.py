"""What a collection run tells the instructor: a line per notebook collected (or unchanged) and per refusal, and the
summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .lms import LmsIdentity
from .text import count, shown


@dataclass(frozen=True)
class Collected:
    """A notebook collected, or found unchanged: where it went and where it came from."""

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
        """Where the notebook went, under ``submitted/``."""
        return f"{self.student}/{self.assignment}/{self.notebook}.ipynb"

    def line(self) -> str:
        """The report's line for this notebook."""
        notes = [note for note in (self.identity and self.identity.describe(), self.replaced and "replaced") if note]
        extra = f" ({'; '.join(notes)})" if notes else ""
        verb = "unchanged" if self.unchanged else "collected"
        return f"{verb} {self.relpath} from {shown(str(self.archive))}: {shown(self.member)}{extra}"


@dataclass(frozen=True)
class Refused:
    """A member (or a whole archive) that was refused, and why in one line."""

    archive: Path
    member: str  # "" for the archive as a whole
    reason: str

    def line(self) -> str:
        """The report's line for this refusal."""
        member = shown(self.member) if self.member else "(every member)"
        return f"refused {shown(str(self.archive))}: {member}: {self.reason}"


@dataclass
class CollectReport:
    """What a collection run did: the notebooks collected and unchanged, the refusals, and the counts left out and
    ignored."""

    submitted: Path
    collected: list[Collected] = field(default_factory=list)
    unchanged: list[Collected] = field(default_factory=list)  # collected before, byte for byte: nothing written
    refused: list[Refused] = field(default_factory=list)
    left_out: int = 0  # notebooks of other assignments than --assignment
    ignored: int = 0  # hidden files, __MACOSX/ and the like
    manifest: Path | None = None

    @property
    def exit_status(self) -> int:
        """The command's exit status: 1 if anything was refused, else 0."""
        return 1 if self.refused else 0

    def lines(self) -> list[str]:
        """The report in lines: the notebooks collected or unchanged, the refusals, the summary."""
        done = [c.line() for c in self.collected + self.unchanged]
        return done + [r.line() for r in self.refused] + [self.summary()]

    def summary(self) -> str:
        """The run in one line: how many notebooks of how many students, unchanged, refused, left out, ignored."""
        students = len({c.student for c in self.collected})
        parts = [f"collected {count(len(self.collected), 'notebook')} of {count(students, 'student')}"]
        if self.unchanged:
            parts.append(f"{len(self.unchanged)} unchanged")
        parts.append(f"refused {len(self.refused)}")
        if self.left_out:
            parts.append(f"left out {count(self.left_out, 'notebook')} of other assignments")
        if self.ignored:
            parts.append(f"ignored {count(self.ignored, 'hidden or system file')}")
        text = ", ".join(parts)
        if self.manifest is not None:
            text += f"; manifest {self.manifest}"
        graded = sorted({c.assignment for c in self.collected + self.unchanged})
        if graded:
            text += "; next: " + ", ".join(f"lensref grade {a}" for a in graded)
        return text
