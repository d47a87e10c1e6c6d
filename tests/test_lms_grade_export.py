"""``lensref grade export``: a sample class's gradebook as Canvas's and Moodle's grade import files, parsed back to
the same scores; the feedback pages as each LMS's bulk upload, read back by each LMS's own naming rule; a roster
missing students, a duplicated student and an unknown format are one line each and exit status 2.

The sample class is a real nbgrader gradebook (``nbgrader generate_assignment`` registers 01-logit-lens from
solutions/) with four students' scores recorded, no notebook run. Two ``collected.csv`` files say where the same
four folders came from: one from a Canvas download, one from a Moodle download.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import pytest

from lensref.cli import build_parser, main
from lensref.course.grading import gradebook
from lensref.course.grading.collect.manifest import MANIFEST_FIELDS

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "01-logit-lens"
# student folder -> (fraction of each cell's points, Canvas user id, Canvas download name, Moodle participant id,
# full name, e-mail)
CLASS = {
    "ada-lovelace": (1.0, "101", "lovelaceada", "51", "Ada Lovelace", "ada@example.org"),
    "ben-okafor": (0.5, "102", "okaforben", "52", "Ben Okafor", "ben@example.org"),
    "cy-zelenski": (0.0, "103", "zelenskicy", "53", "Cy Żeleński", "cy@example.org"),
    "dee-o-neil": (0.75, "104", "oneildee", "54", "Dee O'Neil", "dee@example.org"),
}
CANVAS_ROSTER_HEADER = [
    "Student",
    "ID",
    "SIS User ID",
    "SIS Login ID",
    "Section",
    "Logit lens (777)",
    "Assignments Current Score",
    "Current Score",
]


def _last_first(name: str) -> str:
    first, last = name.split(" ", 1)
    return f"{last}, {first}"


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The graded folder (gradebook.db, feedback/), Canvas- and Moodle-collected submitted folders, both rosters,
    and the totals the gradebook holds."""
    base = tmp_path_factory.mktemp("lms")
    graded = base / "graded"
    graded.mkdir()
    db_url = f"sqlite:///{graded / 'gradebook.db'}"
    gradebook.register_assignment(ASSIGNMENT, ROOT, db_url)
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        cells = {
            (nb.name, c.name): c.max_score for nb in gb.find_assignment(ASSIGNMENT).notebooks for c in nb.grade_cells
        }
    totals = {}
    for student, (share, *_rest) in CLASS.items():
        gradebook.record(db_url, ASSIGNMENT, student, {key: share * points for key, points in cells.items()})
        stored = gradebook.read(db_url, ASSIGNMENT, student)
        totals[student] = (stored.score, stored.max_score)
        page = graded / "feedback" / student / ASSIGNMENT / "logit_lens.html"
        page.parent.mkdir(parents=True)
        page.write_text(f"<!DOCTYPE html><p>{student}: &lt;script&gt; escaped</p>\n", encoding="utf-8")
    for lms in ("canvas", "moodle"):
        folder = base / f"submitted-{lms}"
        folder.mkdir()
        rows = []
        for student, (_, user_id, download_name, participant, name, _email) in CLASS.items():
            if lms == "canvas":
                member, lms_id, lms_name = (
                    f"{download_name}_{user_id}_{9000 + int(user_id)}_logit_lens.ipynb",
                    user_id,
                    download_name,
                )
            else:
                member, lms_id, lms_name = (
                    f"{name}_{participant}_assignsubmission_file_/logit_lens.ipynb",
                    participant,
                    name,
                )
            values = [
                "2024-05-02T10:00:00+00:00",
                student,
                ASSIGNMENT,
                "logit_lens",
                lms,
                lms_id,
                lms_name,
                "",
                str(base / f"{lms}.zip"),
                member,
                "0" * 64,
            ]
            rows.append(values)
        _write_csv(folder / "collected.csv", MANIFEST_FIELDS, rows)
    canvas_rows = [["    Points Possible", "", "", "", "", "10.00", "(read only)", "(read only)"]]
    canvas_rows += [
        [_last_first(name), user_id, f"S{user_id}", email.split("@")[0], "Logit lens, spring", "", "", ""]
        for (_, user_id, _, _, name, email) in CLASS.values()
    ]
    canvas_rows.append(["Absent, Eve", "105", "S105", "eve", "Logit lens, spring", "", "", ""])  # enrolled, not graded
    canvas_rows.append(["Student, Test", "999", "", "", "Logit lens, spring", "", "", ""])
    moodle_header = ["First name", "Last name", "ID number", "Institution", "Department", "Email address"]
    moodle_header += ["Assignment: Logit lens (Real)", "Last downloaded from this course"]
    moodle_rows = [
        [*name.split(" ", 1), f"N{user_id}", "", "", email, "-", "1714644000"]
        for (_, user_id, _, _, name, email) in CLASS.values()
    ]
    return {
        "base": base,
        "graded": graded,
        "totals": totals,
        "canvas_roster": _write_csv(base / "canvas-roster.csv", CANVAS_ROSTER_HEADER, canvas_rows),
        "moodle_roster": _write_csv(base / "moodle-roster.csv", moodle_header, moodle_rows),
        "canvas_rows": canvas_rows,
        "moodle_header": moodle_header,
        "moodle_rows": moodle_rows,
    }


