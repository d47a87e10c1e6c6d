"""Grading a class with nbgrader, robustly: one command from ``submitted/`` to a gradebook, a CSV and feedback.

``grade(assignment)`` does, in order:

1. loads the assignment's source (``solutions/<a>/``) into the SQLite gradebook (``nbgrader
   generate_assignment`` into a throwaway release folder, so the committed ``exercises/`` are never touched);
2. checks every submitted notebook is a readable notebook; a malformed one is reported by path and its
   student skipped (the rest of the class is still graded);
3. runs ``nbgrader autograde`` once per student, in its own process, with a per-cell timeout (an infinite
   loop fails its cell and the notebook runs on) and a per-student limit (a kernel that ignores the
   interrupt is killed); edited or deleted test cells are restored from the gradebook by nbgrader;
4. writes per-student feedback HTML (``nbgrader generate_feedback``) and a grades CSV (via a temp file).

Re-running is safe: a student's grades are replaced, never added twice. Unchanged submissions that were
already graded are skipped unless ``force``. One grader at a time: a lock file guards the gradebook.
"""
from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LensError

DEFAULT_TIMEOUT = 60  # seconds per cell
GRADED, MALFORMED, FAILED, TIMED_OUT, UNCHANGED = "graded", "malformed", "failed", "timed out", "unchanged"


def course_root() -> Path:
    """The folder holding ``nbgrader_config.py``: the current folder if it has one, else this checkout's root."""
    here = Path.cwd()
    if (here / "nbgrader_config.py").exists():
        return here
    return Path(__file__).resolve().parents[2]


def assignments(root: Path | None = None) -> list[str]:
    root = root or course_root()
    folder = root / "solutions"
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and any(p.glob("*.ipynb"))) if folder.is_dir() else []


def notebook_names(assignment: str, root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "solutions" / assignment).glob("*.ipynb"))


@dataclass
class StudentResult:
    student: str
    status: str
    score: float | None = None
    max_score: float | None = None
    seconds: float = 0.0
    message: str = ""
    cells: dict[str, float] = field(default_factory=dict)


@dataclass
class GradeReport:
    assignment: str
    results: list[StudentResult]
    csv_path: Path
    feedback_dir: Path
    gradebook: Path
    seconds: float

    def summary(self) -> str:
        lines = [f"{self.assignment}: {len(self.results)} submission(s), {self.seconds:.1f} s"]
        for r in self.results:
            score = "-" if r.score is None else f"{r.score:g} / {r.max_score:g}"
            extra = f"  {r.message}" if r.message else ""
            lines.append(f"  {r.student:20s} {score:>12s}  {r.status:10s} {r.seconds:6.1f} s{extra}")
        lines.append(f"grades: {self.csv_path}")
        lines.append(f"feedback: {self.feedback_dir}/<student>/{self.assignment}/")
        lines.append(f"gradebook: {self.gradebook}")
        return "\n".join(lines)


# --- checking submissions --------------------------------------------------------------------------

def notebook_problem(path: Path) -> str | None:
    """Why ``path`` is not a gradable notebook (one line), or None if it is fine."""
    import nbformat

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot be read ({type(exc).__name__})"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"is not valid JSON (line {exc.lineno}: {exc.msg})"
    if not isinstance(data, dict) or "cells" not in data or "nbformat" not in data:
        return "is JSON but not a notebook (no 'cells' or 'nbformat')"
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"is not a valid notebook ({first[:120]})"
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta is not None and not isinstance(meta, dict):
            return "has corrupted nbgrader metadata"
    return None


# --- running nbgrader --------------------------------------------------------------------------------

@contextmanager
def _kernel_path():
    """A kernelspec ``python3`` that runs this interpreter, put first on JUPYTER_PATH for the graders."""
    with tempfile.TemporaryDirectory(prefix="lensref-kernel-") as tmp:
        spec = Path(tmp) / "kernels" / "python3"
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (ipykernel)", "language": "python",
        }))
        yield tmp


@dataclass
class _Run:
    rc: int
    output: str
    timed_out: bool


def _nbgrader(args: list[str], root: Path, env: dict, limit: float | None, log: Path | None = None) -> _Run:
    """``python -m nbgrader ARGS`` in ``root``; the whole process group is killed after ``limit`` seconds."""
    proc = subprocess.Popen([sys.executable, "-m", "nbgrader", *args], cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    timed_out = False
    try:
        output, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(output or "")
    return _Run(proc.returncode, output or "", timed_out)


def _last_error(output: str) -> str:
    errors = [line.strip() for line in output.splitlines() if "[ERROR]" in line or "Error:" in line]
    return (errors[-1] if errors else "see the log")[:200]


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


def _graded_cells(assignment: str, root: Path) -> int:
    import nbformat

    count = 0
    for name in notebook_names(assignment, root):
        nb = nbformat.read(root / "solutions" / assignment / f"{name}.ipynb", as_version=4)
        count += sum(1 for c in nb.cells if c.cell_type == "code")
    return count


def _newest_mtime(folder: Path) -> float:
    return max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=0.0)


