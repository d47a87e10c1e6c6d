"""What an assignment grades, read from the instructor's source notebooks (``solutions/<a>/*.ipynb``).

Every graded test cell is a list of check calls, visible and hidden alike, each of one form only::

    checks.check_<name>(<learner function>, option=<literal>, ..., lm=lensref.tiny_model("<family>", seed=<int>))

The plan turns them into data: which exercise, which learner function, which options. The grader makes the
cases from it, the sandbox calls the learner's functions on them, the judge scores them. A test cell holding
anything else is an instructor's mistake, reported by cell and line before any submission runs.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import LensError
from .. import cells


@dataclass(frozen=True)
class CheckCall:
    """One ``checks.check_<name>(...)`` call of a test cell: its exercise, the learner function, its options."""

    exercise: str  # e.g. "capture_states" (check_capture_states)
    function: str  # the learner's function the check is given
    options: dict[str, Any]  # keyword arguments; a tiny model as {"family": ..., "seed": ...} under "lm"


@dataclass(frozen=True)
class TestCell:
    """A graded test cell: its points, earned when every one of its check calls passes."""

    notebook: str
    grade_id: str
    points: float
    calls: tuple[CheckCall, ...]


@dataclass
class NotebookPlan:
    """What one notebook of the assignment grades: its test cells, and the grade ids of its solution cells."""

    name: str  # the notebook's stem, e.g. "logit_lens"
    path: Path
    test_cells: list[TestCell] = field(default_factory=list)
    solution_cells: list[str] = field(default_factory=list)

    @property
    def max_score(self) -> float:
        """The notebook's points: its test cells' together."""
        return sum(cell.points for cell in self.test_cells)


def _model_option(node: ast.AST, where: str) -> dict[str, Any]:
    """``lensref.tiny_model("gpt2", seed=3)`` -> ``{"family": "gpt2", "seed": 3}``."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "tiny_model"):
        raise LensError(f'{where}: lm= must be lensref.tiny_model("<family>", seed=<int>)')
    args = [ast.literal_eval(a) for a in node.args]
    kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    family = args[0] if args else kwargs.pop("family", "llama")
    seed = args[1] if len(args) > 1 else kwargs.pop("seed", 0)
    if set(kwargs) - {"family", "seed"}:
        raise LensError(f"{where}: tiny_model() takes only a family and a seed here")
    return {"family": family, "seed": seed}


def parse_test_cell(source: str, where: str) -> tuple[CheckCall, ...]:
    """The check calls of one test cell (comments and the hidden-test markers are comments to Python)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise LensError(f"{where}: not valid Python ({exc.msg}, line {exc.lineno})") from None
    calls = []
    for stmt in tree.body:
        line = f"{where}, line {stmt.lineno}"
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if not isinstance(call, ast.Call):
            raise LensError(f"{line}: a graded test cell may only hold calls checks.check_<name>(<function>, ...)")
        func = call.func
        if not (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "checks"
            and func.attr.startswith("check_")
            and len(call.args) == 1
            and isinstance(call.args[0], ast.Name)
        ):
            raise LensError(f"{line}: a graded test cell may only hold calls checks.check_<name>(<function>, ...)")
        options: dict[str, Any] = {}
        for kw in call.keywords:
            if kw.arg is None:
                raise LensError(f"{line}: no **options in a graded test cell")
            if kw.arg == "lm":
                options["lm"] = _model_option(kw.value, line)
                continue
            try:
                options[kw.arg] = _plain(ast.literal_eval(kw.value))
            except ValueError:
                raise LensError(f"{line}: option {kw.arg}= must be a literal") from None
        target = call.args[0]
        assert isinstance(target, ast.Name)
        calls.append(CheckCall(func.attr.removeprefix("check_"), target.id, options))
    if not calls:
        raise LensError(f"{where}: a graded test cell with no check")
    return tuple(calls)


def _plain(value: object) -> object:
    """Tuples become lists: options travel as JSON."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def load_plan(root: Path, assignment: str) -> list[NotebookPlan]:
    """One :class:`NotebookPlan` per source notebook of ``assignment``, in name order."""
    import nbformat

    from ..checks import EXERCISES

    folder = Path(root) / "solutions" / assignment
    plans = []
    for path in sorted(folder.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]  # nbformat is unannotated
        plan = NotebookPlan(path.stem, path)
        for index, cell in enumerate(nb.cells):
            gid = cells.grade_id(cell)
            if cells.is_solution(cell) and gid:
                plan.solution_cells.append(gid)
            if cells.is_graded_code(cell):
                where = f"{path.relative_to(root)} cell {gid or index}"
                if gid is None:
                    raise LensError(f"{where}: a graded cell without a grade_id")
                calls = parse_test_cell(cell.source, where)
                unknown = [c.exercise for c in calls if c.exercise not in EXERCISES]
                if unknown:
                    raise LensError(f"{where}: no check named check_{unknown[0]} in lensref.course.checks")
                plan.test_cells.append(TestCell(path.stem, gid, cells.points(cell), calls))
        plans.append(plan)
    if not plans:
        raise LensError(f"no notebooks in {folder}")
    return plans