def export(capsys, sample, lms: str, *extra: str) -> tuple[int, str, str]:
    argv = ["grade", "export", ASSIGNMENT, "--graded", str(sample["graded"])]
    argv += ["--submitted", str(sample["base"] / f"submitted-{'moodle' if lms == 'csv' else lms}"), "--format", lms]
    try:
        code = main(argv + list(extra))
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_sample_class_has_four_different_totals(sample):
    assert sorted(sample["totals"].values()) == [(0.0, 10.0), (5.0, 10.0), (7.5, 10.0), (10.0, 10.0)]


def test_canvas_grades_parse_back_to_the_gradebook(tmp_path, capsys, sample):
    out = tmp_path / "canvas.csv"
    code, stdout, err = export(
        capsys, sample, "canvas", "--roster", str(sample["canvas_roster"]), "--column", "Logit lens", "--out", str(out)
    )
    assert (code, err) == (0, "") and f"wrote {out}: 4 student(s) (canvas)" in stdout
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Logit lens (777)"]
    assert rows[1] == ["Points Possible", "", "", "", "", "10"]
    by_id = {r[1]: r for r in rows[2:]}
    for student, (_, user_id, _, _, name, email) in CLASS.items():
        row = by_id[user_id]
        assert row[0] == _last_first(name) and row[2:5] == [f"S{user_id}", email.split("@")[0], "Logit lens, spring"]
        assert float(row[5]) == sample["totals"][student][0]
    assert len(by_id) == 4  # Eve (not graded) and the test student are not exported


def test_canvas_new_assignment_column_and_default_output(capsys, sample):
    code, stdout, _ = export(capsys, sample, "canvas", "--roster", str(sample["canvas_roster"]))
    written = sample["graded"] / f"canvas-grades-{ASSIGNMENT}.csv"
    assert code == 0 and str(written) in stdout
    header = written.read_text(encoding="utf-8").splitlines()[0]
    assert header == f"Student,ID,SIS User ID,SIS Login ID,Section,{ASSIGNMENT}"  # a new Canvas assignment


def test_moodle_grades_parse_back_to_the_gradebook(tmp_path, capsys, sample):
    out = tmp_path / "moodle.csv"
    code, _, err = export(capsys, sample, "moodle", "--roster", str(sample["moodle_roster"]), "--out", str(out))
    assert (code, err) == (0, "")
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert list(rows[0]) == ["Email address", ASSIGNMENT]
    by_email = {r["Email address"]: float(r[ASSIGNMENT]) for r in rows}
    assert by_email == {CLASS[s][5]: score for s, (score, _) in sample["totals"].items()}


def test_plain_csv_without_a_roster(tmp_path, capsys, sample):
    out = tmp_path / "plain.csv"
    assert export(capsys, sample, "csv", "--out", str(out))[0] == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert {r["student"]: (float(r["score"]), float(r["max_score"])) for r in rows} == sample["totals"]


