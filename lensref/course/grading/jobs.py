"""One submission's sandboxed run as data in, data out: the unit a local pool or a Dask worker executes.

A :class:`Job` is the files the sandbox needs (the notebook to run, the cases, ``job.json``) as bytes; a
:class:`JobResult` is the files the run left (the executed notebooks, the cell records, the recorded answers) as
bytes, size-capped, plus how the run ended. Nothing else crosses: the worker runs learner code only inside the
sandbox, and the verdict is made on the instructor's machine from these bytes.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .limits import Limits

RESULT_FOLDERS = ("executed", "outputs")
MAX_RESULT_BYTES = 1536 * 2**20


@dataclass
class Job:
    student: str
    files: dict[str, bytes]
    limits: Limits
    wall_s: float
    sandboxed: bool = True


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
            [sys.executable, "-m", "lensref.course.grading.runner"],
            job.limits,
            job.wall_s,
            sandboxed=job.sandboxed,
        )
        files, truncated = collect(scratch)
        return JobResult(
            job.student, files, run.seconds, run.timed_out, run.oom_kills, run.log, socket.gethostname(), truncated
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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
