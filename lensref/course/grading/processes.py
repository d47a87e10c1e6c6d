"""The processes the grader starts: each dies with the grader, and every run in progress is registered (with its
confinement) until it is stopped, so that :func:`kill_all` can end them all at once (Ctrl-C while grading)."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import threading
from collections.abc import Sequence

from .limits import Confinement

LIVE: dict[int, Confinement] = {}  # runs in progress in this process: pid -> its confinement
_LIVE_LOCK = threading.Lock()


def die_with_parent() -> None:
    """In the child before exec: SIGKILL when the grader (or the Dask worker) that started it dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # no C library to load, or no prctl in it (not Linux): nothing to set
        pass


def popen(
    cmd: list[str], box: Confinement, env: dict[str, str], cwd: str | None = None, pass_fds: Sequence[int] = ()
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in a session of its own, confined by ``box``, dying with the grader, its output (stdout and
    stderr together) to a pipe; it stays registered until :func:`stop`."""

    def preexec() -> None:
        die_with_parent()
        box.preexec()

    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=preexec,
        pass_fds=pass_fds,
    )
    with _LIVE_LOCK:
        LIVE[proc.pid] = box
    return proc


def stop(proc: subprocess.Popen[bytes], box: Confinement) -> None:
    """Kill the run ``proc`` (its whole tree, through ``box``), reap it and forget it."""
    box.kill(proc.pid)
    proc.wait()
    with _LIVE_LOCK:
        LIVE.pop(proc.pid, None)


def kill_all() -> None:
    """Kill every run this process has in progress (Ctrl-C while grading)."""
    with _LIVE_LOCK:
        live = list(LIVE.items())
    for pid, box in live:
        box.kill(pid)
