"""The contract between the instructor's machine and whoever runs and judges a submission.

The instructor makes a :class:`GradingTask` per student (:func:`make_task`): the sandbox's files (a
:class:`~.jobs.Job`) and what the judge needs (a :class:`JudgeSpec`: the test cells, the cases, the learner's code
to inspect, the instructor's notebooks for the feedback page). A worker runs the job and judges it in a process of
its own (:mod:`.worker`) and sends back a :class:`Graded`: scores, verdicts, the pages and files to keep. The
instructor only records it (:mod:`.record`). Everything here is plain data that pickles, for Dask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import cases, layout
from .jobs import Job
from .judge import CellVerdict
from .limits import Limits
from .plan import NotebookPlan, TestCell, load_plan


@dataclass(frozen=True)
class GradingSetup:
    """One grading run's fixed inputs, read once on the instructor's machine."""

    assignment: str
    root: Path
    out: Path
    plans: tuple[NotebookPlan, ...]
    sources: dict[str, bytes]  # notebook -> the instructor's source notebook, as the judge gets it (feedback pages)
    source_notebooks: dict[str, Any]  # the same, parsed once here (merged into every submission)
    forbidden: dict[str, tuple[str, ...]]  # exercise -> library names it must not call
    timeout: float  # seconds per cell
    limits: Limits
    sandboxed: bool
    wall_s: float  # the whole run's limit: every code cell at its limit, plus start-up

    @classmethod
    def read(
        cls, assignment: str, root: Path, out: Path, timeout: float, limits: Limits, sandboxed: bool
    ) -> GradingSetup:
        """The run's fixed inputs for ``assignment``: its plans and source notebooks under ``root``, the
        forbidden names, the limits, and the whole run's time limit."""
        import nbformat

        from ..checks import EXERCISES

        plans = tuple(load_plan(root, assignment))
        sources = {p.name: p.path.read_bytes() for p in plans}
        parsed = {name: nbformat.reads(data.decode("utf-8"), as_version=4) for name, data in sources.items()}  # type: ignore[no-untyped-call]  # nbformat is unannotated
        code_cells = sum(1 for nb in parsed.values() for c in nb.cells if c.cell_type == "code")
        return cls(
            assignment,
            root,
            out,
            plans,
            sources,
            parsed,
            {name: tuple(ex.forbidden) for name, ex in EXERCISES.items()},
            timeout,
            limits,
            sandboxed,
            timeout * (code_cells + 4) + 180,
        )

    @property
    def db_url(self) -> str:
        """The gradebook's SQLAlchemy URL (``gradebook.db`` in the output folder)."""
        return f"sqlite:///{self.out / 'gradebook.db'}"

    @property
    def notebooks(self) -> list[str]:
        """The assignment's notebooks by name, in plan order."""
        return [p.name for p in self.plans]

    def spec(self, max_restarts: int = 3) -> layout.JobSpec:
        """The ``job.json`` every submission's run gets."""
        return layout.JobSpec(tuple(self.notebooks), self.timeout, max_restarts=max_restarts)


@dataclass
class JudgeSpec:
    """What the judge needs besides the run's files."""

    assignment: str
    student: str
    test_cells: tuple[TestCell, ...]
    cases: dict[cases.CellKey, cases.CellCases]
    learner_code: list[str]
    forbidden: dict[str, tuple[str, ...]]
    run_notebooks: dict[str, bytes]  # notebook -> as handed to the sandbox (outputs empty)
    sources: dict[str, bytes]
    notes: list[str]  # found while preparing (a renamed notebook)
    wall_s: float
    memory_mb: int


@dataclass
class GradingTask:
    """One student's task: the sandbox's job, and what the judge needs for its run."""

    student: str
    job: Job
    judge: JudgeSpec


@dataclass
class Graded:
    """A judged run, ready to record: the instructor writes these, nothing more."""

    student: str
    points: dict[cases.CellKey, float]
    verdicts: list[CellVerdict]
    notes: list[str]
    executed: dict[str, bytes]  # notebook -> the run's notebook with outputs (re-serialized, size-capped)
    cell_records: dict[str, bytes]  # notebook -> per-cell status and seconds (as the runner wrote them)
    pages: dict[str, str]  # notebook -> feedback HTML
    log: str
    worker: str
    phases: dict[str, float] = field(default_factory=dict)  # seconds on the worker: sandbox, judge
    warm_s: float = 0.0  # its sandbox's warm-up before the job came (on idle CPU)


def make_task(setup: GradingSetup, student: str, notebooks: dict[str, Path], notes: list[str]) -> GradingTask:
    """Everything the sandbox and the judge need for ``student``, as data."""
    import nbformat

    from .submissions import prepare, read_submission

    drawn = cases.draw(setup.assignment, student, list(setup.plans))
    learner_code: list[str] = []
    run_notebooks: dict[str, bytes] = {}
    for plan in setup.plans:
        prepared = prepare(read_submission(notebooks[plan.name]), setup.source_notebooks[plan.name], plan.name)
        learner_code += prepared.learner_code
        run_notebooks[plan.name] = nbformat.writes(prepared.notebook).encode()  # type: ignore[no-untyped-call]  # nbformat is unannotated
    files = layout.job_files(setup.spec(), run_notebooks, cases.probe_files(list(setup.plans), drawn))
    job = Job(student, files, setup.limits, setup.wall_s, setup.sandboxed)
    spec = JudgeSpec(
        setup.assignment,
        student,
        tuple(cell for plan in setup.plans for cell in plan.test_cells),
        drawn,
        learner_code,
        setup.forbidden,
        run_notebooks,
        setup.sources,
        list(notes),
        setup.wall_s,
        setup.limits.memory_mb,
    )
    return GradingTask(student, job, spec)
