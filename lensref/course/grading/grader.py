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
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import LensError
from ...files import write_json
from . import gradebook, sandbox
from .limits import Limits
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
        lines = [f"{self.assignment}: {len(self.results)} submission(s), {self.seconds:.1f} s"
                 + (f"; sandbox limits: {self.confinement}" if self.confinement else "")]
        for r in self.results:
            score = "-" if r.score is None else f"{r.score:g} / {r.max_score:g}"
            timing = f"{r.seconds:6.1f} s (" + ", ".join(f"{k} {v:.1f} s" for k, v in r.phases.items()) + ")"
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
        run = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force",
                              f"--CourseDirectory.root={root}", f"--CourseDirectory.db_url={db_url}",
                              f"--CourseDirectory.release_directory={release}"],
                             cwd=root, env=env, capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        errors = [ln.strip() for ln in (run.stdout + run.stderr).splitlines() if "[ERROR]" in ln or "Error:" in ln]
        raise LensError(f"nbgrader generate_assignment {assignment} failed: {(errors or ['see its output'])[-1][:200]}")


class Grader:
    """Grades students of one assignment, one at a time; the gradebook is written by this process only."""

    def __init__(self, assignment: str, root: Path, out: Path, timeout: int, limits: Limits, sandboxed: bool,
                 baseline: bool = False, progress=print):
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

    def _scratch(self, student: str, notebooks: dict[str, Path], cases) -> tuple[Path, list[str], list[str]]:
        import nbformat

        from .submissions import prepare, read_notebook

        scratch = Path(tempfile.mkdtemp(prefix="lensref-grade-"))
        learner_code: list[str] = []
        for plan in self.plans:
            prepared = prepare(read_notebook(notebooks[plan.name]), self.sources[plan.name], plan.name)
            learner_code += prepared.learner_code
            (scratch / "run").mkdir(exist_ok=True)
            nbformat.write(prepared.notebook, scratch / "run" / f"{plan.name}.ipynb")
            folder = scratch / "cases" / plan.name
            folder.mkdir(parents=True, exist_ok=True)
            for cell in plan.test_cells:
                calls = [{"exercise": c.exercise, "function": c.function, "cases": cs}
                         for c, cs in zip(cell.calls, cases[(plan.name, cell.grade_id)])]
                (folder / f"{cell.grade_id}.json").write_text(json.dumps({"calls": calls}))
        job = {"notebooks": [p.name for p in self.plans], "cell_timeout": self.timeout, "interrupt_grace": 10,
               "max_restarts": 3, "startup_timeout": 120}
        (scratch / "job.json").write_text(json.dumps(job))
        os.chmod(scratch, 0o777)
        return scratch, learner_code, [p.name for p in self.plans]

    def grade_student(self, student: str, folder: Path, notebooks: dict[str, Path], notes: list[str]) -> StudentResult:
        import nbformat

        from . import feedback
        from .judge import judge_cell
        from .static import inspect_code

        t0 = time.time()
        phases = {}
        cases = self._cases(student)
        scratch, learner_code, names = self._scratch(student, notebooks, cases)
        try:
            phases["prepare"] = time.time() - t0
            run = sandbox.run(scratch, [sys.executable, "-m", "lensref.course.grading.runner"], self.limits,
                              self.wall, sandboxed=self.sandboxed)
            phases["sandbox"] = run.seconds
            t1 = time.time()
            code = inspect_code(learner_code, self.forbidden)
            if run.timed_out:
                notes.append(f"the whole run passed its {self.wall:.0f} s limit and was stopped")
            if run.oom_kills:
                notes.append(f"the memory limit ({self.limits.memory_mb} MB) was hit {run.oom_kills} time(s)")
            for exercise, names_used in code.uses_reference.items():
                notes.append(f"{exercise} calls {', '.join(names_used)} (the reference): scored 0, please review")
            notes += [f"review: {line}" for line in code.review]
            points: dict[tuple[str, str], float] = {}
            verdicts_by_nb = {}
            for plan in self.plans:
                statuses = self._cell_statuses(scratch, plan.name)
                verdicts = {}
                for cell in plan.test_cells:
                    verdict = judge_cell(cell, cases[(plan.name, cell.grade_id)],
                                         scratch / "outputs" / plan.name / cell.grade_id,
                                         statuses.get(cell.grade_id), code.uses_reference)
                    verdicts[cell.grade_id] = verdict
                    points[(plan.name, cell.grade_id)] = verdict.points
                verdicts_by_nb[plan.name] = verdicts
            phases["judge"] = time.time() - t1
            t2 = time.time()
            gradebook.record(self.db_url, self.assignment, student, points)
            done = self.out / "autograded" / student / self.assignment
            done.mkdir(parents=True, exist_ok=True)
            write_json(done / "verdicts.json", {
                "student": student, "assignment": self.assignment, "notes": notes,
                "cells": [{"notebook": v.notebook, "grade_id": v.grade_id, "points": v.points,
                           "max_points": v.max_points, "lines": v.lines}
                          for verdicts in verdicts_by_nb.values() for v in verdicts.values()]})
            for plan in self.plans:
                executed = self._executed(scratch, plan.name)
                nbformat.write(executed, done / f"{plan.name}.ipynb")
                page = feedback.render(f"{self.assignment} / {plan.name}: feedback for {student}", executed,
                                       self.sources[plan.name], verdicts_by_nb[plan.name], notes)
                feedback.write(self.out / "feedback" / student / self.assignment / f"{plan.name}.html", page)
            (self.out / "autograded" / student / f"{self.assignment}.grading.log").write_text(run.log)
            phases["record"] = time.time() - t2
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        stored = gradebook.read(self.db_url, self.assignment, student)
        result = StudentResult(student, GRADED, stored.score, stored.max_score, time.time() - t0,
                               "; ".join(notes), stored.cells, phases=phases)
        if self.baseline:
            result.baseline_seconds = self._run_alone(notebooks)
        return result

    def _cell_statuses(self, scratch: Path, name: str) -> dict[str, str]:
        """grade_id -> how its probe cell ended (from the runner's record; untrusted, used only for wording)."""
        try:
            runs = json.loads((scratch / "executed" / f"{name}.cells.json").read_text()[:2_000_000])
            run_nb = json.loads((scratch / "run" / f"{name}.ipynb").read_text())
        except (OSError, ValueError):
            return {}
        out = {}
        for entry in runs if isinstance(runs, list) else []:
            try:
                cell = run_nb["cells"][int(entry["index"])]
                gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                if gid:
                    out[gid] = str(entry["status"])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
        return out

    def _executed(self, scratch: Path, name: str):
        """The run's notebook with its outputs (untrusted: parsed as data, size-capped), else the notebook as run."""
        import nbformat

        path = scratch / "executed" / f"{name}.ipynb"
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_size < 64 * 2**20:
                return nbformat.read(path, as_version=4)
        except Exception:  # a broken or forged file: fall back to the notebook without outputs
            pass
        return nbformat.read(scratch / "run" / f"{name}.ipynb", as_version=4)

    def _run_alone(self, notebooks: dict[str, Path]) -> float:
        """Seconds to run the submission's notebooks plainly (nbclient, no sandbox, no probes): the baseline."""
        import nbformat
        from nbclient import NotebookClient

        start = time.time()
        for path in notebooks.values():
            with tempfile.TemporaryDirectory(prefix="lensref-alone-") as tmp:
                nb = nbformat.read(path, as_version=4)
                NotebookClient(nb, timeout=self.timeout, kernel_name="python3", allow_errors=True,
                               resources={"metadata": {"path": tmp}}).execute()
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
    progress=print,
) -> GradeReport:
    """Grade every ``<submitted>/<student>/<assignment>/`` into the gradebook; see the module docstring."""
    from .submissions import find_notebooks, notebook_problem

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
        raise LensError(f"no submissions folder {submitted}; put each student's work in {submitted}/<student>/{assignment}/")
    students = sorted(p.name for p in submitted.iterdir() if (p / assignment).is_dir())
    if not students:
        raise LensError(f"no submissions for {assignment} in {submitted} (expected {submitted}/<student>/{assignment}/)")
    limits = limits or Limits()
    if sandboxed:
        sandbox.check_bwrap()
    else:
        progress("warning: grading WITHOUT a sandbox: learner code can read and change anything this user can")
    from ...models import load_model

    load_model()  # the model cache must exist before any sandbox mounts it read-only

    grader = Grader(assignment, root, out, timeout, limits, sandboxed, baseline, progress)
    names = [p.name for p in grader.plans]
    results: list[StudentResult] = []
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive(out / "gradebook.db.lock"):
        _register_assignment(assignment, root, grader.db_url)
        for student in students:
            folder = submitted / student / assignment
            found = find_notebooks(folder, names)
            if found.problem:
                results.append(StudentResult(student, MISSING, message=found.problem))
                progress(f"{student}: {found.problem}")
                continue
            problems = [f"{path} {why}" for path in found.notebooks.values() if (why := notebook_problem(path))]
            if problems:
                result = StudentResult(student, MALFORMED, message="; ".join(problems) + " - skipped")
                results.append(result)
                progress(f"{student}: malformed: {result.message}")
                continue
            done = out / "autograded" / student / assignment
            stored = gradebook.read(grader.db_url, assignment, student)
            if not force and stored is not None and done.is_dir() and _newest_mtime(done) >= _newest_mtime(folder):
                results.append(StudentResult(student, UNCHANGED, stored.score, stored.max_score, cells=stored.cells,
                                             message="already graded (use --force to regrade)"))
                continue
            result = grader.grade_student(student, folder, found.notebooks, list(found.notes))
            results.append(result)
            progress(f"{student}: {result.status} {result.score:g}/{result.max_score:g} ({result.seconds:.1f} s)")
        csv_path = out / f"grades-{assignment}.csv"
        write_csv(csv_path, assignment, results, grader.db_url)
    confinement = sandbox.describe(limits) if sandboxed else "none (--no-sandbox)"
    return GradeReport(assignment, results, csv_path, out / "feedback", out / "gradebook.db", time.time() - start,
                       confinement)


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
        writer.writerow([r.student, assignment, "" if s is None else f"{s.score:g}",
                         "" if s is None else f"{s.max_score:g}", r.status,
                         *(f"{s.cells[c]:g}" if s and c in s.cells else "" for c in cell_names), _cell(r.message)])
    write_atomically(path, buffer.getvalue())


def _cell(value: str) -> str:
    """A spreadsheet must not read learner-controlled text (file names in notes) as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
