"""Grading a real class in the sandbox: the sample class and a dozen dishonest or careless learners, one run.

Every expected score is read back from nbgrader's gradebook AND from the CSV. The limits are set low (1.5 GB,
64 processes) so an attack that beat them could not take the machine down. These run real notebooks on the real
model (about a minute per submission on a busy 2-core machine), so they are marked slow; `make test` runs them.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "submissions"))
import adversarial  # noqa: E402
import build  # noqa: E402

from lensref.course.grading.grader import grade  # noqa: E402
from lensref.course.grading.limits import Limits  # noqa: E402
from lensref.course.grading.status import Status  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.real_model]
ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "01-logit-lens"
TIMEOUT = 90  # seconds per cell: far above any correct cell on a loaded machine; each stuck cell costs this once
LIMITS = Limits(memory_mb=1536, max_procs=64, disk_mb=256)  # the disk lives in memory: well below it


def _gradebook(db: Path, assignment: str) -> dict[str, tuple[float, float, int]]:
    """student -> (score, max score, number of grade rows), straight from the SQLite gradebook."""
    with Gradebook(f"sqlite:///{db}") as gb:
        out = {}
        for sub in gb.find_assignment(assignment).submissions:
            rows = sum(len(nb.grades) for nb in sub.notebooks)
            out[sub.student.id] = (float(sub.score), float(sub.max_score), rows)
        return out


def _csv(path: Path) -> dict[str, dict]:
    return {row["student"]: row for row in csv.DictReader(path.open())}


def _verdicts(out: Path, student: str) -> dict[str, list[str]]:
    data = json.loads((out / "autograded" / student / ASSIGNMENT / "verdicts.json").read_text())
    return {cell["grade_id"]: cell["lines"] for cell in data["cells"]}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, warm_model_cache):
    base = tmp_path_factory.mktemp("class")
    submitted, out = base / "submitted", base / "out"
    build.write_class(submitted, build.CLASS_01)
    expected = {s: score for s, (_, score) in build.CLASS_01.items()}
    expected.update(adversarial.write(submitted, {"root": ROOT, "out": out, "submitted": submitted}))
    before = sorted(p.name for p in ROOT.iterdir())
    start = time.time()
    report = grade(
        ASSIGNMENT, submitted=submitted, out=out, timeout=TIMEOUT, limits=LIMITS, jobs=2, progress=lambda m: None
    )
    print(f"\ngraded a class of {len(expected)} in {time.time() - start:.0f} s")
    print(report.summary())
    return base, report, expected, before


def test_every_submission_gets_its_expected_score_in_the_gradebook_and_the_csv(graded_class):
    base, report, expected, _ = graded_class
    book = _gradebook(base / "out" / "gradebook.db", ASSIGNMENT)
    rows = _csv(report.csv_path)
    assert set(rows) == set(expected)
    wrong = {}
    for student, score in expected.items():
        if score is None:
            assert student not in book and rows[student]["score"] == ""
            continue
        if book.get(student, (None,))[:2] != (score, 10.0) or rows[student]["score"] != f"{score:g}":
            wrong[student] = (score, book.get(student), rows[student]["score"], rows[student]["message"])
    assert not wrong, json.dumps(wrong, indent=1) + "\n" + report.summary()


def test_the_csv_and_the_gradebook_agree_cell_by_cell(graded_class):
    base, report, _, _ = graded_class
    rows = _csv(report.csv_path)
    with Gradebook(f"sqlite:///{base / 'out' / 'gradebook.db'}") as gb:
        for sub in gb.find_assignment(ASSIGNMENT).submissions:
            for nb in sub.notebooks:
                for grade_row in nb.grades:
                    assert rows[sub.student.id][f"{nb.name}:{grade_row.name}"] == f"{grade_row.score:g}"


def test_the_attacks_changed_nothing_outside_their_sandbox(graded_class):
    base, _, expected, before = graded_class
    assert sorted(p.name for p in ROOT.iterdir()) == before
    for folder in (ROOT, base / "out", base / "submitted"):
        assert not list(folder.glob("planted-by-vandal*"))
    assert (base / "submitted" / "zz_victim" / ASSIGNMENT / "logit_lens.ipynb").exists()
    book = _gradebook(base / "out" / "gradebook.db", ASSIGNMENT)
    assert {rows for _, _, rows in book.values()} == {7}, "every submission has exactly one row per graded cell"
    assert len(book) == sum(1 for s in expected.values() if s is not None)


def test_what_each_failure_says(graded_class):
    base, _, _, _ = graded_class
    out = base / "out"
    expected = {
        "cy_released": ("test_capture_states", "not written yet"),
        "dee_forgot_norm": ("test_lens_logits", "you forgot the final norm"),
        "eli_double_norm": ("test_lens_logits", "you normalized twice"),
        "fay_off_by_one": ("test_capture_states", "off by one layer"),
        "gus_wrong_shape": ("test_capture_states", "drop the batch dimension"),
        "hal_not_normalized": ("test_to_probs", "do not sum to 1 over the vocabulary"),
        "ivy_crash": ("test_entropy", "raised NameError"),
        "jo_infinite_loop": ("test_target_rank", "time limit"),
        "kim_edited_tests": ("test_top_k", "least likely"),
        "mal_checks_replaced": ("test_lens_logits", "you forgot the final norm"),
        "mal_torch_replaced": ("test_lens_logits", "you normalized twice"),
        "mal_reads_solutions": ("test_capture_states", "not written yet"),
        "mal_copies_reference": ("test_capture_states", "calls capture_residuals"),
        "mal_memory_hog": ("test_entropy", "raised NameError"),
        "mal_ignores_signals": ("test_kl_to_final", "raised NameError"),
    }
    for student, (cell, message) in expected.items():
        verdicts = _verdicts(out, student)
        failed = {gid for gid, lines in verdicts.items() if any(line.startswith("✗") for line in lines)}
        assert any(message in line for line in verdicts[cell]), f"{student}: {verdicts[cell]}"
        if student == "mal_ignores_signals":
            assert failed == {"test_kl_to_final", "test_target_rank"}, failed
        elif student != "cy_released":
            assert failed == {cell}, f"{student}: {sorted(failed)}"
    released = _verdicts(out, "cy_released")
    assert all(any("not written yet" in line for line in lines) for lines in released.values()), released


def test_notes_in_the_csv(graded_class):
    _, report, _, _ = graded_class
    rows = _csv(report.csv_path)
    assert "graded logit_lens (1).ipynb as logit_lens.ipynb" in rows["ok_stderr_renamed_lab"]["message"]
    assert "capture_states calls capture_residuals" in rows["mal_copies_reference"]["message"]
    assert "memory limit" in rows["mal_memory_hog"]["message"]
    assert rows["lou_malformed"]["status"] == Status.MALFORMED
    assert "logit_lens.ipynb is not valid JSON" in rows["lou_malformed"]["message"]


def test_the_fork_storm_hit_the_process_limit(graded_class):
    base, _, _, _ = graded_class
    nb = nbformat.read(base / "out" / "autograded" / "mal_fork_storm" / ASSIGNMENT / "logit_lens.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    counts = [int(n) for n in re.findall(r"fork storm stopped after (\d+) children", text)]
    assert counts and counts[0] < LIMITS.max_procs, text[:500]


def test_feedback_pages_run_nothing_a_submission_printed(graded_class):
    base, _, expected, _ = graded_class
    for student, score in expected.items():
        page = base / "out" / "feedback" / student / ASSIGNMENT / "logit_lens.html"
        assert page.exists() == (score is not None), student
    page = (base / "out" / "feedback" / "mal_xss" / ASSIGNMENT / "logit_lens.html").read_text()
    lowered = page.lower()
    assert "<script" not in lowered and 'href="javascript' not in lowered
    assert not re.search(r"<[^>]*\son\w+\s*=", lowered)
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page  # shown as text, not dropped
    dee = html.unescape((base / "out" / "feedback" / "dee_forgot_norm" / ASSIGNMENT / "logit_lens.html").read_text())
    assert "Score: 8.0 / 10.0" in dee and "you forgot the final norm" in dee


def test_regrading_never_loses_or_duplicates_scores(graded_class):
    base, _, _, _ = graded_class
    db = base / "out" / "gradebook.db"
    before = _gradebook(db, ASSIGNMENT)
    again = grade(
        ASSIGNMENT,
        submitted=base / "submitted",
        out=base / "out",
        timeout=TIMEOUT,
        limits=LIMITS,
        progress=lambda m: None,
    )
    assert {r.student: r.status for r in again.results if r.student in before} == {s: Status.UNCHANGED for s in before}
    assert _gradebook(db, ASSIGNMENT) == before
    target = base / "submitted" / "cy_released" / ASSIGNMENT / "logit_lens.ipynb"
    target.write_text(nbformat.writes(build.submission("solution")))
    os.utime(target, (time.time() + 5, time.time() + 5))
    third = grade(
        ASSIGNMENT,
        submitted=base / "submitted",
        out=base / "out",
        timeout=TIMEOUT,
        limits=LIMITS,
        progress=lambda m: None,
    )
    assert {r.student: r.status for r in third.results}["cy_released"] == Status.GRADED
    after = _gradebook(db, ASSIGNMENT)
    assert after["cy_released"] == (10.0, 10.0, before["cy_released"][2])
    assert {s: v for s, v in after.items() if s != "cy_released"} == {
        s: v for s, v in before.items() if s != "cy_released"
    }
    assert _csv(third.csv_path)["cy_released"]["score"] == "10"


def test_cli_exit_status_1_when_a_submission_cannot_be_graded(tmp_path):
    """A class where nothing can be graded (a cut-off file, a wrong folder) never runs a notebook: exit 1, one line each."""
    (tmp_path / "submitted" / "ann" / ASSIGNMENT).mkdir(parents=True)
    (tmp_path / "submitted" / "ann" / ASSIGNMENT / "logit_lens.ipynb").write_text('{"cells": [')
    (tmp_path / "submitted" / "bob" / ASSIGNMENT).mkdir(parents=True)
    (tmp_path / "submitted" / "bob" / ASSIGNMENT / "a.ipynb").write_text("{}")
    (tmp_path / "submitted" / "bob" / ASSIGNMENT / "b.ipynb").write_text("{}")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "lensref",
            "grade",
            ASSIGNMENT,
            "--submitted",
            str(tmp_path / "submitted"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    rows = _csv(tmp_path / "out" / f"grades-{ASSIGNMENT}.csv")
    assert rows["ann"]["status"] == "malformed" and rows["bob"]["status"] == "missing"
    assert "found a.ipynb, b.ipynb" in rows["bob"]["message"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["no-such-assignment"], "unknown assignment"),
        ([ASSIGNMENT, "--memory", "10"], "--memory must be at least"),
        ([ASSIGNMENT, "--max-procs", "2"], "--max-procs must be at least"),
        ([ASSIGNMENT, "--disk", "10"], "--disk must be at least"),
        ([ASSIGNMENT, "--memory", "1536", "--disk", "1024"], "is more than half of --memory 1536 MB"),
        ([ASSIGNMENT, "--timeout", "0"], "--timeout must be at least"),
        ([ASSIGNMENT, "--submitted", "/nonexistent/folder"], "no submissions folder"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(args, message):
    run = subprocess.run(
        [sys.executable, "-m", "lensref", "grade", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], run.stderr
