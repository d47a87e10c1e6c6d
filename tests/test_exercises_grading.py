"""End-to-end grading with nbgrader: sample submissions get the expected scores, read back from the gradebook.

These run real notebooks on the real model (about half a minute per submission on 2 cores), so they are
marked slow; `make test` still runs them.
"""
from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "submissions"))
import build  # noqa: E402  (the sample-submission builder)

from lensref.course.autograde import GRADED, MALFORMED, UNCHANGED, grade  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.real_model]
ASSIGNMENT = "01-logit-lens"
TIMEOUT = 40  # seconds per cell: ample for every cell of a correct notebook; the infinite loop costs 2 x TIMEOUT


def _scores(db: Path, assignment: str) -> dict[str, tuple[float, float, int]]:
    """student -> (score, max score, number of grade rows), straight from the SQLite gradebook."""
    with Gradebook(f"sqlite:///{db}") as gb:
        out = {}
        for sub in gb.find_assignment(assignment).submissions:
            rows = sum(len(nb.grades) for nb in sub.notebooks)
            out[sub.student.id] = (float(sub.score), float(sub.max_score), rows)
        return out


def _cell_errors(out: Path, student: str, assignment: str, notebook: str) -> dict[str, str]:
    """grade_id -> the one-line error its visible check printed, from the autograded notebook."""
    nb = nbformat.read(out / "autograded" / student / assignment / f"{notebook}.ipynb", as_version=4)
    errors = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and cell.cell_type == "code":
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    errors[meta["grade_id"]] = f"{output.ename}: {output.evalue}"
    return errors


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    base = tmp_path_factory.mktemp("class")
    build.write_class(base / "submitted", build.CLASS_01)
    start = time.time()
    report = grade(ASSIGNMENT, submitted=base / "submitted", out=base / "out", timeout=TIMEOUT, progress=lambda m: None)
    print(f"\ngraded a class of {len(build.CLASS_01)} in {time.time() - start:.0f} s")
    print(report.summary())
    return base, report


def test_every_sample_gets_its_expected_score_in_the_gradebook(graded_class):
    base, report = graded_class
    scores = _scores(base / "out" / "gradebook.db", ASSIGNMENT)
    for student, (kind, expected) in build.CLASS_01.items():
        if expected is None:
            assert student not in scores, f"{student} ({kind}) should have been skipped"
        else:
            assert scores[student][:2] == (expected, 10.0), f"{student} ({kind}): {scores[student]}"
    statuses = {r.student: r.status for r in report.results}
    assert statuses["lou_malformed"] == MALFORMED
    assert all(s == GRADED for name, s in statuses.items() if name != "lou_malformed")


def test_malformed_file_is_reported_by_name(graded_class):
    _, report = graded_class
    lou = next(r for r in report.results if r.student == "lou_malformed")
    assert "lou_malformed/01-logit-lens/logit_lens.ipynb is not valid JSON" in lou.message
    assert "skipped" in lou.message


def test_visible_checks_say_what_is_wrong(graded_class):
    base, _ = graded_class
    expected = {
        "cy_released": ("test_capture_states", "not written yet"),
        "dee_forgot_norm": ("test_lens_logits", "you forgot the final norm"),
        "eli_double_norm": ("test_lens_logits", "you normalized twice"),
        "fay_off_by_one": ("test_capture_states", "off by one layer"),
        "gus_wrong_shape": ("test_capture_states", "drop the batch dimension"),
        "hal_not_normalized": ("test_to_probs", "do not sum to 1 over the vocabulary"),
        "ivy_crash": ("test_entropy", "raised NameError"),
        "jo_infinite_loop": ("test_target_rank", "CellTimeoutError"),
        "kim_edited_tests": ("test_top_k", "least likely"),
    }
    for student, (cell, message) in expected.items():
        errors = _cell_errors(base / "out", student, ASSIGNMENT, "logit_lens")
        assert message in errors.get(cell, ""), f"{student}: {errors}"
        # only the exercise with the mistake lost points (the released notebook fails them all)
        assert set(errors) == ({cell} if student != "cy_released" else set(errors)), f"{student}: {sorted(errors)}"
    released = _cell_errors(base / "out", "cy_released", ASSIGNMENT, "logit_lens")
    assert len(released) == 7 and all("not written yet" in m for m in released.values()), released


