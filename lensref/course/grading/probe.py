"""The grading cell inside the sandbox: call the learner's functions on the grader's cases, write what they return.

Each graded test cell of the notebook the sandbox runs is replaced by ``record(notebook, grade_id, globals())``.
It reads ``cases/<notebook>/<grade_id>.json`` (written by the grader), rebuilds each case (its exercise's
``case_from_data``) and the case's inputs, calls the learner's function, and writes every outcome (a value, or the
one-line error it raised) to ``outputs/<notebook>/<grade_id>`` as JSON + safetensors. It decides nothing: whatever
the learner's code does to this module, to the checks or to torch only changes what is written here, and the grader
outside compares that with a reference it computes itself.

``outputs/`` has room of its own, beside the learner's capped home; answers that cannot be written all the same (a
learner who filled ``outputs/`` too) are one line in the cell's output and in the log (that test then has no
answers), never an error that stops the notebook.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from . import layout


def record(notebook: str, grade_id: str, namespace: dict[str, Any]) -> None:
    """The probe: call the learner's functions on this test cell's cases and write every outcome."""
    from ..checks import EXERCISES, run_learner

    plan = json.loads(Path(layout.cases(notebook, grade_id)).read_text())
    results = []
    for call in plan["calls"]:
        exercise = EXERCISES[call["exercise"]]
        fn = namespace.get(call["function"])
        outcomes: list[dict[str, Any]] = []
        if call["function"] not in namespace:  # its cell never ran (stuck, crashed) or it was never written
            missing = f"NameError: name {call['function']!r} is not defined"
            results.append([{"error": missing} for _ in call["cases"]])
            continue
        for case in call["cases"]:
            try:
                args = exercise.inputs(exercise.case_from_data(case))
            except Exception as exc:  # the kernel was tampered with: nothing to record for this case
                outcomes.append(
                    {
                        "error": f"InputError: the grader's inputs could not be rebuilt in your kernel "
                        f"({type(exc).__name__}; did your code change torch or lensref?)"
                    }
                )
                continue
            outcome = run_learner(fn, *args)  # type: ignore[arg-type]  # not callable is an outcome too
            outcomes.append({"value": outcome.value} if outcome.error is None else {"error": outcome.error})
        results.append(outcomes)
    _save(Path(layout.answers_stem(notebook, grade_id)), grade_id, results)


def _save(stem: Path, grade_id: str, results: list[list[dict[str, Any]]]) -> None:
    """Write the answers, or say in one line why they could not be written."""
    from safetensors import SafetensorError

    from ...errors import LensError
    from .runner import one_line

    try:
        _write_answers(stem, results)
    except (OSError, SafetensorError, LensError) as exc:  # a full outputs/, or a folder the learner removed
        _failed(grade_id, one_line(exc))
        return
    print(f"recorded {sum(len(o) for o in results)} answer(s) for {grade_id}")


def _failed(grade_id: str, why: str) -> None:
    line = f"error: the answers for {grade_id} could not be written ({why}); this test scores nothing"
    print(line)
    print(f"probe: {line}", file=sys.__stderr__, flush=True)  # the kernel's own stderr: the grader's log


def _write_answers(stem: Path, results: list[list[dict[str, Any]]]) -> None:
    from . import wire

    stem.parent.mkdir(parents=True, exist_ok=True)
    try:
        wire.save(stem, results)
    except wire.WireError as exc:  # a return value that is not data: record the reason instead
        safe = [
            [{"error": o["error"]} if "error" in o else _plain_or_error(o["value"]) for o in outcomes]
            for outcomes in results
        ]
        wire.save(stem, safe)
        print(f"note: {exc}")


def _plain_or_error(value: Any) -> dict[str, Any]:
    from . import wire

    try:
        wire.encode(value, {})
    except wire.WireError as exc:
        return {"error": f"returned {exc}"}
    return {"value": value}
