"""The released notebooks (exercises/) are exactly what nbgrader generates from solutions/, and leak nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
pytestmark = pytest.mark.slow  # runs nbgrader generate_assignment on every assignment
LEAKS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


def _normalized(path: Path) -> dict:
    """The parts of a notebook that matter: cell types, ids, sources, metadata, notebook metadata."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = [
        {
            "cell_type": c["cell_type"],
            "id": c.get("id"),
            "metadata": c.get("metadata", {}),
            "source": "".join(c["source"]) if isinstance(c["source"], list) else c["source"],
            "outputs": c.get("outputs", []),
        }
        for c in nb["cells"]
    ]
    return {"metadata": nb.get("metadata", {}), "cells": cells}


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    """Run ``nbgrader generate_assignment`` for every assignment into a temporary release folder."""
    out = tmp_path_factory.mktemp("release")
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    for assignment in ASSIGNMENTS:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "nbgrader",
                "generate_assignment",
                assignment,
                "--force",
                f"--CourseDirectory.release_directory={out}",
                f"--CourseDirectory.db_url=sqlite:///{out / 'gradebook.db'}",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return out


def test_there_are_three_assignments():
    assert len(ASSIGNMENTS) >= 3, ASSIGNMENTS


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_folders_hold_only_notebooks(assignment):
    """nbgrader copies every other file of solutions/<a>/ into the release: keep reference code in lensref/."""
    others = [
        p.name
        for p in (ROOT / "solutions" / assignment).iterdir()
        if p.suffix != ".ipynb" and p.name != ".ipynb_checkpoints"
    ]
    assert others == []


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_exercises_match_a_fresh_release(assignment, regenerated):
    committed = sorted(p.name for p in (ROOT / "exercises" / assignment).glob("*.ipynb"))
    fresh = sorted(p.name for p in (regenerated / assignment).glob("*.ipynb"))
    assert committed == fresh, "exercises/ lists different notebooks: run `nbgrader generate_assignment --force`"
    for name in fresh:
        assert _normalized(ROOT / "exercises" / assignment / name) == _normalized(regenerated / assignment / name), (
            f"exercises/{assignment}/{name} differs from what nbgrader generates from solutions/: "
            f"run `.venv/bin/nbgrader generate_assignment {assignment} --force` and commit the result"
        )


def _hidden_and_visible(source: str) -> tuple[set[str], set[str]]:
    """Lines between BEGIN/END SOLUTION or HIDDEN TESTS delimiters, and the lines outside them."""
    hidden, visible, inside = set(), set(), False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped in ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS"):
            inside = True
        elif stripped in ("### END SOLUTION", "### END HIDDEN TESTS"):
            inside = False
        elif stripped:
            (hidden if inside else visible).add(stripped)
    return hidden, visible


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_notebooks_hide_solutions_and_hidden_tests(assignment):
    n_hidden = 0
    for path in (ROOT / "solutions" / assignment).glob("*.ipynb"):
        released_path = ROOT / "exercises" / assignment / path.name
        text = released_path.read_text(encoding="utf-8")
        for marker in LEAKS:
            assert marker not in text, f"exercises/{assignment}/{path.name} contains {marker!r}"
        released = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nbformat.reads(text, as_version=4).cells}
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):
                assert meta.get("locked"), f"{path.name}: test cell {meta.get('grade_id')} must be locked"
            hidden, visible = _hidden_and_visible(cell.source)
            if not hidden:
                continue
            n_hidden += len(hidden)
            out = released[meta["grade_id"]].source
            leaked = [ln for ln in hidden - visible if ln in {x.strip() for x in out.splitlines()}]
            assert leaked == [], f"exercises/{assignment}/{path.name} cell {meta['grade_id']} leaks {leaked[:3]}"
            if meta.get("solution"):
                assert "raise NotImplementedError()" in out
    assert n_hidden > 0, "no solutions or hidden tests found"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_exercise_has_a_solution_cell_and_a_points_cell(assignment):
    for path in (ROOT / "solutions" / assignment).glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        solutions = [
            c.metadata["nbgrader"]["grade_id"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")
        ]
        tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert solutions and len(tests) == len(solutions), (
            solutions,
            [t.metadata["nbgrader"]["grade_id"] for t in tests],
        )
        for test in tests:
            assert test.metadata["nbgrader"]["points"] > 0
            assert "checks.check_" in test.source, "every test cell starts with a visible check"
            assert "### BEGIN HIDDEN TESTS" in test.source, "every test cell has hidden tests"
        # the first code cell silences transformers (any stderr fails a graded cell)
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert "quiet_transformers()" in first_code.source