def _read_scores(db_url: str, assignment: str, student: str) -> tuple[float, float, dict[str, float]] | None:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            return None
        cells = {}
        for nb in sub.notebooks:
            for grade in nb.grades:
                if grade.max_score:
                    cells[f"{nb.name}:{grade.name}"] = float(grade.score)
        return float(sub.score), float(sub.max_score), cells


# --- the grading run ------------------------------------------------------------------------------------

def grade(
    assignment: str,
    submitted: Path | str | None = None,
    out: Path | str | None = None,
    timeout: int = DEFAULT_TIMEOUT,
    force: bool = False,
    root: Path | str | None = None,
    student_limit: float | None = None,
    progress=print,
) -> GradeReport:
    """Grade every ``<submitted>/<student>/<assignment>/`` into the gradebook; see the module docstring."""
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

    gradebook = out / "gradebook.db"
    db_url = f"sqlite:///{gradebook}"
    autograded, feedback = out / "autograded", out / "feedback"
    common = [
        f"--CourseDirectory.root={root}",
        f"--CourseDirectory.db_url={db_url}",
        f"--CourseDirectory.submitted_directory={submitted}",
        f"--CourseDirectory.autograded_directory={autograded}",
        f"--CourseDirectory.feedback_directory={feedback}",
    ]
    limit = student_limit or timeout * (_graded_cells(assignment, root) + 2) + 120
    names = notebook_names(assignment, root)
    results: list[StudentResult] = []

    with _exclusive(out / "gradebook.db.lock"), _kernel_path() as kernel_dir, \
            tempfile.TemporaryDirectory(prefix="lensref-release-") as release:
        bin_dir = str(Path(sys.executable).parent)  # nbgrader runs `alembic` from the venv's bin/
        env = dict(os.environ, PATH=os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
                   JUPYTER_PATH=os.pathsep.join([kernel_dir, os.environ.get("JUPYTER_PATH", "")]).rstrip(os.pathsep),
                   PYTHONWARNINGS="ignore", TRANSFORMERS_VERBOSITY="error", TOKENIZERS_PARALLELISM="false")
        run = _nbgrader(["generate_assignment", assignment, "--force", f"--CourseDirectory.release_directory={release}",
                         *common], root, env, 300)
        if run.rc != 0:
            raise LensError(f"nbgrader generate_assignment {assignment} failed: {_last_error(run.output)}")

        for student in students:
            t0 = time.time()
            folder = submitted / student / assignment
            problems = [f"{folder / f'{n}.ipynb'} {why}" for n in names
                        if (folder / f"{n}.ipynb").exists() and (why := notebook_problem(folder / f"{n}.ipynb"))]
            if problems:
                result = StudentResult(student, MALFORMED, message="; ".join(problems) + " - skipped")
                results.append(result)
                progress(f"{student}: malformed: {result.message}")
                continue
            done = autograded / student / assignment
            if not force and done.is_dir() and _newest_mtime(done) >= _newest_mtime(folder):
                scores = _read_scores(db_url, assignment, student)
                if scores is not None:
                    results.append(StudentResult(student, UNCHANGED, *scores[:2], cells=scores[2],
                                                 message="already graded (use --force to regrade)"))
                    continue
            log = autograded / student / f"{assignment}.grading.log"
            run = _nbgrader(["autograde", assignment, f"--student={student}", "--force",
                             f"--Execute.timeout={timeout}", *common], root, env, limit, log)
            scores = _read_scores(db_url, assignment, student)
            if run.timed_out:
                result = StudentResult(student, TIMED_OUT, message=f"grading took over {limit:.0f} s and was stopped; "
                                       f"no new score recorded (log: {log})")
            elif run.rc != 0 or scores is None:
                result = StudentResult(student, FAILED, message=f"nbgrader autograde failed: {_last_error(run.output)} (log: {log})")
            else:
                result = StudentResult(student, GRADED, *scores[:2], cells=scores[2])
            result.seconds = time.time() - t0
            results.append(result)
            score = "-" if result.score is None else f"{result.score:g}/{result.max_score:g}"
            progress(f"{student}: {result.status} {score} ({result.seconds:.1f} s)")

        if any(r.status == GRADED for r in results):
            run = _nbgrader(["generate_feedback", assignment, "--force", *common], root, env, 600)
            if run.rc != 0:
                progress(f"warning: nbgrader generate_feedback reported a problem: {_last_error(run.output)}")

    csv_path = out / f"grades-{assignment}.csv"
    write_csv(csv_path, assignment, results)
    return GradeReport(assignment, results, csv_path, feedback, gradebook, time.time() - start)


def write_csv(path: Path, assignment: str, results: list[StudentResult]) -> None:
    """One row per student: total, status, and the score of every graded cell; written via a temp file."""
    cell_names = sorted({name for r in results for name in r.cells})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", "assignment", "score", "max_score", "status", *cell_names, "message"])
    for r in results:
        writer.writerow([r.student, assignment, "" if r.score is None else f"{r.score:g}",
                         "" if r.max_score is None else f"{r.max_score:g}", r.status,
                         *(f"{r.cells[c]:g}" if c in r.cells else "" for c in cell_names), r.message])
    from ..commands._common import write_atomically

    write_atomically(path, buffer.getvalue())