def test_a_roster_by_student_folder_matches_without_collected_csv(tmp_path, capsys, sample):
    roster = _write_csv(tmp_path / "plain-roster.csv", ["student", "email"], [[s, v[5]] for s, v in CLASS.items()])
    out = tmp_path / "moodle.csv"
    argv = ["grade", "export", ASSIGNMENT, "--graded", str(sample["graded"]), "--submitted", str(tmp_path / "none")]
    assert main(argv + ["--format", "moodle", "--roster", str(roster), "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 5
    capsys.readouterr()


def test_a_roster_missing_students_lists_each_and_writes_nothing(tmp_path, capsys, sample):
    rows = [r for r in sample["moodle_rows"] if r[0] not in ("Ben", "Cy")]
    roster = _write_csv(tmp_path / "short.csv", sample["moodle_header"], rows)
    out = tmp_path / "moodle.csv"
    code, stdout, err = export(capsys, sample, "moodle", "--roster", str(roster), "--out", str(out))
    assert code == 2 and stdout == "" and not out.exists()
    assert err.splitlines() == [
        "unmatched: ben-okafor (5/10): not in short.csv",
        "unmatched: cy-zelenski (0/10): not in short.csv",
        "error: 2 student(s) unmatched, nothing written (fix the roster, or add --skip-unmatched to write the others)",
    ]
    code, stdout, err = export(capsys, sample, "moodle", "--roster", str(roster), "--out", str(out), "--skip-unmatched")
    assert code == 1 and len(err.splitlines()) == 2 and "2 student(s)" in stdout
    assert sorted(r.split(",")[0] for r in out.read_text().splitlines()[1:]) == ["ada@example.org", "dee@example.org"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda rows: rows.append(list(rows[1])), "lines 3 and 9 both list ID '101' (a student once in the roster)"),
        (
            lambda rows: rows.append(["Lovelace, Ada", "106", "", "", "", "", "", ""]),
            "student 'ada-lovelace' matches",
        ),
    ],
)
def test_a_duplicated_student_is_one_line(tmp_path, capsys, sample, edit, message):
    rows = [list(r) for r in sample["canvas_rows"]]
    edit(rows)
    roster = _write_csv(tmp_path / "dup.csv", CANVAS_ROSTER_HEADER, rows)
    # the second case: without collected.csv, two entries share Ada's name
    submitted = "submitted-canvas" if "both list" in message else "nowhere"
    argv = [
        "grade",
        "export",
        ASSIGNMENT,
        "--graded",
        str(sample["graded"]),
        "--submitted",
        str(sample["base"] / submitted),
    ]
    assert main(argv + ["--format", "canvas", "--roster", str(roster), "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("error: ")
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--format", "blackboard"], "argument --format: invalid choice: 'blackboard'"),
        (["--format", "canvas"], "--format canvas needs --roster"),
        (["--format", "csv", "--feedback"], "--feedback is packaged for moodle or canvas, not 'csv'"),
        (["--format", "moodle", "--feedback", "--roster", "r.csv"], "--feedback takes no --roster or --column"),
        (["--format", "moodle", "--roster", "missing.csv"], "missing.csv: no such roster file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, sample, argv, message):
    code, _, err = export(capsys, sample, "moodle", *argv)
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_an_unknown_assignment_or_no_gradebook_is_one_line(tmp_path, capsys, sample):
    assert main(["grade", "export", "09-nothing", "--graded", str(sample["graded"]), "--format", "csv"]) == 2
    assert "no assignment '09-nothing' in the gradebook" in capsys.readouterr().err
    assert main(["grade", "export", ASSIGNMENT, "--graded", str(tmp_path), "--format", "csv"]) == 2
    assert "no gradebook at" in capsys.readouterr().err
    assert not (tmp_path / "gradebook.db").exists()


def _moodle_participant(path: str) -> str | None:
    """Moodle's reading of a feedback zip member: the first path part split by '_' into at least 4 pieces whose
    second is a number names the participant (mod/assign/feedback/file/importziplib.php)."""
    for part in path.split("/"):
        info = part.split("_", 4)
        if len(info) >= 4 and info[1].isdigit() and (info[2], info[3]) == ("assignfeedback", "file"):
            return info[1]
    return None


def test_moodle_feedback_zip_names_every_participant(tmp_path, capsys, sample):
    out = tmp_path / "feedback.zip"
    code, stdout, err = export(capsys, sample, "moodle", "--feedback", "--out", str(out))
    assert (code, err) == (0, "") and "4 feedback page(s)" in stdout
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        assert sorted(_moodle_participant(n) for n in names) == ["51", "52", "53", "54"]
        assert "Ada Lovelace_51_assignfeedback_file_/logit_lens.html" in names
        page = sample["graded"] / "feedback" / "cy-zelenski" / ASSIGNMENT / "logit_lens.html"
        assert archive.read("Cy Żeleński_53_assignfeedback_file_/logit_lens.html") == page.read_bytes()


def test_canvas_feedback_files_name_user_and_submitted_file(tmp_path, capsys, sample):
    out = tmp_path / "feedback.zip"
    assert export(capsys, sample, "canvas", "--feedback", "--out", str(out))[0] == 0
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
    # Canvas's reading: the first two all-digit '_'-separated parts are the user id and a file they submitted
    ids = sorted(tuple(p for p in n.split("_") if re.fullmatch(r"\d+", p))[:2] for n in names)
    assert ids == [("101", "9101"), ("102", "9102"), ("103", "9103"), ("104", "9104")]
    assert "lovelaceada_101_9101_logit_lens-feedback.html" in names


def test_feedback_for_a_student_the_lms_never_saw_is_listed(tmp_path, capsys, sample):
    extra = sample["graded"] / "feedback" / "zed-local" / ASSIGNMENT / "logit_lens.html"
    extra.parent.mkdir(parents=True)
    extra.write_text("<p>zed</p>", encoding="utf-8")
    try:
        out = tmp_path / "feedback.zip"
        code, _, err = export(capsys, sample, "moodle", "--feedback", "--out", str(out))
        assert code == 2 and not out.exists()
        assert err.splitlines()[0] == (
            "unmatched: zed-local: logit_lens.html has no moodle identity (lensref collect never saw it)"
        )
        assert export(capsys, sample, "moodle", "--feedback", "--out", str(out), "--skip-unmatched")[0] == 1
        assert len(zipfile.ZipFile(out).namelist()) == 4
    finally:
        extra.unlink()
        extra.parent.rmdir()
        extra.parent.parent.rmdir()


def test_grade_assignment_still_parses_as_before():
    parser = build_parser()
    args = parser.parse_args(["grade", ASSIGNMENT, "--jobs", "2", "--force"])
    assert (args.assignment, args.jobs, args.force) == (ASSIGNMENT, 2, True)
    assert args.func.__module__ == "lensref.commands.grade"
    args = parser.parse_args(["grade", "export", ASSIGNMENT, "--format", "csv"])
    assert (args.assignment, args.format, args.feedback) == (ASSIGNMENT, "csv", False)
    assert args.func.__module__ == "lensref.commands.grade_export"
