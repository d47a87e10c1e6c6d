"""``lensref grade``'s options, through the real command line, on a tiny course (no model in its notebook).

Each option is used for real and its effect read back: the CSV's scores, the summary's limits, ``unchanged``
without ``--force`` and ``graded`` with it, the warning and the same scores with ``--no-sandbox``, both times and
their ratio with ``--baseline``, and exit status 1 when one submission cannot be graded while the others are.
"""

from __future__ import annotations

import csv
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import tiny_course  # noqa: E402

from lensref.cli import main  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is installed by make setup")


@pytest.fixture
def course(tmp_path, monkeypatch, warm_model_cache):
    folder = tiny_course.make_course(tmp_path / "course")
    expected = tiny_course.make_class(folder / "submitted", 3)  # s0002 is wrong
    monkeypatch.chdir(folder)  # the command grades the course in the current folder
    return folder, expected


def grade(capsys, *argv) -> tuple[int, str]:
    try:
        code = main(["grade", tiny_course.ASSIGNMENT, *argv])
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def scores(out: Path) -> dict[str, tuple[str, str]]:
    with open(out / f"grades-{tiny_course.ASSIGNMENT}.csv", newline="") as f:
        return {row["student"]: (row["score"], row["status"]) for row in csv.DictReader(f)}


def test_limits_jobs_timeout_and_out_reach_the_run(course, capsys, tmp_path):
    folder, expected = course
    out = tmp_path / "results"
    code, text = grade(
        capsys,
        *(
            "--jobs",
            "2",
            "--timeout",
            "90",
            "--memory",
            "2048",
            "--max-procs",
            "64",
            "--disk",
            "512",
            "--out",
            str(out),
        ),
    )
    assert code == 0, text
    assert "2048 MB" in text and "64 processes" in text and "2 local sandbox(es) at a time" in text
    assert "512 MB disk per run" in text
    assert scores(out) == {s: (f"{v:g}", "graded") for s, v in expected.items()}
    assert (out / "gradebook.db").is_file() and not (folder / "gradebook.db").exists()  # --out, not the course


def test_force_regrades_what_is_unchanged(course, capsys, tmp_path):
    out = tmp_path / "results"
    assert grade(capsys, "--out", str(out), "--jobs", "1")[0] == 0
    code, text = grade(capsys, "--out", str(out), "--jobs", "1")
    assert code == 0 and {status for _, status in scores(out).values()} == {"unchanged"}, text
    code, text = grade(capsys, "--out", str(out), "--jobs", "1", "--force")
    assert code == 0 and {status for _, status in scores(out).values()} == {"graded"}, text


def test_submitted_folder_and_exit_1_when_one_submission_cannot_be_graded(course, capsys, tmp_path):
    folder, expected = course
    elsewhere = tmp_path / "handed-in"
    shutil.copytree(folder / "submitted", elsewhere)
    broken = elsewhere / "zed" / tiny_course.ASSIGNMENT / f"{tiny_course.NOTEBOOK}.ipynb"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"cells": [', encoding="utf-8")  # a cut-off download
    out = tmp_path / "results"
    code, text = grade(capsys, "--submitted", str(elsewhere), "--out", str(out), "--jobs", "2")
    assert code == 1, text
    got = scores(out)
    assert got.pop("zed")[1] == "malformed"
    assert got == {s: (f"{v:g}", "graded") for s, v in expected.items()}  # the others were graded all the same


def test_no_sandbox_warns_and_grades_the_same(course, capsys, tmp_path):
    _, expected = course
    out = tmp_path / "results"
    code, text = grade(capsys, "--no-sandbox", "--out", str(out), "--jobs", "1")
    assert code == 0, text
    assert "WITHOUT a sandbox" in text
    assert scores(out) == {s: (f"{v:g}", "graded") for s, v in expected.items()}


def test_baseline_prints_both_times_and_their_ratio(course, capsys, tmp_path):
    out = tmp_path / "results"
    code, text = grade(capsys, "--baseline", "--out", str(out), "--jobs", "1")
    assert code == 0, text
    student_lines = [line for line in text.splitlines() if re.match(r"\s+s000\d\s+\d+ / \d+\s+graded", line)]
    assert len(student_lines) == 3, text
    for line in student_lines:
        assert "run alone" in line and "ratio" in line, line
