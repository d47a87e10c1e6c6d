"""One submission's sandboxed run as data in, data out: the unit a local pool or a Dask worker executes.

A :class:`Job` is the files the sandbox needs (the notebook to run, the cases, ``job.json``: see :mod:`.layout`) as
bytes; a :class:`JobResult` is the files the run left (the executed notebooks, the cell records, the recorded
answers) as bytes, size-capped, plus how the run ended. Nothing else crosses: the worker runs learner code only
inside the sandbox, whose home is a size-capped tmpfs that never touches the worker's disk (:mod:`.sandbox`), and
the verdict is made on the instructor's machine from these bytes.

:func:`execute_warm` is what pools call: every worker thread keeps one sandbox started ahead of time (its kernel
up, the libraries imported and the model code loaded, see :mod:`.runner`), hands the next job to it and starts the
following one at once, so the ~4 s start-up overlaps the previous submission instead of adding to each. Every
submission still gets a sandbox and a kernel of its own, never used for anything else; :func:`execute` is the
plain cold run (the ``--baseline`` measure).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .limits import Limits

if TYPE_CHECKING:
    from .sandbox import SandboxRun, Started


@dataclass
class Job:
    """One submission's run as data: the files handed to the sandbox (:mod:`.layout`), its limits and time limit."""

    student: str
    files: dict[str, bytes]
    limits: Limits
    wall_s: float
    sandboxed: bool = True
    threads: int = 0  # torch threads in the sandbox; 0: this machine's cores / the runs it takes at once


@dataclass
class JobResult:
    """What a run left, as data: its result files (size-capped: ``truncated`` if some were left out), its time and how
    it ended."""

    student: str
    files: dict[str, bytes] = field(default_factory=dict)
    seconds: float = 0.0
    timed_out: bool = False
    oom_kills: int = 0
    log: str = ""
    worker: str = ""
    truncated: bool = False
    warm_s: float = 0.0  # how long its sandbox spent warming up before the job was handed over
    disk_full: bool = False  # the run filled its home: the disk cap (Limits.disk_mb) was hit


def execute(job: Job) -> JobResult:
    """Run one job cold: a fresh sandbox, the files handed in before the runner starts, its home freed after."""
    from . import sandbox

    env = _env(run_threads(job))
    return _result(job, sandbox.run(RUNNER, job.limits, job.wall_s, job.sandboxed, env, files=job.files))


def _result(job: Job, run: SandboxRun, warm_s: float = 0.0) -> JobResult:
    """What a finished run left, as the bytes that go back to the grader, and how it ended."""
    host = socket.gethostname()
    return JobResult(
        job.student,
        run.files,
        run.seconds,
        run.timed_out,
        run.oom_kills,
        run.log,
        host,
        run.truncated,
        warm_s,
        run.disk_full,
    )


RUNNER = [sys.executable, "-m", "lensref.course.grading.runner"]
WARM_IDLE_S = 900  # an unused warm sandbox exits by itself after this long


def run_threads(job: Job) -> int:
    """How many threads the job's kernel may use: never more, all runs together, than this machine has cores
    (torch's OpenMP threads slow to a crawl when oversubscribed)."""
    if job.threads > 0:
        return job.threads
    if os.environ.get("LENSREF_GRADE_THREADS", "").isdigit():
        return max(1, int(os.environ["LENSREF_GRADE_THREADS"]))
    slots = 1
    try:  # on a Dask worker: its threads share this machine's cores
        from distributed import get_worker

        slots = get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        pass
    return max(1, (os.cpu_count() or 1) // max(1, slots))


def _env(threads: int) -> dict[str, str]:
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


@dataclass(eq=False)
class WarmSandbox:
    """A sandbox started before its job: the runner warms its kernel and waits for ``job.json``."""

    started: Started
    key: tuple[Limits, bool, int]

    @classmethod
    def start(cls, limits: Limits, sandboxed: bool, threads: int) -> WarmSandbox:
        """A sandbox started now on idle CPU, its runner warming a kernel until a job is handed over."""
        from . import sandbox

        # the warm-up gets only idle CPU, so it never slows the run in progress
        argv = [*RUNNER, "--warm", str(WARM_IDLE_S)]
        started = sandbox.start(argv, limits, sandboxed, _env(threads), low_priority=True)
        return cls(started, (limits, sandboxed, threads))

    def run(self, job: Job) -> JobResult:
        """Hand ``job`` to this sandbox and wait for the run to end (its warm-up counted until the kernel was ready)."""
        started = self.started
        since = time.monotonic()
        warm_s = since - started.started  # busy warming until the warm mark appeared, idle after
        warmed_at = started.warmed_at()
        if warmed_at is not None:  # else still warming: the rest of the warm-up counts in the run's own time
            warm_s = max(0.0, warm_s - max(0.0, time.time() - warmed_at))
        started.set_low_priority(False)
        try:
            started.hand_over(job.files)
        except BaseException:
            started.kill()
            raise
        return _result(job, started.wait(job.wall_s, since=since), warm_s)

    def discard(self) -> None:
        """Kill this sandbox unused (it does not fit the next job's limits, or warm sandboxes are being released)."""
        self.started.kill()


_slot = threading.local()  # this thread's next sandbox, already warming
_idle: set[WarmSandbox] = set()  # every warm sandbox not handed a job yet, for release_warm()
_idle_lock = threading.Lock()


def _take(limits: Limits, sandboxed: bool, threads: int) -> WarmSandbox:
    box = getattr(_slot, "box", None)
    _slot.box = None
    with _idle_lock:
        _idle.discard(box)
    if box is not None and (box.key != (limits, sandboxed, threads) or not box.started.alive()):
        box.discard()
        box = None
    return box or WarmSandbox.start(limits, sandboxed, threads)


def execute_warm(job: Job) -> JobResult:
    """Run ``job`` in this thread's warm sandbox (or a new one) and start warming the next one at once."""
    threads = run_threads(job)
    box = _take(job.limits, job.sandboxed, threads)
    nxt = WarmSandbox.start(job.limits, job.sandboxed, threads)
    _slot.box = nxt
    with _idle_lock:
        _idle.add(nxt)
    return box.run(job)


def release_warm() -> None:
    """Stop every warm sandbox still waiting for a job (the pool is closing)."""
    with _idle_lock:
        boxes = list(_idle)
        _idle.clear()
    for box in boxes:
        box.discard()


def worker_problem() -> str | None:
    """What this machine lacks to run jobs (one line), or None: run on every Dask worker before dispatch."""
    try:
        import lensref.course.grading.runner  # noqa: F401
        from lensref.models import DEFAULT_MODEL, cache_dir, gguf_path

        gguf_path()
    except Exception as exc:  # the course or the model package is not installed here
        first = (str(exc).splitlines() or [""])[0][:120]
        return f"cannot load the course or the model ({type(exc).__name__}: {first})"
    if not (cache_dir() / DEFAULT_MODEL / "COMPLETE").exists():
        return f"no model cache at {cache_dir()} (run `lensref lens hello` once on that machine)"
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    return None
