"""How each submission of a grading run ended: the ``status`` column of the CSV and of the summary."""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    """How a submission's grading ended (its ``status`` column)."""

    GRADED = "graded"  # run, judged and recorded in the gradebook
    UNCHANGED = "unchanged"  # graded before and not changed since (``--force`` regrades it)
    MISSING = "missing"  # no notebook of the expected name (or several candidates)
    MALFORMED = "malformed"  # a file that is not a notebook: skipped, never run
    REFUSED = "refused"  # a symbolic or hard link under submitted/: never followed, never run
    FAILED = "failed"  # the run or its judge failed (a lost worker, a sandbox that could not start)

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def recorded(self) -> bool:
        """The gradebook holds a score for it."""
        return self in (Status.GRADED, Status.UNCHANGED)
