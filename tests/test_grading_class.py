"""Grades do not depend on how they were computed: one mixed class, every assignment, graded three ways.

The class: each of the three assignments solved as the instructor did and in another style, two sets of named
mistakes each, assignments 2 and 3 as released, and three learners who hand in links (a notebook that is a
symbolic link to the instructor's solution, a hard link to a copy of the solution, an assignment folder that is a
link to ``solutions/``). It is graded with ``--jobs 1`` (one at a time), the default command (one sandbox and one
judge process per core, at once) and on a real Dask cluster of two workers, each judging its own runs (more judges
than cores at once: tests/test_grading_judges.py, 50 rounds in four judge processes). The
CSVs must be byte-identical, the gradebooks row for row the same, and every score the expected one, read from the
gradebook itself. These run real notebooks on the real model (about 40 runs), so they are marked slow.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "submissions"))
import build  # noqa: E402
import gradebook_rows as book  # noqa: E402
from dask_cluster import Cluster  # noqa: E402

from lensref.course.grading.grader import grade  # noqa: E402
from lensref.course.grading.limits import Limits  # noqa: E402
from lensref.course.grading.status import Status  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_model,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap: make setup"),
]
ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 90
LIMITS = Limits(memory_mb=3072, max_procs=128)
MODES = ("jobs 1", "default", "dask")  # default: the command without --jobs (one per core)
LINKS = {  # student -> (assignment, what the link does)
    "zak_folder_link": "01-logit-lens",
    "zed_symlink": "01-logit-lens",
    "zoe_hard_link": "03-variants",
}


def _write_links(submitted: Path) -> None:
    zed = submitted / "zed_symlink" / "01-logit-lens"
    zed.mkdir(parents=True)
    (zed / "logit_lens.ipynb").symlink_to(ROOT / "solutions" / "01-logit-lens" / "logit_lens.ipynb")
    zak = submitted / "zak_folder_link"
    zak.mkdir()
    (zak / "01-logit-lens").symlink_to(ROOT / "solutions" / "01-logit-lens", target_is_directory=True)
    zoe = submitted / "zoe_hard_link" / "03-variants"
    zoe.mkdir(parents=True)
    copy = submitted.parent / "instructor-copy" / "variants.ipynb"  # the solutions, on the same file system
    copy.parent.mkdir()
    shutil.copyfile(ROOT / "solutions" / "03-variants" / "variants.ipynb", copy)
    os.link(copy, zoe / "variants.ipynb")


@pytest.fixture(scope="module")
def graded(tmp_path_factory, warm_model_cache):
    """mode -> assignment -> (report, out folder); and the expected scores."""
    base = tmp_path_factory.mktemp("mixed")
    submitted = base / "submitted"
    expected = build.write_mixed_class(submitted)
    _write_links(submitted)
    cluster = Cluster(base)
    try:
        cluster.add_worker("w1")
        cluster.add_worker("w2")
        cluster.wait_for_workers(2)
        runs: dict[str, dict] = {}
        for mode in MODES:
            runs[mode] = {}
            for assignment in build.MAX_SCORES:
                out = base / mode.replace(" ", "") / assignment
                options: dict = {
                    "jobs 1": {"jobs": 1},
                    "default": {"jobs": None},
                    "dask": {"scheduler": cluster.address},
                }[mode]
                report = grade(
                    assignment,
                    submitted=submitted,
                    out=out,
                    timeout=TIMEOUT,
                    limits=LIMITS,
                    progress=lambda m: None,
                    **options,
                )
                print(f"\n[{mode}] {report.summary()}")
                runs[mode][assignment] = (report, out)
    finally:
        cluster.close()
    return runs, expected


def test_every_score_is_the_expected_one_in_every_mode(graded):
    runs, expected = graded
    wrong = {}
    for mode, by_assignment in runs.items():
        for assignment, (report, out) in by_assignment.items():
            want = {s: score for (s, a), score in expected.items() if a == assignment}
            got = book.totals(out / "gradebook.db", assignment)
            if got != want:
                wrong[f"{mode} {assignment}"] = {"want": want, "got": got, "summary": report.summary()}
            rows = {r["student"]: r for r in csv.DictReader(report.csv_path.open())}
            assert {s: rows[s]["score"] for s in want} == {s: f"{v:g}" for s, v in want.items()}
    assert not wrong, json.dumps(wrong, indent=1)


def test_the_csv_and_the_gradebook_are_the_same_whichever_way_the_class_was_graded(graded):
    runs, _ = graded
    for assignment in build.MAX_SCORES:
        csvs = {mode: runs[mode][assignment][0].csv_path.read_bytes() for mode in MODES}
        rows = {mode: book.rows(runs[mode][assignment][1] / "gradebook.db", assignment) for mode in MODES}
        for mode in MODES[1:]:
            assert csvs[mode] == csvs["jobs 1"], (assignment, mode)
            assert rows[mode] == rows["jobs 1"], (assignment, mode)
        assert len(rows["jobs 1"]) == sum(len(p) for p in _cells(assignment))


def _cells(assignment: str) -> list[list[str]]:
    from lensref.course.grading.plan import load_plan

    students = [s for (s, a) in build.mixed_class() if a == assignment]
    return [[c.grade_id for p in load_plan(ROOT, assignment) for c in p.test_cells] for _ in students]


def test_the_verdicts_of_each_student_are_word_for_word_the_same(graded):
    runs, expected = graded
    for (student, assignment), _ in expected.items():
        seen = set()
        for mode in MODES:
            out = runs[mode][assignment][1]
            data = json.loads((out / "autograded" / student / assignment / "verdicts.json").read_text())
            seen.add(json.dumps(data["cells"], sort_keys=True))
        assert len(seen) == 1, (student, assignment)


def test_links_are_refused_and_never_reach_the_gradebook(graded):
    runs, _ = graded
    for mode in MODES:
        for student, assignment in LINKS.items():
            report, out = runs[mode][assignment]
            result = {r.student: r for r in report.results}[student]
            assert result.status == Status.REFUSED, (mode, student, result)
            assert "link" in result.message and result.score is None
            assert student not in book.totals(out / "gradebook.db", assignment)
            assert not (out / "autograded" / student).exists() and not (out / "feedback" / student).exists()
            row = {r["student"]: r for r in csv.DictReader(report.csv_path.open())}[student]
            assert row["status"] == "refused" and row["score"] == ""


def test_mistakes_fail_their_own_cells_only_and_released_notebooks_score_zero(graded):
    runs, _ = graded
    for assignment, kinds in build.MISTAKE_SETS.items():
        out = runs["jobs 1"][assignment][1]
        for kind, (bodies, _) in kinds.items():
            student = {"mistakes_a": "dee", "mistakes_b": "eli"}[kind]
            data = json.loads((out / "autograded" / student / assignment / "verdicts.json").read_text())
            failed = {cell["grade_id"] for cell in data["cells"] if cell["points"] < cell["max_points"]}
            assert failed == {f"test_{name}" for name in bodies}, (assignment, kind, data["cells"])
    for assignment in ("02-reading-the-grid", "03-variants"):
        out = runs["jobs 1"][assignment][1]
        data = json.loads((out / "autograded" / "cy" / assignment / "verdicts.json").read_text())
        assert all(any("not written yet" in line for line in cell["lines"]) for cell in data["cells"])


def test_the_instructor_only_records(graded):
    """Runs and judgments happen where the task went; the instructor's CPU per submission is printed."""
    runs, _ = graded
    for mode in MODES:
        for report, _ in runs[mode].values():
            cpu = report.instructor_cpu_per_submission()
            assert cpu is not None and 0 < cpu < 1.0, (mode, cpu)
            assert "instructor's CPU per graded submission" in report.summary()
            graded_here = [r for r in report.results if r.status == Status.GRADED]
            assert all(set(r.phases) == {"prepare", "sandbox", "judge", "record"} for r in graded_here)
    assert "Dask cluster at" in runs["dask"]["01-logit-lens"][0].confinement
