"""The sandbox's files, described once: what the grader hands in, what the runner and the probe write, what comes back.

A run's working folder (the learner's home inside the sandbox) holds::

    job.json                          JobSpec: which notebooks, the time limits (written last: the run starts)
    run/<notebook>.ipynb              the notebook to run (the submission, locked cells and probes put in)
    cases/<notebook>/<grade_id>.json  the cases each probe asks the learner's functions
    executed/<notebook>.ipynb         the notebook with its outputs, for feedback         (written by the runner)
    executed/<notebook>.cells.json    how each cell ended and how long it took            (written by the runner)
    outputs/<notebook>/<grade_id>.json|.safetensors  the recorded answers              (written by the probe)
    .warm                             a warm sandbox's runner finished its warm-up        (written by the runner)
    .tmp/                             the sandbox's /tmp (a link to here): it counts against the same disk cap

In the sandbox the home is a tmpfs capped at ``Limits.disk_mb``, and ``executed/`` and ``outputs/`` are a small tmpfs
each (room for the results even when the learner filled the home); see :mod:`.sandbox`.

Grader, runner, probe, judge and the job plumbing name these paths only through this module. Everything under
``executed/`` and ``outputs/`` was written beside learner code: it comes back as bytes and is read as data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath

JOB = "job.json"
WARM_MARK = ".warm"
RUN, CASES, EXECUTED, OUTPUTS = "run", "cases", "executed", "outputs"
RESULT_FOLDERS = (EXECUTED, OUTPUTS)  # what a run leaves that goes back to the grader
JOB_PART = f".{JOB}.part"  # job.json while it is being written: renamed to JOB when complete
TMP = ".tmp"  # the sandbox's /tmp points here, so it falls under the home's disk cap


def run_notebook(notebook: str) -> str:
    """``run/<notebook>.ipynb``: the notebook the runner runs."""
    return f"{RUN}/{notebook}.ipynb"


def cases(notebook: str, grade_id: str) -> str:
    """``cases/<notebook>/<grade_id>.json``: the cases the grader drew for one test cell's probe."""
    return f"{CASES}/{notebook}/{grade_id}.json"


def executed_notebook(notebook: str) -> str:
    """``executed/<notebook>.ipynb``: the notebook as it ran, with its outputs (for the feedback page)."""
    return f"{EXECUTED}/{notebook}.ipynb"


def executed_cells(notebook: str) -> str:
    """``executed/<notebook>.cells.json``: what happened to each cell of the run."""
    return f"{EXECUTED}/{notebook}.cells.json"


def answers_stem(notebook: str, grade_id: str) -> str:
    """``outputs/<notebook>/<grade_id>``: the probe writes ``.json`` and ``.safetensors`` beside it."""
    return f"{OUTPUTS}/{notebook}/{grade_id}"


def answers(notebook: str, grade_id: str) -> tuple[str, str]:
    """The probe's two files for one test cell: ``outputs/<notebook>/<grade_id>.json`` and ``.safetensors``."""
    stem = answers_stem(notebook, grade_id)
    return f"{stem}.json", f"{stem}.safetensors"


def is_safe(name: str) -> bool:
    """A relative path with no ``..``, no absolute part and no empty or hidden-dot component tricks."""
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and all(part not in ("", ".", "..") for part in path.parts)


def is_result(name: str) -> bool:
    """A path that may come back from a run: a safe path under one of :data:`RESULT_FOLDERS`."""
    return is_safe(name) and PurePosixPath(name).parts[0] in RESULT_FOLDERS and len(PurePosixPath(name).parts) > 1


@dataclass(frozen=True)
class JobSpec:
    """``job.json``: what the runner does with the files it was handed."""

    notebooks: tuple[str, ...]
    cell_timeout: float
    interrupt_grace: float = 10
    max_restarts: int = 3
    startup_timeout: float = 120

    def to_bytes(self) -> bytes:
        """The contents of ``job.json``."""
        return json.dumps({**asdict(self), "notebooks": list(self.notebooks)}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> JobSpec:
        """The spec in ``job.json``'s contents (a limit it leaves out at its default)."""
        raw = json.loads(data)
        return cls(
            notebooks=tuple(str(n) for n in raw["notebooks"]),
            cell_timeout=float(raw["cell_timeout"]),
            interrupt_grace=float(raw.get("interrupt_grace", 10)),
            max_restarts=int(raw.get("max_restarts", 3)),
            startup_timeout=float(raw.get("startup_timeout", 120)),
        )


def job_files(
    spec: JobSpec, notebooks: dict[str, bytes], case_files: dict[tuple[str, str], bytes] | None = None
) -> dict[str, bytes]:
    """The files a job hands to its sandbox: each notebook to run, each probe's cases, and ``job.json``."""
    files = {run_notebook(name): data for name, data in notebooks.items()}
    for (notebook, grade_id), data in (case_files or {}).items():
        files[cases(notebook, grade_id)] = data
    files[JOB] = spec.to_bytes()
    return files
