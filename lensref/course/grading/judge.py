"""The verdict: the grader compares what the sandbox recorded with references it computes itself.

This runs in the grader's own process, which never runs learner code: it reads the recorded answers as data
(:mod:`.wire`), rebuilds each case's inputs from its record, and lets the exercise's judge compute its reference
and diagnose.
A test cell earns its points when every check call in it passes on every case (as the visible check would);
otherwise 0, with the first failure's one-line diagnosis for the feedback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .plan import TestCell

if TYPE_CHECKING:
    from ..checks import Case


@dataclass
class CellVerdict:
    """One test cell's verdict: its points (all or none) and the ✓ or ✗ line of each check call, for the feedback."""

    notebook: str
    grade_id: str
    points: float
    max_points: float
    lines: list[str] = field(default_factory=list)  # one ✓ or ✗ line per check call

    @property
    def passed(self) -> bool:
        """Whether the cell earned all its points."""
        return self.points == self.max_points


def _why_missing(status: str | None, error: str) -> str:
    return {
        "timeout": "the grading cell ran past its time limit (is one of your functions stuck in a loop?)",
        "stuck": "the grading cell ran past its time limit and ignored the interrupt; the kernel was restarted",
        "died": "the kernel died while grading this exercise (a crash or the memory limit)",
        "skipped": "the notebook stopped before this exercise (too many restarts)",
        "error": "the grading cell failed before it could record your answers (see its output)",
        None: "this exercise was never reached (the notebook stopped earlier)",
    }.get(status, f"no answers were recorded ({error})")


def judge_cell(
    cell: TestCell,
    cases: list[list[Case]],
    files: Mapping[str, bytes],
    cell_status: str | None,
    uses_reference: dict[str, list[str]],
) -> CellVerdict:
    """Score one test cell; ``cases[i]`` are the cases of ``cell.calls[i]``; ``files`` is the run's result
    (name -> bytes), which holds the recorded answers where :func:`.layout.answers` says."""
    from ..checks import EXERCISES, CheckFailed, Outcome, unwrap
    from . import layout, wire

    verdict = CellVerdict(cell.notebook, cell.grade_id, 0.0, cell.points)
    flagged = [c for c in cell.calls if c.exercise in uses_reference]
    if flagged:
        call = flagged[0]
        names = ", ".join(uses_reference[call.exercise])
        verdict.lines.append(
            f"✗ {call.exercise}: calls {names}, the reference it was asked to write, instead of "
            "computing it; scored 0 and flagged for the instructor"
        )
        return verdict
    try:
        answers, tensors = layout.answers(cell.notebook, cell.grade_id)
        recorded = wire.loads(files.get(answers), files.get(tensors))
    except wire.WireError as exc:
        verdict.lines.append(f"✗ {cell.calls[0].exercise}: {_why_missing(cell_status, str(exc))}")
        return verdict
    if not (
        isinstance(recorded, list)
        and len(recorded) == len(cell.calls)
        and all(isinstance(r, list) and len(r) == len(c) for r, c in zip(recorded, cases))
    ):
        verdict.lines.append(f"✗ {cell.calls[0].exercise}: the recorded answers do not match the cases asked")
        return verdict
    all_passed = True
    for call, call_cases, answers in zip(cell.calls, cases, recorded):
        exercise = EXERCISES[call.exercise]
        detail = ""
        try:
            for case, answer in zip(call_cases, answers):
                if not isinstance(answer, dict) or not ({"value"} == set(answer) or {"error"} == set(answer)):
                    raise CheckFailed(call.exercise, "the recorded answer is malformed.")
                error = answer.get("error")
                if error is not None and not isinstance(error, str):
                    raise CheckFailed(call.exercise, "the recorded answer is malformed.")
                got = unwrap(call.exercise, Outcome(answer.get("value"), error))
                try:
                    detail = exercise.judge(case, got)
                except CheckFailed:
                    raise
                except Exception as exc:  # an answer of a shape the judge could not even compare
                    raise CheckFailed(
                        call.exercise,
                        f"your answer could not be checked ({type(exc).__name__}).",
                        "return the type and shape the exercise asks for.",
                    ) from None
            verdict.lines.append(f"✓ {call.exercise}: {detail}".rstrip(": "))
        except CheckFailed as failure:
            all_passed = False
            verdict.lines.append(f"✗ {failure}")
    verdict.points = cell.points if all_passed else 0.0
    return verdict
