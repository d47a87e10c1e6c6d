"""Grading a class: ``submitted/<student>/<assignment>/`` to nbgrader's gradebook, a CSV and feedback pages.

For each student, in name order, on the instructor's machine:

1. find the notebooks (:mod:`.submissions`; a renamed single notebook is graded with a note, a link anywhere is
   refused) and check they are notebooks at all;
2. make the task (:mod:`.task`): the notebook to run, with the instructor's locked cells and a probe in place of
   every test cell, and the cases each probe asks (:mod:`.cases`, seeded by assignment, student and cell);
3. send it to a pool (:mod:`.dispatch`): local sandboxes (``--jobs``) or a Dask cluster (``--scheduler``). Where
   it lands, it runs in a sandbox (:mod:`.jobs`, :mod:`.sandbox`, :mod:`.runner`) and is judged in a judge
   process of its own (:mod:`.worker`, :mod:`.judge_process`, :mod:`.judging`);
4. record what comes back, strictly in student order (:mod:`.record`): the gradebook, the verdicts, the executed
   notebook and the feedback page.

The CSV is written last, from the gradebook (:mod:`.report`). Unchanged submissions that were graded before are
skipped unless ``force``. One grader at a time per output folder (:mod:`.lock`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from ...errors import LensError
from . import gradebook, sandbox
from .limits import Limits, sweep_stale
from .lock import exclusive
from .record import record
from .report import GradeReport, StudentResult, write_csv
from .status import Status
from .task import GradingSetup, GradingTask, make_task

if TYPE_CHECKING:
    from concurrent.futures import Future

    from distributed import Future as DaskFuture

    from .dispatch import DaskPool, LocalPool
    from .task import Graded

DEFAULT_TIMEOUT = 60  # seconds per cell


def course_root() -> Path:
    """The folder holding ``nbgrader_config.py``: the current folder if it has one, else this checkout's root."""
    here = Path.cwd()
    if (here / "nbgrader_config.py").exists():
        return here
    return Path(__file__).resolve().parents[3]


def assignments(root: Path | None = None) -> list[str]:
    """The course's assignments: the folders of ``solutions/`` that hold a notebook, in name order."""
    folder = (root or course_root()) / "solutions"
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and any(p.glob("*.ipynb"))) if folder.is_dir() else []


@dataclass
class Sent:
    """A student whose task is out: what the instructor keeps until its result comes back."""

    task: GradingTask
    notebooks: dict[str, Path]  # the submission's files (for --baseline)
    prepare_s: float  # wall seconds to make the task
    cpu_s: float  # this thread's CPU seconds to make it
    baseline_s: float | None = None  # --baseline: the notebook run alone, measured before the graded run


def grade(
    assignment: str,
    submitted: Path | str | None = None,
    out: Path | str | None = None,
    timeout: int = DEFAULT_TIMEOUT,
    force: bool = False,
    root: Path | str | None = None,
    limits: Limits | None = None,
    sandboxed: bool = True,
    baseline: bool = False,
    jobs: int | None = 1,
    scheduler: str | None = None,
    progress: Callable[[str], object] = print,
    bar: bool = False,
    warm: bool = True,
) -> GradeReport:
    """Grade every ``<submitted>/<student>/<assignment>/`` into the gradebook; see the module docstring.

    ``jobs`` sandboxes run at a time (None: one per core), or the runs go to the Dask ``scheduler``; either way
    this process records the students in name order, so the gradebook and the CSV are the same.
    ``warm=False`` starts each local sandbox only when its job comes (for measuring what warm sandboxes save).
    """
    from ...models import load_model
    from .dispatch import open_pool

    start = time.time()
    root = Path(root or course_root()).resolve()
    known = assignments(root)
    if assignment not in known:
        raise LensError(f"unknown assignment {assignment!r}; choose from {', '.join(known) or '(none in solutions/)'}")
    if timeout < 1:
        raise LensError(f"--timeout must be at least 1 second, got {timeout}")
    limits = limits or Limits()
    if limits.disk_mb * 2 > limits.memory_mb:
        raise LensError(
            f"--disk {limits.disk_mb} MB is more than half of --memory {limits.memory_mb} MB: a run's disk lives in "
            "its memory, so filling it would kill the run; lower --disk or raise --memory"
        )
    out = Path(out or root).resolve()
    submitted = Path(submitted or root / "submitted").resolve()
    if not submitted.is_dir():
        raise LensError(
            f"no submissions folder {submitted}; put each student's work in {submitted}/<student>/{assignment}/"
        )
    students = sorted(p.name for p in submitted.iterdir() if (p / assignment).is_dir())
    if not students:
        raise LensError(
            f"no submissions for {assignment} in {submitted} (expected {submitted}/<student>/{assignment}/)"
        )
    if sandboxed and not scheduler:
        sandbox.check_bwrap()
        sweep_stale()  # control groups a killed grader could not remove
    elif not sandboxed:
        progress("warning: grading WITHOUT a sandbox: learner code can read and change anything this user can")
    load_model()  # the model cache must exist before any sandbox mounts it read-only
    setup = GradingSetup.read(assignment, root, out, timeout, limits, sandboxed)
    pool = open_pool(jobs, scheduler, warm)
    results: list[StudentResult] = []
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"grades-{assignment}.csv"
    try:
        with exclusive(out / "gradebook.db.lock"):
            gradebook.register_assignment(assignment, root, setup.db_url)
            with gradebook.session(setup.db_url):
                try:
                    _grade_all(setup, pool, students, submitted, force, baseline, results, bar, progress)
                except KeyboardInterrupt:
                    pool.close(cancel=True)
                    write_csv(csv_path, assignment, results, setup.db_url)
                    raise LensError(
                        f"interrupted: {len(results)} of {len(students)} submission(s) done and kept in the "
                        "gradebook; run the same command again to grade the rest"
                    ) from None
                write_csv(csv_path, assignment, results, setup.db_url)
    finally:
        pool.close()
    confinement = sandbox.describe(limits, sandboxed)
    return GradeReport(
        assignment,
        results,
        csv_path,
        out / "feedback",
        out / "gradebook.db",
        time.time() - start,
        f"{confinement}; {pool.describe()}",
    )


