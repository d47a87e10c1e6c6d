"""How collect's messages show names, errors and counts: one line each, whatever a zip's member names hold."""

from __future__ import annotations


def shown(text: str) -> str:
    """``text`` on one line: control characters (a newline in a zip member's name) shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def exception_line(exc: BaseException) -> str:
    """The exception's type and the first line of its message (at most 160 characters)."""
    message = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def count(n: int, noun: str) -> str:
    """``1 notebook``, ``2 notebooks``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
