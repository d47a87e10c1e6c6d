"""Class grading from an LMS responses CSV: known results on a sample, and errors that name the row."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from lensref import LensError
from lensref.cli import main
from lensref.course.quiz import grade_class, load_bank

SAMPLE = Path(__file__).resolve().parent / "fixtures" / "quiz" / "responses.csv"
# The sample: ada answers all right, ben all wrong (each question's first wrong option), cy right on odd
# questions (some by text, some as capital letters) and the last wrong option on even ones, dee all right
# but question 7 ("a"). Columns: learner, email (ignored), questions as "1", "Response 3", "tuned-lens", "Q9".


@pytest.fixture(scope="module")
def bank():
    return load_bank()


@pytest.fixture(scope="module")
def result(bank):
    return grade_class(bank, SAMPLE)


def test_learner_scores(result):
    assert [(l.learner, l.score) for l in result.learners] == [("ada", 15), ("ben", 0), ("cy", 8), ("dee", 14)]
    assert result.mean_score == pytest.approx(37 / 4)
    assert result.ignored_columns == ("email",)


def test_question_statistics(result):
    q = {s.number: s for s in result.questions}
    # question 7: ben and dee both chose a
    assert (q[7].n_correct, q[7].share_correct, q[7].most_wrong, q[7].most_wrong_count) == (2, 0.5, "a", 2)
    assert q[7].counts == {"a": 2, "b": 0, "c": 2, "d": 0}
    # question 2: ben chose b, cy chose d: a tie goes to the earlier letter
    assert (q[2].share_correct, q[2].most_wrong, q[2].most_wrong_count) == (0.5, "b", 1)
    # odd questions other than 7: everyone but ben
    assert [q[n].share_correct for n in (1, 3, 5, 9, 15)] == [0.75] * 5
    assert q[1].most_wrong_text == load_bank().question(1).options[0].text


def test_cli_writes_csvs_and_plot(tmp_path, capsys, bank):
    out = tmp_path / "results"
    assert main(["quiz", "grade-class", str(SAMPLE), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "graded 4 learners on 15 questions: mean score 9.2/15" in text
    assert "ignored columns: email" in text
    learners = list(csv.DictReader(io.StringIO((out / "learners.csv").read_text())))
    assert [(r["learner"], r["score"], r["total"]) for r in learners] == [
        ("ada", "15", "15"),
        ("ben", "0", "15"),
        ("cy", "8", "15"),
        ("dee", "14", "15"),
    ]
    assert learners[3]["7"] == "0" and learners[3]["8"] == "1"
    stats = list(csv.DictReader(io.StringIO((out / "questions.csv").read_text())))
    assert len(stats) == 15
    s7 = stats[6]
    assert (
        s7["id"],
        s7["answer"],
        s7["share_correct"],
        s7["most_chosen_wrong"],
        s7["most_chosen_wrong_count"],
        s7["chose_a"],
    ) == ("early-gibberish", "c", "0.500", "a", "2", "2")
    assert s7["most_chosen_wrong_text"] == bank.question(7).options[0].text
    assert stats[0]["most_chosen_wrong"] == "a" and stats[0]["share_correct"] == "0.750"
    png = (out / "difficulty.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert sorted(p.name for p in out.iterdir()) == ["difficulty.png", "learners.csv", "questions.csv"]


def _variant(tmp_path, edit) -> Path:
    rows = list(csv.reader(SAMPLE.read_text().splitlines()))
    edit(rows)
    path = tmp_path / "responses.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def _set(r, c, v):
    def edit(rows):
        rows[r][c] = v

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (_set(0, 4, "Q16"), "column 'Q16': unknown question 16 (the quiz has 15)"),
        (_set(0, 1, "lens-definition"), "columns 'lens-definition' and '1' both hold question 1 (lens-definition)"),
        (_set(0, 2, "one"), "no column for question(s) 1"),
        (_set(3, 0, "ada"), "line 4: learner 'ada' also on line 2"),
        (_set(2, 0, ""), "line 3: no learner in column 'learner'"),
        (_set(2, 5, ""), "line 3 (learner 'ben'), column '4': question 4 (stays-wrong) unanswered"),
        (_set(2, 5, "e"), "line 3 (learner 'ben'), column '4': question 4 (stays-wrong): no option 'e'"),
        (
            _set(4, 8, "Not an option"),
            "line 5 (learner 'dee'), column '7': question 7 (early-gibberish): 'Not an option'",
        ),
        (lambda rows: rows[2].pop(), "line 3: 16 fields, the header has 17"),
        (lambda rows: rows.__delitem__(slice(1, None)), "no learners (only a header row)"),
    ],
)
def test_bad_responses_name_the_row_and_question(tmp_path, bank, edit, message):
    path = _variant(tmp_path, edit)
    with pytest.raises(LensError) as info:
        grade_class(bank, path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_cli_bad_input_writes_nothing(tmp_path, capsys):
    path = _variant(tmp_path, _set(2, 5, "zz"))
    out = tmp_path / "results"
    assert main(["quiz", "grade-class", str(path), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and "'zz'" in captured.err
    assert "graded" not in captured.out
    assert not out.exists()


def test_blank_as_wrong_counts_blanks(tmp_path, bank):
    path = _variant(tmp_path, _set(4, 8, "-"))  # dee leaves question 7 blank (Moodle writes "-")
    result = grade_class(bank, path, blank_as_wrong=True)
    dee = result.learners[3]
    assert dee.score == 14 and dee.chosen[6] is None
    q7 = result.questions[6]
    assert (q7.answered, q7.n_correct, q7.most_wrong, q7.most_wrong_count) == (3, 2, "a", 1)


def test_empty_and_malformed_files(tmp_path, bank):
    empty = tmp_path / "empty.csv"
    empty.write_text("\n\n")
    with pytest.raises(LensError, match="responses file is empty"):
        grade_class(bank, empty)
    broken = tmp_path / "broken.csv"
    broken.write_text('learner,1\n"ada,d\n')
    with pytest.raises(LensError, match="malformed CSV"):
        grade_class(bank, broken)
    with pytest.raises(LensError, match="no such responses file"):
        grade_class(bank, tmp_path / "missing.csv")


def test_semicolon_export_and_named_learner_column(tmp_path, bank):
    text = SAMPLE.read_text().replace(",", ";")
    # cy's answer texts contain no commas or semicolons, so the swap keeps the sample intact
    path = tmp_path / "semi.csv"
    path.write_text("\ufeff" + text, encoding="utf-8")  # with the BOM spreadsheet programs add
    result = grade_class(bank, path, id_column="email")
    assert [(l.learner, l.score) for l in result.learners][:2] == [("ada@example.org", 15), ("ben@example.org", 0)]
    assert result.ignored_columns == ("learner",)


# --- Canvas's quiz "Student Analysis" report ------------------------------------------------------------------------
# tests/data/quiz/canvas_student_analysis.csv is the sample class above as Canvas's report lays it out: name, id,
# sis_id, section, section_id, section_sis_id, submitted, attempt; each question as "<Canvas id>: <text>" (in an
# order of Canvas's own, not the bank's) holding the chosen answer's text, then its points column ("1.0"); then
# n correct, n incorrect, score.

CANVAS = Path(__file__).resolve().parent / "data" / "quiz" / "canvas_student_analysis.csv"
CANVAS_NAMES = {"Ada Lovelace": "ada", "Ben Okafor": "ben", "Cy Żeleński": "cy", "Dee O'Neil": "dee"}


def test_canvas_student_analysis_grades_like_the_moodle_export(bank, result):
    canvas = grade_class(bank, CANVAS)
    assert [(CANVAS_NAMES[l.learner], l.score) for l in canvas.learners] == [
        (l.learner, l.score) for l in result.learners
    ]
    assert [(l.chosen, l.correct) for l in canvas.learners] == [(l.chosen, l.correct) for l in result.learners]
    assert canvas.questions == result.questions
    assert canvas.ignored_columns == (
        "id",
        "sis_id",
        "section",
        "section_id",
        "section_sis_id",
        "submitted",
        "attempt",
        "n correct",
        "n incorrect",
        "score",
    )
    # the report's own totals agree with ours
    rows = list(csv.DictReader(io.StringIO(CANVAS.read_text(encoding="utf-8"))))
    assert [int(r["n correct"]) for r in rows] == [l.score for l in canvas.learners]


def test_canvas_report_by_id_column_and_cli(tmp_path, bank, capsys):
    by_id = grade_class(bank, CANVAS, id_column="id")
    assert [(l.learner, l.score) for l in by_id.learners] == [("101", 15), ("102", 0), ("103", 8), ("104", 14)]
    out = tmp_path / "results"
    assert main(["quiz", "grade-class", str(CANVAS), "--out", str(out)]) == 0
    assert "graded 4 learners on 15 questions: mean score 9.2/15" in capsys.readouterr().out
    learners = list(csv.DictReader(io.StringIO((out / "learners.csv").read_text(encoding="utf-8"))))
    assert [(r["learner"], r["score"]) for r in learners][2] == ("Cy Żeleński", "8")


def _canvas_variant(tmp_path, edit) -> Path:
    rows = list(csv.reader(io.StringIO(CANVAS.read_text(encoding="utf-8"))))
    edit(rows)
    path = tmp_path / "student_analysis.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def _reword_question_7(rows):
    col = next(i for i, h in enumerate(rows[0]) if h.startswith("8807: "))
    rows[0][col] = "8807: A question worded otherwise?"


def _anonymous(rows):
    for row in rows:
        del row[0:3]


@pytest.mark.parametrize(
    "edit, message",
    [
        (_reword_question_7, "no column for question(s) 7 (a Canvas Student Analysis heads each question's column"),
        (lambda rows: rows.append(list(rows[1])), "line 6: learner 'Ada Lovelace' also on line 2"),
        (_anonymous, "this Student Analysis names no learner"),
        (lambda rows: rows[3].__setitem__(8, "Not an answer"), "line 4 (learner 'Cy Żeleński'), column '8804: "),
    ],
)
def test_bad_canvas_reports_are_one_line(tmp_path, bank, edit, message):
    path = _canvas_variant(tmp_path, edit)
    with pytest.raises(LensError) as info:
        grade_class(bank, path)
    assert message in str(info.value) and "\n" not in str(info.value)