def test_deleted_and_edited_test_cells_are_graded_with_the_originals(graded_class):
    base, _ = graded_class
    nb = nbformat.read(base / "out" / "autograded" / "kim_edited_tests" / ASSIGNMENT / "logit_lens.ipynb", as_version=4)
    sources = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
    assert "checks.check_top_k(top_k)" in sources["test_top_k"] and "all good" not in sources["test_top_k"]
    assert "checks.check_entropy(entropy)" in sources["test_entropy"]  # deleted by the student, put back


def test_csv_and_feedback(graded_class):
    base, report = graded_class
    rows = {row["student"]: row for row in csv.DictReader(report.csv_path.open())}
    assert set(rows) == set(build.CLASS_01)
    assert rows["dee_forgot_norm"]["score"] == "8" and rows["dee_forgot_norm"]["logit_lens:test_lens_logits"] == "0"
    assert rows["lou_malformed"]["status"] == "malformed" and rows["lou_malformed"]["score"] == ""
    for student, (_, expected) in build.CLASS_01.items():
        html = base / "out" / "feedback" / student / ASSIGNMENT / "logit_lens.html"
        assert html.exists() == (expected is not None), student
    assert "8.0 / 10.0" in (base / "out" / "feedback" / "dee_forgot_norm" / ASSIGNMENT / "logit_lens.html").read_text()


def test_regrading_never_loses_or_duplicates_scores(graded_class):
    base, _ = graded_class
    db = base / "out" / "gradebook.db"
    before = _scores(db, ASSIGNMENT)
    again = grade(ASSIGNMENT, submitted=base / "submitted", out=base / "out", timeout=TIMEOUT, progress=lambda m: None)
    assert {r.student: r.status for r in again.results if r.status != MALFORMED} == {s: UNCHANGED for s in before}
    assert _scores(db, ASSIGNMENT) == before
    # a resubmission is regraded in place: same rows, new score
    target = base / "submitted" / "cy_released" / ASSIGNMENT / "logit_lens.ipynb"
    target.write_text(nbformat.writes(build.submission("solution")))
    os.utime(target, (time.time() + 5, time.time() + 5))
    third = grade(ASSIGNMENT, submitted=base / "submitted", out=base / "out", timeout=TIMEOUT, progress=lambda m: None)
    assert {r.student: r.status for r in third.results}["cy_released"] == GRADED
    after = _scores(db, ASSIGNMENT)
    assert after["cy_released"] == (10.0, 10.0, before["cy_released"][2])
    assert {s: v for s, v in after.items() if s != "cy_released"} == {s: v for s, v in before.items() if s != "cy_released"}


@pytest.mark.parametrize("assignment,notebook", [("02-reading-the-grid", "reading_the_grid"), ("03-variants", "variants")])
def test_solutions_score_full_points_and_releases_score_zero(tmp_path, assignment, notebook):
    roster = {"solution": ("solution", None), "released": ("released", None)}
    build.write_class(tmp_path / "submitted", roster, assignment, notebook)
    report = grade(assignment, submitted=tmp_path / "submitted", out=tmp_path / "out", timeout=60, progress=lambda m: None)
    scores = _scores(tmp_path / "out" / "gradebook.db", assignment)
    max_score = scores["solution"][1]
    assert max_score >= 5
    assert scores["solution"][0] == max_score, report.summary()
    assert scores["released"][0] == 0.0, report.summary()
    errors = _cell_errors(tmp_path / "out", "released", assignment, notebook)
    assert errors and all("not written yet" in m for m in errors.values()), errors
