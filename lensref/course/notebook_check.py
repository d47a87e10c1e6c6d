"""``lensref check``: run a learner's exercise notebook headless and say, one line per exercise, what passes.

The exercises are the notebook's graded test cells (nbgrader metadata ``grade: true`` on a code cell, with
its ``points``). Every cell runs in order in a fresh kernel of this Python (errors do not stop the run, as
in a learner's own "Run all"); each test cell then gives one line: the visible check's ``✓ ...`` line, or
its one-line diagnosis (the :class:`~lensref.course.checks.CheckFailed` message, or the error the cell
raised). Unlike ``nbgrader validate``, the result is also an exit status. The notebook file is never
written: it runs from a copy in memory, in its own folder (so relative paths work as in Jupyter).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LensError
from .cells import is_test_cell, nbgrader_meta, read_notebook

if TYPE_CHECKING:
    from jupyter_client.manager import AsyncKernelManager
    from nbformat import NotebookNode

DEFAULT_TIMEOUT = 300  # seconds a cell may run before it is interrupted (an endless loop, say)
PASS, FAIL = "✓", "✗"


@dataclass(frozen=True)
class ExerciseResult:
    """One exercise's line of ``lensref check``: its test cell, points, and whether its visible check passed."""

    grade_id: str  # the test cell's nbgrader id, e.g. "test_capture_states"
    name: str  # the exercise, e.g. "capture_states"
    points: float
    passed: bool
    message: str  # one line: the check's "✓ ..." line without the mark, or what went wrong

    @property
    def score(self) -> float:
        """The exercise's points if it passed, else 0."""
        return self.points if self.passed else 0.0

    def line(self) -> str:
        """The exercise's line: ✓ or ✗, points, and the check's message."""
        return f"{PASS if self.passed else FAIL} {self.score:g}/{self.points:g}  {self.message}"


@dataclass(frozen=True)
class NotebookCheck:
    """What ``lensref check`` found in one notebook: every exercise's result and how long the run took."""

    path: Path
    exercises: tuple[ExerciseResult, ...]
    seconds: float

    @property
    def passed(self) -> bool:
        """Whether every exercise passed."""
        return all(e.passed for e in self.exercises)

    @property
    def score(self) -> float:
        """The points the exercises that passed earned."""
        return sum(e.score for e in self.exercises)

    @property
    def max_score(self) -> float:
        """The notebook's points: every exercise's together."""
        return sum(e.points for e in self.exercises)

    def summary(self) -> str:
        """The run in one line: the points, how many exercises pass, the seconds."""
        n_ok = sum(e.passed for e in self.exercises)
        return (
            f"visible checks: {self.score:g}/{self.max_score:g} points, {n_ok} of {len(self.exercises)} "
            f"exercises pass ({self.seconds:.0f} s)"
        )


def exercise_name(grade_id: str) -> str:
    """The exercise a test cell checks: its grade id without ``test_``."""
    return grade_id[len("test_") :] if grade_id.startswith("test_") else grade_id


def check_notebook(
    path: str | Path, *, timeout: int = DEFAULT_TIMEOUT, on_result: Callable[[ExerciseResult], None] | None = None
) -> NotebookCheck:
    """Run every cell of the notebook at ``path``; one :class:`ExerciseResult` per graded test cell.

    ``on_result`` is called with each result as soon as its cell has run (to print progress).
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    path = Path(path)
    nb = read_notebook(path)
    tests = [i for i, cell in enumerate(nb.cells) if is_test_cell(cell)]
    if not tests:
        raise LensError(
            f"{path}: no graded exercises (no nbgrader test cells): is it one of the course's "
            f"notebooks (exercises/<assignment>/*.ipynb)?"
        )
    results: dict[int, ExerciseResult] = {}
    first_error: dict[int, str] = {}  # test cell index -> the first error in the cells since the last test cell

    def executed(cell: NotebookNode, cell_index: int, execute_reply: dict[str, Any] | None = None, **_: Any) -> None:
        error = _error_line(cell)
        if cell_index in tests:
            before = first_error.pop(cell_index, None)
            results[cell_index] = _result(cell, error, before)
            if on_result:
                on_result(results[cell_index])
        elif error:
            following = next((t for t in tests if t > cell_index), None)
            if following is not None and following not in first_error:
                first_error[following] = f"{_cell_label(cell, cell_index)} failed first: {error}"

    client = NotebookClient(
        nb,
        timeout=timeout,
        allow_errors=True,
        interrupt_on_timeout=True,
        km=_kernel_manager(),
        on_cell_executed=executed,
        resources={"metadata": {"path": str(path.resolve().parent)}},
    )
    start = time.perf_counter()
    stopped = ""
    try:
        client.execute(stderr=subprocess.DEVNULL)  # the kernel's own log lines; cell output comes over Jupyter
    except DeadKernelError:
        stopped = "not run: the kernel died in an earlier cell (out of memory, or the process was killed)"
    except Exception as exc:  # the kernel did not start, or nbclient gave up
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        stopped = f"not run: the notebook stopped ({type(exc).__name__}: {first})"
    seconds = time.perf_counter() - start
    out = []
    for i in tests:
        if i not in results:
            meta = nbgrader_meta(nb.cells[i])
            results[i] = ExerciseResult(
                meta.get("grade_id", f"cell {i + 1}"),
                exercise_name(meta.get("grade_id", "")),
                float(meta.get("points") or 0),
                False,
                f"{exercise_name(meta.get('grade_id', ''))}: {stopped or 'not run'}",
            )
            if on_result:
                on_result(results[i])
        out.append(results[i])
    return NotebookCheck(path, tuple(out), seconds)


def _kernel_manager() -> AsyncKernelManager:
    """A kernel of the Python running this command (the course's), whatever kernels are installed elsewhere."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    specs = KernelSpecManager(kernel_dirs=[], ensure_native_kernel=True)
    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs)


def _cell_label(cell: NotebookNode, index: int) -> str:
    grade_id = nbgrader_meta(cell).get("grade_id")
    return f"your cell {grade_id!r}" if grade_id and nbgrader_meta(cell).get("solution") else f"cell {index + 1}"


def _error_line(cell: NotebookNode) -> str | None:
    """The cell's error as one line (``None`` if it ran cleanly)."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            ename, evalue = output.get("ename", "Error"), " ".join(str(output.get("evalue", "")).split())
            if ename == "KeyboardInterrupt":
                return "stopped: it ran too long (an endless loop?) and was interrupted"
            if ename == "CheckFailed":
                return evalue
            return f"{ename}: {evalue}".rstrip(": ")
    return None


def _result(cell: NotebookNode, error: str | None, earlier: str | None) -> ExerciseResult:
    meta = nbgrader_meta(cell)
    grade_id = meta.get("grade_id", "")
    name = exercise_name(grade_id)
    points = float(meta.get("points") or 0)
    if error is None:
        text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        mark = next((line for line in text.splitlines() if line.startswith(PASS)), None)
        return ExerciseResult(grade_id, name, points, True, mark[len(PASS) :].strip() if mark else f"{name}: passed")
    if error.startswith("NameError") and earlier:
        error = earlier
    if not error.startswith(f"{name}:"):
        error = f"{name}: {error}"
    return ExerciseResult(grade_id, name, points, False, error)
