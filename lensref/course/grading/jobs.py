"""One submission's sandboxed run as data in, data out: the unit a local pool or a Dask worker executes.

A :class:`Job` is the files the sandbox needs (the notebook to run, the cases, ``job.json``) as bytes; a
:class:`JobResult` is the files the run left (the executed notebooks, the cell records, the recorded answers) as
bytes, size-capped, plus how the run ended. Nothing else crosses: the worker runs learner code only inside the
sandbox, and the verdict is made on the instructor's machine from these bytes.

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
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .limits import Limits

if TYPE_CHECKING:
    from .sandbox import Started

RESULT_FOLDERS = ("executed", "outputs")
MAX_RESULT_BYTES = 1536 * 2**20


@dataclass
class Job:
    student: str
    files: dict[str, bytes]
    limits: Limits
    wall_s: float
    sandboxed: bool = True
    threads: int = 0  # torch threads in the sandbox; 0: this machine's cores / the runs it takes at once


@dataclass
class JobResult:
    student: str
    files: dict[str, bytes] = field(default_factory=dict)
    seconds: float = 0.0
    timed_out: bool = False
    oom_kills: int = 0
    log: str = ""
    worker: str = ""
    truncated: bool = False
    warm_s: float = 0.0  # how long its sandbox spent warming up before the job was handed over


def _safe_relative(name: str) -> Path:
    path = Path(name)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"unsafe path in a job: {name}")
    return path


def materialize(files: dict[str, bytes], folder: Path) -> None:
    for name, data in files.items():
        target = folder / _safe_relative(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def collect(folder: Path) -> tuple[dict[str, bytes], bool]:
    """The result files a run left (regular files only, no links), up to :data:`MAX_RESULT_BYTES` in all."""
    files, total, truncated = {}, 0, False
    for top in RESULT_FOLDERS:
        root = folder / top
        if not root.is_dir() or root.is_symlink():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue
            size = path.stat().st_size
            if total + size > MAX_RESULT_BYTES:
                truncated = True
                continue
            files[str(path.relative_to(folder))] = path.read_bytes()
            total += size
    return files, truncated


def execute(job: Job) -> JobResult:
    """Run one job in a fresh scratch folder in the sandbox; always removes the folder."""
    from . import sandbox

    scratch = Path(tempfile.mkdtemp(prefix="lensref-grade-"))
    try:
        materialize(job.files, scratch)
        os.chmod(scratch, 0o777)
        run = sandbox.run(
            scratch,
            RUNNER,
            job.limits,
            job.wall_s,
            sandboxed=job.sandboxed,
            env=_env(run_threads(job)),
        )
        return _result(job, scratch, run)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _result(job: Job, scratch: Path, run, warm_s: float = 0.0) -> JobResult:
    """What a finished run (a sandbox.SandboxRun) left in ``scratch``, as the bytes that go back to the grader."""
    files, truncated = collect(scratch)
    host = socket.gethostname()
    return JobResult(job.student, files, run.seconds, run.timed_out, run.oom_kills, run.log, host, truncated, warm_s)


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


def hand_over(files: dict[str, bytes], folder: Path) -> None:
    """Write a job's files into a (running) sandbox's scratch folder, ``job.json`` last and atomically."""
    materialize({k: v for k, v in files.items() if k != "job.json"}, folder)
    tmp = folder / ".job.json.part"
    tmp.write_bytes(files["job.json"])
    os.replace(tmp, folder / "job.json")


@dataclass(eq=False)
class WarmSandbox:
    """A sandbox started before its job: the runner warms its kernel and waits for ``job.json``."""

    started: Started
    key: tuple

    @classmethod
    def start(cls, limits: Limits, sandboxed: bool, threads: int) -> WarmSandbox:
        from . import sandbox

        scratch = Path(tempfile.mkdtemp(prefix="lensref-grade-"))
        os.chmod(scratch, 0o777)
        try:
            # the warm-up gets only idle CPU, so it never slows the run in progress
            argv = [*RUNNER, "--warm", str(WARM_IDLE_S)]
            started = sandbox.start(scratch, argv, limits, sandboxed, _env(threads), low_priority=True)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return cls(started, (limits, sandboxed, threads))

    def run(self, job: Job) -> JobResult:
        started = self.started
        try:
            since = time.monotonic()
            warm_s = since - started.started  # busy warming until .warm appeared, idle after
            try:
                idle = time.time() - (started.scratch / ".warm").stat().st_mtime
                warm_s = max(0.0, warm_s - max(0.0, idle))
            except OSError:  # still warming: the rest of the warm-up counts in the run's own time
                pass
            started.set_low_priority(False)
            hand_over(job.files, started.scratch)
            return _result(job, started.scratch, started.wait(job.wall_s, since=since), warm_s)
        finally:
            shutil.rmtree(started.scratch, ignore_errors=True)

    def discard(self) -> None:
        try:
            self.started.kill()
        finally:
            shutil.rmtree(self.started.scratch, ignore_errors=True)


_slot = threading.local()  # this thread's next sandbox, already warming
_idle: set = set()  # every warm sandbox not handed a job yet, for release_warm()
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
