"""`lensref check` (run a notebook headless, one line per exercise, exit 1 on a failure) and `lensref submit`
(the layout `lensref grade` reads; a notebook that is not the course's refused)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from lensref import LensError
from lensref.cli import main
from lensref.course.notebook_check import check_notebook
from lensref.course.submit import submit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "submissions"))
import build  # noqa: E402  (sample submissions built from the released notebooks)

RELEASED_01 = ROOT / "exercises" / "01-logit-lens" / "logit_lens.ipynb"
NAMES_01 = ["capture_states", "lens_logits", "to_probs", "top_k", "entropy", "kl_to_final", "target_rank"]


# --- lensref check on a small synthetic notebook (no model: seconds) ------------------------------------------


def _cell(source: str, grade_id: str | None = None, *, test: bool = False, solution: bool = False, points=0):
    cell = nbformat.v4.new_code_cell(source)
    if grade_id:
        cell.metadata["nbgrader"] = {
            "grade_id": grade_id,
            "grade": test,
            "solution": solution,
            "locked": test,
            "schema_version": 3,
            "task": False,
            **({"points": points} if test else {}),
        }
    return cell


def synthetic_notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        _cell("class CheckFailed(AssertionError):\n    pass\nimport pathlib\nhere = pathlib.Path.cwd().name", "setup"),
        _cell("def good():\n    return 1", "good", solution=True),
        _cell(
            "assert good() == 1\nprint('✓ good: returns 1.')\nprint('✓ good: (hidden) also fine')",
            "test_good",
            test=True,
            points=2,
        ),
        _cell("def broken(:\n    return 2", "broken", solution=True),
        _cell("broken()", "test_broken", test=True, points=1),
        _cell("def shape():\n    return (2, 3)", "shape", solution=True),
        _cell(
            "raise CheckFailed(f'shape: wrong shape (2, 3), expected (3, 2). Hint: transpose it.')",
            "test_shape",
            test=True,
            points=3,
        ),
        _cell("while True:\n    pass", "test_loop", test=True, points=1),
        _cell("assert here == 'anywhere', here", "test_cwd", test=True, points=1),  # runs in its own folder
    ]
    path = folder / "anywhere" / "synthetic.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    return path


def test_check_reports_one_line_per_exercise(tmp_path):
    path = synthetic_notebook(tmp_path)
    before = path.read_bytes()
    seen = []
    result = check_notebook(path, timeout=5, on_result=seen.append)
    assert [r.name for r in result.exercises] == ["good", "broken", "shape", "loop", "cwd"] == [r.name for r in seen]
    lines = [r.line() for r in result.exercises]
    assert lines[0] == "✓ 2/2  good: returns 1."
    assert lines[1].startswith("✗ 0/1  broken: your cell 'broken' failed first: SyntaxError:")
    assert lines[2] == "✗ 0/3  shape: wrong shape (2, 3), expected (3, 2). Hint: transpose it."
    assert lines[3] == "✗ 0/1  loop: stopped: it ran too long (an endless loop?) and was interrupted"
    assert lines[4] == "✓ 1/1  cwd: passed"
    assert all("\n" not in line for line in lines)
    assert (result.score, result.max_score, result.passed) == (3, 8, False)
    assert result.summary().startswith("visible checks: 3/8 points, 2 of 5 exercises pass")
    assert path.read_bytes() == before  # the learner's file is never written


def test_check_cli_exit_status_and_bad_input(tmp_path, capsys):
    path = synthetic_notebook(tmp_path)
    assert main(["check", str(path), "--timeout", "5"]) == 1
    out = capsys.readouterr().out
    assert "✓ 2/2  good: returns 1." in out and out.rstrip().splitlines()[-1].startswith("visible checks: 3/8")

    (tmp_path / "text.ipynb").write_text("{not json")
    (tmp_path / "plain.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook(cells=[_cell("1 + 1")])))
    for name, message in [
        ("missing.ipynb", "no such notebook"),
        ("text.ipynb", "not a readable notebook"),
        ("plain.ipynb", "no graded exercises"),
    ]:
        assert main(["check", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {tmp_path / name}: {message}") and err.count("\n") == 1, err


# --- lensref submit (no model) --------------------------------------------------------------------------------


def test_submit_zip_holds_the_layout_grade_reads(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    renamed = tmp_path / "work" / "logit_lens-Copy1.ipynb"
    renamed.parent.mkdir()
    shutil.copy(RELEASED_01, renamed)
    assert main(["submit", str(renamed), "--student", "ada"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("added ada/01-logit-lens/logit_lens.ipynb in submission-ada.zip")
    assert "lensref grade 01-logit-lens" in out
    variants = ROOT / "exercises" / "03-variants" / "variants.ipynb"
    assert main(["submit", str(variants), "--student", "ada"]) == 0
    assert main(["submit", str(renamed), "--student", "ada"]) == 0  # handed in again: replaced, not doubled
    assert capsys.readouterr().out.count("replaced ada/01-logit-lens/logit_lens.ipynb") == 1
    with zipfile.ZipFile(tmp_path / "submission-ada.zip") as z:
        assert sorted(z.namelist()) == ["ada/01-logit-lens/logit_lens.ipynb", "ada/03-variants/variants.ipynb"]
        assert z.read("ada/01-logit-lens/logit_lens.ipynb") == RELEASED_01.read_bytes()
        assert z.read("ada/03-variants/variants.ipynb") == variants.read_bytes()


def test_submit_into_a_folder(tmp_path):
    result = submit(RELEASED_01, "ben.k", tmp_path / "submitted")
    assert (result.course_notebook.assignment, result.course_notebook.notebook) == ("01-logit-lens", "logit_lens")
    target = tmp_path / "submitted" / "ben.k" / "01-logit-lens" / "logit_lens.ipynb"
    assert target.read_bytes() == RELEASED_01.read_bytes() and not result.replaced
    assert submit(RELEASED_01, "ben.k", tmp_path / "submitted").replaced
    assert sorted(p.name for p in (tmp_path / "submitted").iterdir()) == ["ben.k"]  # no temp files left


def test_submit_refuses_what_is_not_the_courses(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    plain = tmp_path / "plain.ipynb"
    plain.write_text(nbformat.writes(nbformat.v4.new_notebook(cells=[_cell("print(1)")])))
    foreign = tmp_path / "foreign.ipynb"
    nbformat.write(
        nbformat.v4.new_notebook(
            cells=[_cell("x = 1", "answer_x", solution=True), _cell("assert x", "test_x", test=True, points=1)]
        ),
        foreign,
    )
    cases = [
        ([str(plain), "--student", "ada"], "plain.ipynb: not one of the course's notebooks (it has no nbgrader"),
        ([str(foreign), "--student", "ada"], "foreign.ipynb: not one of the course's notebooks (its nbgrader cells"),
        ([str(tmp_path / "nope.ipynb"), "--student", "ada"], "nope.ipynb: no such notebook"),
        ([str(RELEASED_01), "--student", "../etc"], "--student '../etc': use 1-64 letters"),
        ([str(RELEASED_01), "--student", "ada", "--out", str(tmp_path / "missing" / "x.zip")], "does not exist"),
    ]
    for argv, message in cases:
        assert main(["submit", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert main(["submit", str(RELEASED_01), "--student", "ada"]) == 0
    assert main(["submit", str(RELEASED_01), "--student", "ben", "--out", "submission-ada.zip"]) == 2
    assert "already holds work of 'ada', not 'ben'" in capsys.readouterr().err
    (tmp_path / "broken.zip").write_text("not a zip")
    with pytest.raises(LensError, match="exists and is not a zip file"):
        submit(RELEASED_01, "ada", tmp_path / "broken.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "broken.zip",
        "foreign.ipynb",
        "plain.ipynb",
        "submission-ada.zip",
    ]


# --- on the real model: the released notebook, the solutions, and grading what submit wrote -------------------


@pytest.mark.slow
@pytest.mark.real_model
def test_check_released_notebook_fails_every_exercise(tmp_path, capsys):
    notebook = tmp_path / "01-logit-lens" / "logit_lens.ipynb"
    notebook.parent.mkdir()
    shutil.copy(RELEASED_01, notebook)
    assert main(["check", str(notebook)]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    exercise_lines = lines[1:-1]
    assert [line.split()[2].rstrip(":") for line in exercise_lines] == NAMES_01
    assert all(line.startswith("✗ 0/") and "not written yet" in line for line in exercise_lines), exercise_lines
    assert lines[-1].startswith("visible checks: 0/10 points, 0 of 7 exercises pass")


@pytest.mark.slow
@pytest.mark.real_model
def test_check_solution_notebook_passes_every_exercise(tmp_path, capsys):
    notebook = tmp_path / "somewhere else" / "my_lens.ipynb"  # anywhere on disk, any name
    notebook.parent.mkdir()
    nbformat.write(build.submission("solution"), notebook)
    assert main(["check", str(notebook)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[2].rstrip(":") for line in lines[1:-1]] == NAMES_01
    assert all(line.startswith("✓ ") for line in lines[1:-1]), lines
    assert lines[-1].startswith("visible checks: 10/10 points, 7 of 7 exercises pass")


@pytest.mark.slow
@pytest.mark.real_model
def test_submitted_zips_collected_into_submitted_are_graded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for student, kind in [("ada", "solution"), ("dee", "forgot_norm")]:
        mine = tmp_path / f"{student}-work.ipynb"
        nbformat.write(build.submission(kind), mine)
        assert main(["submit", str(mine), "--student", student]) == 0
    zips = ["submission-ada.zip", "submission-dee.zip"]  # what the instructor does
    assert main(["collect", *zips, "--submitted", str(tmp_path / "submitted")]) == 0
    out = tmp_path / "graded"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lensref",
            "grade",
            "01-logit-lens",
            "--submitted",
            str(tmp_path / "submitted"),
            "--out",
            str(out),
            "--timeout",
            "300",
        ],  # a busy machine
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(out / "grades-01-logit-lens.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    scores = {s: (rows[s]["score"], rows[s]["max_score"]) for s in rows}
    assert scores == {"ada": ("10", "10"), "dee": ("8", "10")}, rows
    assert rows["dee"]["logit_lens:test_lens_logits"] == "0"  # the forgotten norm, and nothing else
