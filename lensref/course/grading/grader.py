"""Grading a class: ``submitted/<student>/<assignment>/`` to nbgrader's gradebook, a CSV and feedback pages.

For each student, in name order:

1. find the notebooks (:mod:`.submissions`; a renamed single notebook is graded with a note) and check they are
   notebooks at all;
2. make the notebook to run: the submission with the instructor's locked cells, and a probe in place of every test
   cell; make the cases each probe will ask, seeded by (assignment, student, cell) so a re-run asks the same;
3. run it in the sandbox (:mod:`.sandbox`, :mod:`.runner`): per-cell time limits, stuck or dead kernels restarted;
4. judge, in this process, which never runs learner code (:mod:`.judge`), and read the learner's code for calls of
   the reference it was asked to write (:mod:`.static`);
5. write the scores into the gradebook (:mod:`.gradebook`), the run's notebook and a feedback page.

The CSV is written last, from the gradebook. Unchanged submissions that were graded before are skipped unless
``force``. One grader at a time per output folder (a lock file).
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import LensError
from ...files import write_json
from . import gradebook, sandbox
from .jobs import Job, JobResult
from .limits import Limits, sweep_stale
from .plan import NotebookPlan, load_plan

DEFAULT_TIMEOUT = 60  # seconds per cell
GRADED, MALFORMED, MISSING, FAILED, UNCHANGED = "graded", "malformed", "missing", "failed", "unchanged"


def course_root() -> Path:
    """The folder holding ``nbgrader_config.py``: the current folder if it has one, else this checkout's root."""
    here = Path.cwd()
    if (here / "nbgrader_config.py").exists():
        return here
    return Path(__file__).resolve().parents[3]


def assignments(root: Path | None = None) -> list[str]:
    folder = (root or course_root()) / "solutions"
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and any(p.glob("*.ipynb"))) if folder.is_dir() else []


@dataclass
class StudentResult:
    student: str
    status: str
    score: float | None = None
    max_score: float | None = None
    seconds: float = 0.0
    message: str = ""
    cells: dict[str, float] = field(default_factory=dict)
    baseline_seconds: float | None = None  # the notebook run plainly, with --baseline
    phases: dict[str, float] = field(default_factory=dict)  # seconds: prepare, sandbox, judge, record
    warm_s: float = 0.0  # its sandbox's warm-up before the job came (on idle CPU, not in ``seconds``)


@dataclass
class GradeReport:
    assignment: str
    results: list[StudentResult]
    csv_path: Path
    feedback_dir: Path
    gradebook: Path
    seconds: float
    confinement: str = ""

    def summary(self) -> str:
        lines = [
            f"{self.assignment}: {len(self.results)} submission(s), {self.seconds:.1f} s"
            + (f"; sandbox limits: {self.confinement}" if self.confinement else "")
        ]
        for r in self.results:
            score = "-" if r.score is None else f"{r.score:g} / {r.max_score:g}"
            timing = f"{r.seconds:6.1f} s (" + ", ".join(f"{k} {v:.1f} s" for k, v in r.phases.items()) + ")"
            if r.warm_s >= 0.5:
                timing += f", sandbox warmed up {r.warm_s:.1f} s ahead"
            if r.baseline_seconds is not None:
                timing += f", run alone {r.baseline_seconds:.1f} s, ratio {r.seconds / r.baseline_seconds:.2f}"
            extra = f"  {r.message}" if r.message else ""
            lines.append(f"  {r.student:20s} {score:>12s}  {r.status:10s} {timing}{extra}")
        lines.append(f"grades: {self.csv_path}")
        lines.append(f"feedback: {self.feedback_dir}/<student>/{self.assignment}/")
        lines.append(f"gradebook: {self.gradebook}")
        return "\n".join(lines)


@contextmanager
def _exclusive(lock_path: Path):
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise LensError(f"another grader is using {lock_path.with_suffix('')}; wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _seed(*parts: str) -> int:
    return int(hashlib.sha256("/".join(parts).encode()).hexdigest()[:12], 16)


def _newest_mtime(folder: Path) -> float:
    return max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=0.0)


def _register_assignment(assignment: str, root: Path, db_url: str) -> None:
    """``nbgrader generate_assignment`` on the instructor's source: it puts the cells and points in the gradebook."""
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    with tempfile.TemporaryDirectory(prefix="lensref-release-") as release:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "nbgrader",
                "generate_assignment",
                assignment,
                "--force",
                f"--CourseDirectory.root={root}",
                f"--CourseDirectory.db_url={db_url}",
                f"--CourseDirectory.release_directory={release}",
            ],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    if run.returncode != 0:
        errors = [ln.strip() for ln in (run.stdout + run.stderr).splitlines() if "[ERROR]" in ln or "Error:" in ln]
        raise LensError(f"nbgrader generate_assignment {assignment} failed: {(errors or ['see its output'])[-1][:200]}")


