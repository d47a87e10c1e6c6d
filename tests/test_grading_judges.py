"""Judges that run at the same time cannot see each other: every hook-using exercise, judged concurrently in many
rounds, gets exactly the verdicts one-at-a-time judging gives.

The references of these exercises hook the modules of the model they run. Judged in threads over one shared
model, one judge's hook fired inside another's forward pass and correct answers lost points. Each judgment now runs
in a judge process that holds its own models (:mod:`lensref.course.grading.judge_process`); here four threads, each
with its own judge process, judge 50 rounds of correct and wrong answers on a tiny model.
"""

from __future__ import annotations

import random
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "submissions"))
import build  # noqa: E402

from lensref.course.checks import EXERCISES  # noqa: E402
from lensref.course.checks._core import ModelRef  # noqa: E402
from lensref.course.grading import judge_process, layout, wire  # noqa: E402
from lensref.course.grading.jobs import JobResult  # noqa: E402
from lensref.course.grading.judging import judge_run  # noqa: E402
from lensref.course.grading.plan import CheckCall, TestCell  # noqa: E402
from lensref.course.grading.task import JudgeSpec  # noqa: E402

pytestmark = pytest.mark.slow
TINY = {"family": "llama", "seed": 3}
NOTEBOOK = "judged"
# every exercise whose reference runs the model (and so may hook it), with the notebook that holds its solution
HOOKED = {
    "capture_states": ("01-logit-lens", "logit_lens"),
    "lens_logits": ("01-logit-lens", "logit_lens"),
    "answer_ranks": ("02-reading-the-grid", "reading_the_grid"),
    "logit_diff_by_layer": ("03-variants", "variants"),
    "attribute": ("03-variants", "variants"),
    "patch_readout": ("03-variants", "variants"),
}
ROUNDS = 50


def _solutions() -> dict[str, object]:
    """The reference solution of every hooked exercise, run from the instructor's notebooks (setup cells too)."""
    functions = {}
    for exercise, (assignment, notebook) in HOOKED.items():
        nb = nbformat.read(build.ROOT / "solutions" / assignment / f"{notebook}.ipynb", as_version=4)
        namespace: dict = {}
        setup = [c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup"]
        exec("\n".join(setup), namespace)  # noqa: S102  (the instructor's own notebook)
        exec(build.solution_bodies(assignment, notebook)[exercise], namespace)  # noqa: S102
        functions[exercise] = namespace[exercise]
    return functions


def _spoil(value, rng: random.Random):
    """A wrong answer of the same shape and type."""
    if isinstance(value, torch.Tensor):
        return value + (1.0 if value.is_floating_point() else 1)
    if isinstance(value, (list, tuple)):
        return type(value)(_spoil(v, rng) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value + 1
    return value


def _run(tmp: Path, student: str, wrong: set[str], functions) -> tuple[JudgeSpec, JobResult]:
    """A student's recorded answers (right, or wrong for the exercises in ``wrong``) as the sandbox would leave them."""
    rng = random.Random(student)
    cells, cases, files = [], {}, {}
    for exercise in HOOKED:
        grade_id = f"test_{exercise}"
        call = CheckCall(exercise, exercise, {"lm": TINY})
        drawn = EXERCISES[exercise].cases(rng.randrange(2**31), lm=ModelRef(**TINY))
        answers = []
        for case in drawn:
            value = functions[exercise](*EXERCISES[exercise].inputs(case))
            answers.append({"value": _spoil(value, rng) if exercise in wrong else value})
        stem = tmp / student / grade_id
        stem.parent.mkdir(parents=True, exist_ok=True)
        wire.save(stem, [answers])
        json_name, tensor_name = layout.answers(NOTEBOOK, grade_id)
        files[json_name] = stem.with_suffix(".json").read_bytes()
        if stem.with_suffix(".safetensors").exists():
            files[tensor_name] = stem.with_suffix(".safetensors").read_bytes()
        cells.append(TestCell(NOTEBOOK, grade_id, 1.0, (call,)))
        cases[(NOTEBOOK, grade_id)] = [drawn]
    nb = nbformat.v4.new_notebook()
    for cell in cells:
        code = nbformat.v4.new_code_cell("pass")
        code.metadata["nbgrader"] = {"grade": True, "grade_id": cell.grade_id, "points": 1}
        nb.cells.append(code)
    data = nbformat.writes(nb).encode()
    spec = JudgeSpec(
        "concurrency", student, tuple(cells), cases, [], {}, {NOTEBOOK: data}, {NOTEBOOK: data}, [], 60.0, 1024
    )
    return spec, JobResult(student, files)


def _verdicts(graded) -> list[tuple[str, float, tuple[str, ...]]]:
    return [(v.grade_id, v.points, tuple(v.lines)) for v in graded.verdicts]


def test_hook_using_judges_run_concurrently_give_the_one_at_a_time_verdicts(tmp_path):
    functions = _solutions()
    exercises = list(HOOKED)
    students = {
        "all_right": set(),
        "all_wrong": set(exercises),
        "first_half_wrong": set(exercises[: len(exercises) // 2]),
        "second_half_wrong": set(exercises[len(exercises) // 2 :]),
    }
    runs = {name: _run(tmp_path, name, wrong, functions) for name, wrong in students.items()}
    serial = {name: _verdicts(judge_run(spec, run)) for name, (spec, run) in runs.items()}
    for name, wrong in students.items():  # the serial verdicts are the right ones
        assert [(gid, points) for gid, points, _ in serial[name]] == [
            (f"test_{ex}", 0.0 if ex in wrong else 1.0) for ex in exercises
        ], serial[name]

    order = [name for _ in range(ROUNDS) for name in students]
    random.Random(7).shuffle(order)
    try:
        with ThreadPoolExecutor(max_workers=4) as threads:
            concurrent = list(threads.map(lambda name: (name, _verdicts(judge_process.judge(*runs[name]))), order))
    finally:
        judge_process.release_all()
    differing = [(name, got) for name, got in concurrent if got != serial[name]]
    assert len(concurrent) == ROUNDS * len(students)
    assert not differing, differing[:3]


def test_a_judge_process_that_dies_is_replaced_and_the_run_judged_again(tmp_path):
    spec, run = _run(tmp_path, "ada", set(), _solutions())
    try:
        first = judge_process.for_this_thread()
        first.proc.kill()
        first.proc.wait()
        graded = judge_process.judge(spec, run)
        assert judge_process.for_this_thread() is not first
    finally:
        judge_process.release_all()
    assert [v.points for v in graded.verdicts] == [1.0] * len(HOOKED)
