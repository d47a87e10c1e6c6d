"""One learner's run inside a bubblewrap sandbox (Debian's ``bwrap``): what it sees, what it may use, when it dies.

Inside: a home and working folder that is the sandbox's own tmpfs, capped at ``Limits.disk_mb`` (the learner's
notebook, the cases; ``/tmp`` is a link into it, so it counts against the same cap), with ``executed/`` and
``outputs/`` each a small tmpfs of its own (:data:`.home.RESULT_ROOM_MB`), so a learner who fills the home still
has their answers recorded; the system (``/usr`` and the few files of ``/etc`` programs need to start), the Python
installation, the course's virtual environment, the ``lensref`` package and the model cache, all read-only; a
private ``/proc`` and ``/dev``; no network but its own loopback; new user, PID, IPC and UTS namespaces, no
capabilities. Nothing else of the machine is mounted: not the course folder (``solutions/``, the gradebook, other
learners' work), not the grader's home, not the grader's disk. Memory and processes are capped by :mod:`.limits`;
at the wall limit, or when the grader stops, the whole process tree is killed.

Nothing a run writes lands on the grader's disk. The grader reaches the home through a directory file descriptor
(``/proc/<pid>/root/home/learner``, opened once the sandbox is up, and one for each result folder): files go in
through it (``job.json`` last and atomically), and once every process of the run is dead the results come back
through the result folders' descriptors (regular files only, never following a link, size-capped); the held
descriptors keep the tmpfs readable after the sandbox is gone, and closing them frees its memory. The run's output
goes to a pipe of which the grader keeps the last :data:`.output_tail.LOG_TAIL_CHARS` characters. With
``--no-sandbox`` the home is a host scratch folder (no disk cap), reached the same way.

This module is the entry the rest of grading uses (:func:`start`, :func:`run`, :func:`describe`,
:func:`check_bwrap`, :func:`kill_all`); the parts are :mod:`.bwrap` (the command line), :mod:`.launch` (starting a
run), :mod:`.home` (its files in and out), :mod:`.started` (ending it), :mod:`.processes` and :mod:`.output_tail`.
"""

from __future__ import annotations

import shutil
import sys

from ...errors import LensError
from .bwrap import sandbox_env
from .home import RESULT_ROOM_MB
from .launch import start_on_host, start_sandboxed
from .limits import Confinement, Limits, confinement
from .output_tail import last_line
from .processes import kill_all
from .started import SandboxRun, Started

__all__ = ["SandboxRun", "Started", "check_bwrap", "describe", "kill_all", "run", "start"]


def start(
    argv: list[str],
    limits: Limits,
    sandboxed: bool = True,
    env: dict[str, str] | None = None,
    low_priority: bool = False,
    files: dict[str, bytes] | None = None,
) -> Started:
    """Start ``argv`` in a new sandbox (or, unsandboxed, in a host scratch folder) with ``files`` already in its
    home (``job.json`` written last); do not wait. More files can follow with :meth:`Started.hand_over`.

    ``low_priority`` starts it on idle CPU only (a warm-up), where a cpu control group can be made."""
    box: Confinement = confinement(limits)
    box.set_low_priority(low_priority)
    try:
        if sandboxed:
            return start_sandboxed(argv, limits, sandbox_env(env), box, files or {})
        return start_on_host(argv, sandbox_env(env), box, files or {})
    except BaseException:
        box.close()
        raise


def run(
    argv: list[str],
    limits: Limits,
    wall_s: float,
    sandboxed: bool = True,
    env: dict[str, str] | None = None,
    files: dict[str, bytes] | None = None,
) -> SandboxRun:
    """Run ``argv`` with ``files`` in its home, in the sandbox (or, unsandboxed, in a host scratch folder), within
    ``wall_s``; the result carries what it left under ``executed/`` and ``outputs/``."""
    return start(argv, limits, sandboxed, env, files=files).wait(wall_s)


def describe(limits: Limits, sandboxed: bool = True) -> str:
    """How runs are confined on this machine, in words (for the grading summary)."""
    box = confinement(limits)
    try:
        return box.describe(_disk_words(limits, sandboxed))
    finally:
        box.close()


def _disk_words(limits: Limits, sandboxed: bool) -> str:
    if not sandboxed:
        return "no disk cap per run (--no-sandbox: a host folder)"
    return f"{limits.disk_mb} MB disk per run (+ {sum(RESULT_ROOM_MB.values())} MB for its results)"


def check_bwrap() -> None:
    """Raise one line saying why the sandbox cannot start on this machine, or return."""
    if shutil.which("bwrap") is None:
        raise LensError(
            "cannot sandbox submissions: bubblewrap (bwrap) is not installed "
            "(apt-get install bubblewrap), or grade with --no-sandbox at your own risk"
        )
    try:
        checked = run([sys.executable, "-c", "print('ok')"], Limits(disk_mb=64), 60)
        why = None if checked.returncode == 0 and checked.log.strip() == "ok" else last_line(checked.log)
    except (OSError, LensError) as exc:  # bwrap could not start, or its home could not be reached
        why = str(exc)
    if why is not None:
        raise LensError(
            f"cannot sandbox submissions: bwrap failed ({why}); user namespaces may be disabled "
            "here (sysctl kernel.unprivileged_userns_clone), or grade with --no-sandbox at your own risk"
        )