@dataclass
class Pending:
    """A student whose job is out: what the judge will need when its result comes back."""

    student: str
    notebooks: dict[str, Path]
    notes: list[str]
    cases: dict
    learner_code: list[str]
    run_notebooks: dict
    job: Job
    started: float
    prepare_s: float
    baseline_s: float | None = None  # --baseline: the notebook run alone, measured before the graded run


@dataclass
class Judged:
    """A student's verdicts, not yet recorded."""

    pending: Pending
    run: JobResult
    notes: list[str]
    points: dict[tuple[str, str], float]
    verdicts: dict[str, dict]  # notebook -> grade_id -> CellVerdict
    phases: dict[str, float]


class Grader:
    """Grades students of one assignment, one at a time; the gradebook is written by this process only."""

    def __init__(
        self,
        assignment: str,
        root: Path,
        out: Path,
        timeout: int,
        limits: Limits,
        sandboxed: bool,
        baseline: bool = False,
        progress=print,
    ):
        import nbformat

        from ..checks import EXERCISES

        self.assignment, self.root, self.out = assignment, root, out
        self.timeout, self.limits, self.sandboxed, self.baseline = timeout, limits, sandboxed, baseline
        self.progress = progress
        self.plans: list[NotebookPlan] = load_plan(root, assignment)
        self.sources = {p.name: nbformat.read(p.path, as_version=4) for p in self.plans}
        self.forbidden = {name: tuple(ex.forbidden) for name, ex in EXERCISES.items()}
        self.db_url = f"sqlite:///{out / 'gradebook.db'}"
        code_cells = sum(1 for nb in self.sources.values() for c in nb.cells if c.cell_type == "code")
        self.wall = timeout * (code_cells + 4) + 180
        self._warm_queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._warm_references, daemon=True, name="lensref-warm").start()

    def _warm_references(self) -> None:
        """While the sandboxes run, compute the model passes the judge will need (memoized per model and prompt)."""
        from ..checks._core import captured

        while True:
            case = self._warm_queue.get()
            for key in ("prompt", "source"):
                try:
                    if isinstance(case.get(key), str):
                        captured(case, case[key])
                except Exception:  # the judge will meet the same problem and report it
                    pass

    # -- one student ------------------------------------------------------------------------------------------
    def _cases(self, student: str) -> dict[tuple[str, str], list[list[dict]]]:
        from ..checks import EXERCISES
        from ..checks._core import ModelRef

        cases = {}
        for plan in self.plans:
            for cell in plan.test_cells:
                per_call = []
                for i, call in enumerate(cell.calls):
                    options = dict(call.options)
                    if "lm" in options:
                        options["lm"] = ModelRef(**options["lm"])
                    seed = _seed(self.assignment, student, plan.name, cell.grade_id, str(i))
                    per_call.append(EXERCISES[call.exercise].cases(seed, **options))
                cases[(plan.name, cell.grade_id)] = per_call
        return cases

    def make_job(self, student: str, notebooks: dict[str, Path], notes: list[str]) -> Pending:
        """Everything the sandbox needs for ``student``, as bytes; the cases stay here for the judge."""
        import nbformat

        from .submissions import prepare, read_notebook

        t0 = time.time()
        cases = self._cases(student)
        for per_call in cases.values():
            for call_cases in per_call:
                for case in call_cases:
                    if isinstance(case, dict) and "lm" in case and ("prompt" in case or "source" in case):
                        self._warm_queue.put(case)
        files: dict[str, bytes] = {}
        learner_code: list[str] = []
        run_notebooks = {}
        for plan in self.plans:
            prepared = prepare(read_notebook(notebooks[plan.name]), self.sources[plan.name], plan.name)
            learner_code += prepared.learner_code
            run_notebooks[plan.name] = prepared.notebook
            files[f"run/{plan.name}.ipynb"] = nbformat.writes(prepared.notebook).encode()
            for cell in plan.test_cells:
                calls = [
                    {"exercise": c.exercise, "function": c.function, "cases": cs}
                    for c, cs in zip(cell.calls, cases[(plan.name, cell.grade_id)])
                ]
                files[f"cases/{plan.name}/{cell.grade_id}.json"] = json.dumps({"calls": calls}).encode()
        files["job.json"] = json.dumps(
            {
                "notebooks": [p.name for p in self.plans],
                "cell_timeout": self.timeout,
                "interrupt_grace": 10,
                "max_restarts": 3,
                "startup_timeout": 120,
            }
        ).encode()
        job = Job(student, files, self.limits, self.wall, self.sandboxed)
        return Pending(student, notebooks, notes, cases, learner_code, run_notebooks, job, t0, time.time() - t0)

    def judge(self, pending: Pending, run: JobResult) -> Judged:
        """Judge a finished run here (never running learner code); several students may be judged at once."""
        from .judge import judge_cell
        from .static import inspect_code

        notes, cases = pending.notes, pending.cases
        phases = {"prepare": pending.prepare_s, "sandbox": run.seconds}
        t1 = time.time()
        files = run.files  # the run's result as bytes: read as data, never written out or executed
        code = inspect_code(pending.learner_code, self.forbidden)
        if run.timed_out:
            notes.append(f"the whole run passed its {self.wall:.0f} s limit and was stopped")
        if run.oom_kills:
            notes.append(f"the memory limit ({self.limits.memory_mb} MB) was hit {run.oom_kills} time(s)")
        if run.truncated:
            notes.append("the run wrote more than the grader reads back; some answers were dropped")
        for exercise, names_used in code.uses_reference.items():
            notes.append(f"{exercise} calls {', '.join(names_used)} (the reference): scored 0, please review")
        notes += [f"review: {line}" for line in code.review]
        points: dict[tuple[str, str], float] = {}
        verdicts_by_nb = {}
        for plan in self.plans:
            statuses = self._cell_statuses(files, plan.name, pending.run_notebooks[plan.name])
            verdicts = {}
            for cell in plan.test_cells:
                verdict = judge_cell(
                    cell,
                    cases[(plan.name, cell.grade_id)],
                    files,
                    statuses.get(cell.grade_id),
                    code.uses_reference,
                )
                verdicts[cell.grade_id] = verdict
                points[(plan.name, cell.grade_id)] = verdict.points
            verdicts_by_nb[plan.name] = verdicts
        phases["judge"] = time.time() - t1
        return Judged(pending, run, notes, points, verdicts_by_nb, phases)

    def record(self, judged: Judged) -> StudentResult:
        """Record a judged run: gradebook, verdicts, executed notebook, feedback (one student at a time, in order)."""
        import nbformat

        from . import feedback

        pending, run, notes, points = judged.pending, judged.run, judged.notes, judged.points
        student, files, verdicts_by_nb, phases = pending.student, run.files, judged.verdicts, judged.phases
        t2 = time.time()
        gradebook.record(self.db_url, self.assignment, student, points)
        done = self.out / "autograded" / student / self.assignment
        done.mkdir(parents=True, exist_ok=True)
        write_json(
            done / "verdicts.json",
            {
                "student": student,
                "assignment": self.assignment,
                "notes": notes,
                "cells": [
                    {
                        "notebook": v.notebook,
                        "grade_id": v.grade_id,
                        "points": v.points,
                        "max_points": v.max_points,
                        "lines": v.lines,
                    }
                    for verdicts in verdicts_by_nb.values()
                    for v in verdicts.values()
                ],
            },
        )
        for plan in self.plans:
            executed = self._executed(files, plan.name, pending.run_notebooks[plan.name])
            nbformat.write(executed, done / f"{plan.name}.ipynb")
            cells = files.get(f"executed/{plan.name}.cells.json")
            if cells is not None and len(cells) < 2**20:
                (done / f"{plan.name}.cells.json").write_bytes(cells)  # per-cell status and seconds
            page = feedback.render(
                f"{self.assignment} / {plan.name}: feedback for {student}",
                executed,
                self.sources[plan.name],
                verdicts_by_nb[plan.name],
                notes,
            )
            feedback.write(self.out / "feedback" / student / self.assignment / f"{plan.name}.html", page)
        (self.out / "autograded" / student / f"{self.assignment}.grading.log").write_text(run.log)
        phases["record"] = time.time() - t2
        stored = gradebook.read(self.db_url, self.assignment, student)
        if stored is None:  # record() made the submission just above
            raise LensError(f"the gradebook lost {student}'s submission while grading")
        result = StudentResult(
            student,
            GRADED,
            stored.score,
            stored.max_score,
            sum(phases.values()),  # its own cost: waiting in the queue is not counted
            "; ".join(notes),
            stored.cells,
            phases=phases,
        )
        result.baseline_seconds = pending.baseline_s
        result.warm_s = run.warm_s
        return result

    @staticmethod
    def _cell_statuses(files: dict[str, bytes], name: str, run_nb) -> dict[str, str]:
        """grade_id -> how its probe cell ended (from the runner's record; untrusted, used only for wording)."""
        try:
            runs = json.loads(files.get(f"executed/{name}.cells.json", b"")[:2_000_000])
        except (ValueError, UnicodeDecodeError):
            return {}
        out = {}
        for entry in runs if isinstance(runs, list) else []:
            try:
                cell = run_nb.cells[int(entry["index"])]
                gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                if gid:
                    out[gid] = str(entry["status"])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
        return out

    @staticmethod
    def _executed(files: dict[str, bytes], name: str, run_nb):
        """The run's notebook with its outputs (untrusted: parsed as data, size-capped), else the notebook as run."""
        import nbformat

        data = files.get(f"executed/{name}.ipynb")
        try:
            if data is not None and len(data) < 64 * 2**20:
                return nbformat.reads(data.decode("utf-8"), as_version=4)
        except Exception:  # a broken or forged file: fall back to the notebook without outputs
            pass
        return run_nb

    def _run_alone(self, notebooks: dict[str, Path]) -> float:
        """Seconds to run the submission's notebooks as the learner would (visible checks, no probes, no judge),
        in the same sandbox: the baseline that grading time is compared with."""
        from .jobs import execute

        files = {f"run/{name}.ipynb": path.read_bytes() for name, path in notebooks.items()}
        files["job.json"] = json.dumps(
            {
                "notebooks": list(notebooks),
                "cell_timeout": self.timeout,
                "interrupt_grace": 10,
                "max_restarts": 0,
                "startup_timeout": 120,
            }
        ).encode()
        start = time.time()
        execute(Job("baseline", files, self.limits, self.wall, self.sandboxed))
        return time.time() - start


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
    progress=print,
    bar: bool = False,
    warm: bool = True,
) -> GradeReport:
    """Grade every ``<submitted>/<student>/<assignment>/`` into the gradebook; see the module docstring.

    ``jobs`` sandboxes run at a time (None: one per core), or the runs go to the Dask ``scheduler``; either way
    this process judges and records the students in name order, so the gradebook and the CSV are the same.
    ``warm=False`` starts each local sandbox only when its job comes (for measuring what warm sandboxes save).
    """
    from .dispatch import open_pool

    start = time.time()
    root = Path(root or course_root()).resolve()
    known = assignments(root)
    if assignment not in known:
        raise LensError(f"unknown assignment {assignment!r}; choose from {', '.join(known) or '(none in solutions/)'}")
    if timeout < 1:
        raise LensError(f"--timeout must be at least 1 second, got {timeout}")
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
    limits = limits or Limits()
    if sandboxed and not scheduler:
        sandbox.check_bwrap()
        sweep_stale()  # control groups a killed grader could not remove
    elif not sandboxed:
        progress("warning: grading WITHOUT a sandbox: learner code can read and change anything this user can")
    from ...models import load_model

    load_model()  # the model cache must exist before any sandbox mounts it read-only, and the judge needs it
    grader = Grader(assignment, root, out, timeout, limits, sandboxed, baseline, progress)
    pool = open_pool(jobs, scheduler, warm)
    results: list[StudentResult] = []
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"grades-{assignment}.csv"
    try:
        with _exclusive(out / "gradebook.db.lock"):
            _register_assignment(assignment, root, grader.db_url)
            with gradebook.session(grader.db_url):
                try:
                    _grade_all(grader, pool, students, submitted, force, results, bar)
                except KeyboardInterrupt:
                    pool.close(cancel=True)
                    write_csv(csv_path, assignment, results, grader.db_url)
                    raise LensError(
                        f"interrupted: {len(results)} of {len(students)} submission(s) done and kept in the "
                        "gradebook; run the same command again to grade the rest"
                    ) from None
                write_csv(csv_path, assignment, results, grader.db_url)
    finally:
        pool.close()
    confinement = sandbox.describe(limits) if sandboxed else "none (--no-sandbox)"
    return GradeReport(
        assignment,
        results,
        csv_path,
        out / "feedback",
        out / "gradebook.db",
        time.time() - start,
        f"{confinement}; {pool.describe()}",
    )