def _newest_mtime(folder: Path) -> float:
    return max((p.lstat().st_mtime for p in folder.rglob("*") if not p.is_symlink()), default=0.0)


def _triage(setup: GradingSetup, student: str, submitted: Path, force: bool) -> StudentResult | Sent:
    """A result at once (refused, missing, malformed, unchanged), or the task to send."""
    from .submissions import find_notebooks, notebook_problem

    folder = submitted / student / setup.assignment
    found = find_notebooks(folder, setup.notebooks, top=submitted)
    if found.refused:
        return StudentResult(student, Status.REFUSED, message=f"{found.refused} - not graded")
    if found.problem:
        return StudentResult(student, Status.MISSING, message=found.problem)
    problems = [f"{path} {why}" for path in found.notebooks.values() if (why := notebook_problem(path))]
    if problems:
        return StudentResult(student, Status.MALFORMED, message="; ".join(problems) + " - skipped")
    done = setup.out / "autograded" / student / setup.assignment
    stored = gradebook.read(setup.db_url, setup.assignment, student)
    if not force and stored is not None and done.is_dir() and _newest_mtime(done) >= _newest_mtime(folder):
        return StudentResult(
            student,
            Status.UNCHANGED,
            stored.score,
            stored.max_score,
            cells=stored.cells,
            message="already graded (use --force to regrade)",
        )
    t0, cpu0 = time.time(), time.thread_time()
    task = make_task(setup, student, found.notebooks, list(found.notes))
    return Sent(task, found.notebooks, time.time() - t0, time.thread_time() - cpu0)


def _collect(setup: GradingSetup, sent: Sent, future: Future[Graded] | DaskFuture[Graded]) -> StudentResult:
    """The student's result once its future is done: recorded, or failed with the reason."""
    try:
        graded = future.result()
    except Exception as exc:  # the run or its judge failed (a worker lost twice, a sandbox that could not start)
        first = (str(exc).splitlines() or [""])[0][:200]
        return StudentResult(
            sent.task.student, Status.FAILED, message=f"the run failed: {type(exc).__name__}: {first}; nothing recorded"
        )
    cpu0 = time.thread_time()
    result, record_s = record(setup, graded)
    result.phases = {"prepare": sent.prepare_s, **graded.phases, "record": record_s}
    result.seconds = sum(result.phases.values())  # its own cost: waiting in the queue is not counted
    result.baseline_seconds = sent.baseline_s
    result.instructor_cpu_s = sent.cpu_s + time.thread_time() - cpu0
    return result


def _grade_all(
    setup: GradingSetup,
    pool: LocalPool | DaskPool,
    students: list[str],
    submitted: Path,
    force: bool,
    baseline: bool,
    results: list[StudentResult],
    bar: bool,
    progress: Callable[[str], object],
) -> None:
    """Keep the pool busy; record strictly in student order (one writer, a fixed order)."""
    from tqdm import tqdm

    from .baseline import run_alone

    # --baseline measures one student at a time, nothing else running: the notebook alone, then its grading
    window = 0 if baseline else max(2, 2 * pool.slots)
    inflight: deque[tuple[StudentResult | Sent, Future[Graded] | DaskFuture[Graded] | None]] = deque()
    shown = tqdm(total=len(students), unit="submission", disable=not bar, dynamic_ncols=True)

    def drain_one() -> None:
        entry, future = inflight.popleft()
        # a Sent entry always travels with its future, a finished StudentResult with none
        result = cast(StudentResult, entry) if future is None else _collect(setup, cast(Sent, entry), future)
        results.append(result)
        shown.update(1)
        score = "" if result.score is None else f" {result.score:g}/{result.max_score:g}"
        line = f"{result.student}: {result.status}{score}" + (f" ({result.message})" if result.message else "")
        (shown.write if bar else progress)(line)

    try:
        for student in students:
            entry = _triage(setup, student, submitted, force)
            future = None
            if isinstance(entry, Sent):
                if baseline:
                    entry.baseline_s = run_alone(setup, entry.notebooks)
                future = pool.submit(entry.task)
            inflight.append((entry, future))
            while inflight and (len(inflight) > window or inflight[0][1] is None or inflight[0][1].done()):
                drain_one()
        while inflight:
            drain_one()
    finally:
        shown.close()
