"""A run's output as the grader keeps it: the last :data:`LOG_TAIL_CHARS` characters of its pipe, never on disk."""

from __future__ import annotations

import os
import threading
from typing import IO

LOG_TAIL_CHARS = 20000  # what the grader keeps of a run's output (the pipe's last characters)


class LogTail:
    """A run's output (stdout and stderr), read from its pipe by a thread that keeps only the last
    :data:`LOG_TAIL_CHARS` characters: nothing of it is written to the grader's disk."""

    def __init__(self, pipe: IO[bytes]):
        self._tail = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, args=(pipe,), name="lensref-sandbox-log", daemon=True)
        self._thread.start()

    def _drain(self, pipe: IO[bytes]) -> None:
        keep = 4 * LOG_TAIL_CHARS  # bytes: a UTF-8 character is 4 at most
        with pipe:
            while chunk := os.read(pipe.fileno(), 1 << 16):
                with self._lock:
                    self._tail += chunk
                    if len(self._tail) > 2 * keep:
                        del self._tail[:-keep]

    def text(self, timeout: float) -> str:
        """The tail, once the pipe is closed (every writer dead) or after ``timeout`` seconds."""
        self._thread.join(timeout)
        with self._lock:
            data = bytes(self._tail[-4 * LOG_TAIL_CHARS :])
        return data.decode("utf-8", "replace")[-LOG_TAIL_CHARS:]


def last_line(text: str) -> str:
    """The last line of a run's output, for a one-line error ("no output" when there was none)."""
    return (text.strip().splitlines() or ["no output"])[-1]