def _triage(grader: Grader, student: str, folder: Path, force: bool) -> StudentResult | Pending:
    """A result at once (missing, malformed, unchanged), or the job to run."""
    from .submissions import find_notebooks, notebook_problem

    names = [p.name for p in grader.plans]
    found = find_notebooks(folder, names)
    if found.problem:
        return StudentResult(student, MISSING, message=found.problem)
    problems = [f"{path} {why}" for path in found.notebooks.values() if (why := notebook_problem(path))]
    if problems:
        return StudentResult(student, MALFORMED, message="; ".join(problems) + " - skipped")
    done = grader.out / "autograded" / student / grader.assignment
    stored = gradebook.read(grader.db_url, grader.assignment, student)
    if not force and stored is not None and done.is_dir() and _newest_mtime(done) >= _newest_mtime(folder):
        return StudentResult(
            student,
            UNCHANGED,
            stored.score,
            stored.max_score,
            cells=stored.cells,
            message="already graded (use --force to regrade)",
        )
    return grader.make_job(student, found.notebooks, list(found.notes))


def _grade_all(
    grader: Grader, pool, students: list[str], submitted: Path, force: bool, results: list[StudentResult], bar: bool
) -> None:
    """Keep the pool busy; judge finished runs in parallel (one thread per core), and record strictly in student
    order (one writer, a fixed order)."""
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    from tqdm import tqdm

    # --baseline measures one student at a time, nothing else running: the notebook alone, then its grading
    window = 0 if grader.baseline else max(2, 2 * pool.slots)
    inflight: deque = deque()
    progress = tqdm(total=len(students), unit="submission", disable=not bar, dynamic_ncols=True)
    judges = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="lensref-judge")

    def judge_when_done(pending: Pending, run_future) -> Future:
        judged: Future = Future()

        def run_done(f) -> None:
            try:
                run = f.result()
            except BaseException as exc:  # the run failed, or was cancelled (Ctrl-C)
                judged.set_exception(exc)
                return
            try:
                task = judges.submit(grader.judge, pending, run)
            except RuntimeError as exc:  # the judges are shutting down
                judged.set_exception(exc)
                return
            task.add_done_callback(
                lambda t: judged.set_exception(t.exception()) if t.exception() else judged.set_result(t.result())
            )

        run_future.add_done_callback(run_done)
        return judged

    def drain_one() -> None:
        entry, judged = inflight.popleft()
        if judged is None:
            result = entry
        else:
            try:
                done = judged.result()
            except Exception as exc:  # the run itself failed (a worker lost twice, the sandbox could not start)
                result = StudentResult(
                    entry.student,
                    FAILED,
                    message=f"the run failed: {type(exc).__name__}: "
                    f"{(str(exc).splitlines() or [''])[0][:200]}; nothing recorded",
                )
            else:
                result = grader.record(done)
        results.append(result)
        progress.update(1)
        score = "" if result.score is None else f" {result.score:g}/{result.max_score:g}"
        line = f"{result.student}: {result.status}{score}" + (f" ({result.message})" if result.message else "")
        (progress.write if bar else grader.progress)(line)

    try:
        for student in students:
            entry = _triage(grader, student, submitted / student / grader.assignment, force)
            if grader.baseline and isinstance(entry, Pending):
                entry.baseline_s = grader._run_alone(entry.notebooks)
            judged = judge_when_done(entry, pool.submit(entry.job)) if isinstance(entry, Pending) else None
            inflight.append((entry, judged))
            while inflight and (len(inflight) > window or inflight[0][1] is None or inflight[0][1].done()):
                drain_one()
        while inflight:
            drain_one()
    finally:
        progress.close()
        judges.shutdown(wait=False, cancel_futures=True)


def write_csv(path: Path, assignment: str, results: list[StudentResult], db_url: str) -> None:
    """One row per student: the gradebook's total and per-cell scores, status and notes; via a temp file."""
    from ...files import write_atomically

    rows = []
    for r in results:
        stored = gradebook.read(db_url, assignment, r.student) if r.status in (GRADED, UNCHANGED) else None
        rows.append((r, stored))
    cell_names = sorted({name for _, s in rows if s for name in s.cells})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", "assignment", "score", "max_score", "status", *cell_names, "message"])
    for r, s in rows:
        writer.writerow(
            [
                r.student,
                assignment,
                "" if s is None else f"{s.score:g}",
                "" if s is None else f"{s.max_score:g}",
                r.status,
                *(f"{s.cells[c]:g}" if s and c in s.cells else "" for c in cell_names),
                _cell(r.message),
            ]
        )
    write_atomically(path, buffer.getvalue())


def _cell(value: str) -> str:
    """A spreadsheet must not read learner-controlled text (file names in notes) as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
