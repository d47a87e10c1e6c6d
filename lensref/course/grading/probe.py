"""The grading cell inside the sandbox: call the learner's functions on the grader's cases, write what they return.

Each graded test cell of the notebook the sandbox runs is replaced by ``record(notebook, grade_id, globals())``.
It reads ``cases/<notebook>/<grade_id>.json`` (written by the grader), rebuilds each case's inputs, calls the
learner's function, and writes every outcome (a value, or the one-line error it raised) to
``outputs/<notebook>/<grade_id>`` as JSON + safetensors. It decides nothing: whatever the learner's code does to
this module, to the checks or to torch only changes what is written here, and the grader outside compares that
with a reference it computes itself.
"""

from __future__ import annotations

import json
from pathlib import Path


def record(notebook: str, grade_id: str, namespace: dict) -> None:
    from ..checks import EXERCISES
    from ..checks._core import run_learner
    from . import wire

    plan = json.loads((Path("cases") / notebook / f"{grade_id}.json").read_text())
    results = []
    for call in plan["calls"]:
        exercise = EXERCISES[call["exercise"]]
        fn = namespace.get(call["function"])
        outcomes: list[dict] = []
        if call["function"] not in namespace:  # its cell never ran (stuck, crashed) or it was never written
            missing = f"NameError: name {call['function']!r} is not defined"
            results.append([{"error": missing} for _ in call["cases"]])
            continue
        for case in call["cases"]:
            try:
                args = exercise.inputs(case)
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
    folder = Path("outputs") / notebook
    folder.mkdir(parents=True, exist_ok=True)
    try:
        wire.save(folder / grade_id, results)
    except wire.WireError as exc:  # a return value that is not data: record the reason instead
        safe = [
            [{"error": o["error"]} if "error" in o else _plain_or_error(o["value"]) for o in outcomes]
            for outcomes in results
        ]
        wire.save(folder / grade_id, safe)
        print(f"note: {exc}")
    print(f"recorded {sum(len(o) for o in results)} answer(s) for {grade_id}")


def _plain_or_error(value) -> dict:
    from . import wire

    try:
        wire.encode(value, {})
    except wire.WireError as exc:
        return {"error": f"returned {exc}"}
    return {"value": value}
