"""What a grading run tells the instructor: one :class:`StudentResult` per student, the summary, the CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from . import gradebook
from .status import Status


@dataclass
class StudentResult:
    """One student's line of the report: how the submission ended, its score, and its time and what it went to."""

    student: str
    status: Status
    score: float | None = None
    max_score: float | None = None
    seconds: float = 0.0
    message: str = ""
    cells: dict[str, float] = field(default_factory=dict)
    baseline_seconds: float | None = None  # the notebook run plainly, with --baseline
    phases: dict[str, float] = field(default_factory=dict)  # seconds: prepare, sandbox, judge, record
    warm_s: float = 0.0  # its sandbox's warm-up before the job came (on idle CPU, not in ``seconds``)
    instructor_cpu_s: float = 0.0  # CPU this submission cost the instructor's machine (prepare + record)


@dataclass
class GradeReport:
    """A grading run's outcome: every student's result, and where the CSV, feedback pages and gradebook are."""

    assignment: str
    results: list[StudentResult]
    csv_path: Path
    feedback_dir: Path
    gradebook: Path
    seconds: float
    confinement: str = ""

    def instructor_cpu_per_submission(self) -> float | None:
        """The instructor's machine's CPU seconds per graded submission, on average (None if none was graded)."""
        run = [r.instructor_cpu_s for r in self.results if r.status == Status.GRADED]
        return sum(run) / len(run) if run else None

    def summary(self) -> str:
        """The report in words: a line per student, the instructor's CPU, and where the outputs are."""
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
        cpu = self.instructor_cpu_per_submission()
        if cpu is not None:
            lines.append(
                f"instructor's CPU per graded submission: {cpu:.3f} s (prepare + record; runs and judges elsewhere)"
            )
        lines.append(f"grades: {self.csv_path}")
        lines.append(f"feedback: {self.feedback_dir}/<student>/{self.assignment}/")
        lines.append(f"gradebook: {self.gradebook}")
        return "\n".join(lines)


def write_csv(path: Path, assignment: str, results: list[StudentResult], db_url: str) -> None:
    """One row per student: the gradebook's total and per-cell scores, status and notes; via a temp file."""
    from ...files import write_atomically

    rows = []
    for r in results:
        stored = gradebook.read(db_url, assignment, r.student) if r.status.recorded else None
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
                str(r.status),
                *(f"{s.cells[c]:g}" if s and c in s.cells else "" for c in cell_names),
                spreadsheet_safe(r.message),
            ]
        )
    write_atomically(path, buffer.getvalue())


def spreadsheet_safe(value: str) -> str:
    """A spreadsheet must not read learner-controlled text (file names in notes) as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
