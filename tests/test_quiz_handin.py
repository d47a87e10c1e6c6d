"""The online quiz's "Download my answers" file: graded as it is by `lensref quiz grade`, and a folder of such
files by `lensref quiz grade-class`; the terminal quiz as a library function."""

from __future__ import annotations

import csv
import io
import json

import pytest

from lensref import LensError
from lensref.cli import main
from lensref.course.quiz import grade_class, load_bank
from lensref.course.quiz.scoring import PAGE_FORMAT, grade_sheet, load_answer_sheet
from lensref.course.quiz.take import take_quiz
from lensref.course.quiz.web import bank_fingerprint, quiz_html


@pytest.fixture(scope="module")
def bank():
    return load_bank()


def page_file(bank, answers: dict[int, str], learner: str = "", score: int | None = None) -> dict:
    """What the page saves: first answers by question id, as option texts (``answers``: number -> letter)."""
    by_id = {bank.question(n).id: bank.question(n).option(letter).text for n, letter in answers.items()}
    right = sum(bank.question(n).option(letter).correct for n, letter in answers.items())
    return {
        "format": PAGE_FORMAT,
        "version": 1,
        "bank": bank.id,
        "bank_version": bank_fingerprint(bank),
        "learner": learner,
        "saved": "2026-01-01T10:00:00.000Z",
        "answers": by_id,
        "score": right if score is None else score,
        "answered": len(answers),
        "total": len(bank),
    }


def write(path, data):
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def some_answers(bank) -> dict[int, str]:
    """Questions 1, 2, 5 right; 3 and 9 wrong (their first wrong option); the other ten unanswered."""
    wrong = lambda n: next(o.letter for o in bank.question(n).options if not o.correct)  # noqa: E731
    return {
        1: bank.question(1).answer.letter,
        2: bank.question(2).answer.letter,
        3: wrong(3),
        5: bank.question(5).answer.letter,
        9: wrong(9),
    }


def test_partial_page_file_scores_unanswered_as_wrong(bank, tmp_path):
    path = write(tmp_path / "logit-lens-answers.json", page_file(bank, some_answers(bank), "Ada"))
    sheet = load_answer_sheet(path)
    assert (sheet.from_page, sheet.learner, sheet.bank, sheet.page_score) == (True, "Ada", "logit-lens", 3)
    result = grade_sheet(bank, sheet)
    assert (result.score, result.answered, result.total) == (3, 5, 15)
    assert [r.number for r in result.results if r.correct] == [1, 2, 5]
    assert result.results[3].chosen is None and result.results[3].answer == bank.question(4).answer.letter
    assert result.score_line() == "score: 3/15 (5 of 15 answered)"


def test_cli_grades_the_page_file_as_it_is(bank, tmp_path, capsys):
    path = write(tmp_path / "a.json", page_file(bank, some_answers(bank)))
    out = tmp_path / "graded.json"
    assert main(["quiz", "grade", str(path), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.strip().splitlines()[-1] == "score: 3/15 (5 of 15 answered)"
    q4 = bank.question(4)
    assert f" 4. {q4.id}: unanswered; the answer is {q4.answer.letter}) {q4.answer.text}" in text
    data = json.loads(out.read_text())
    assert (data["score"], data["answered"], data["total"]) == (3, 5, 15)
    assert data["results"][3]["chosen"] is None


def test_cli_notes_a_score_that_differs_from_the_page(bank, tmp_path, capsys):
    path = write(tmp_path / "a.json", page_file(bank, some_answers(bank), score=4))
    assert main(["quiz", "grade", str(path)]) == 0
    assert "note: the page showed 4/15" in capsys.readouterr().out


def test_complete_plain_answers_still_required_outside_the_page_file(bank):
    from lensref.course.quiz.scoring import sheet_from_data

    sheet = sheet_from_data({"1": "d"}, "plain.json")
    assert not sheet.from_page
    with pytest.raises(LensError, match=r"14 question\(s\) unanswered"):
        grade_sheet(bank, sheet)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"bank": "other-quiz"}, "answers to the quiz 'other-quiz', not 'logit-lens'"),
        ({"bank": ""}, "field 'bank' must name the quiz"),
        ({"answers": ["d"]}, "field 'answers' must be a mapping"),
        ({"learner": 3}, "field 'learner' must be text"),
        ({"answers": {"lens-definition": "Something else entirely"}}, "is not one of its options"),
        ({"answers": {"no-such-question": "a"}}, "unknown question 'no-such-question'"),
    ],
)
def test_bad_page_files_are_one_line_errors(bank, tmp_path, change, message):
    path = write(tmp_path / "bad.json", page_file(bank, some_answers(bank)) | change)
    with pytest.raises(LensError) as info:
        grade_sheet(bank, load_answer_sheet(path))
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_grade_class_reads_a_folder_of_page_files(bank, tmp_path, capsys):
    folder = tmp_path / "answers"
    folder.mkdir()
    all_right = {q.number: q.answer.letter for q in bank.questions}
    write(folder / "logit-lens-answers-ada.json", page_file(bank, all_right, "Ada"))
    write(folder / "logit-lens-answers.json", page_file(bank, some_answers(bank)))  # no name: the file's stem
    write(folder / "ben.json", page_file(bank, {}, "Ben"))  # opened the page, answered nothing
    (folder / "notes.txt").write_text("not an answers file")  # ignored: not JSON
    result = grade_class(bank, folder)
    assert [(l.learner, l.score) for l in result.learners] == [("Ben", 0), ("Ada", 15), ("logit-lens-answers", 3)]
    assert result.learners[0].chosen == (None,) * 15
    q3 = result.questions[2]
    assert (q3.learners, q3.answered, q3.n_correct) == (3, 2, 1)

    out = tmp_path / "results"
    assert main(["quiz", "grade-class", str(folder), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "graded 3 learners on 15 questions: mean score 6.0/15" in text
    assert "2 learner(s) left questions unanswered (scored wrong): Ben, logit-lens-answers" in text
    rows = list(csv.DictReader(io.StringIO((out / "learners.csv").read_text())))
    assert [(r["learner"], r["score"]) for r in rows] == [("Ben", "0"), ("Ada", "15"), ("logit-lens-answers", "3")]
    assert (out / "difficulty.png").stat().st_size > 1000


def test_grade_class_folder_errors(bank, tmp_path):
    folder = tmp_path / "answers"
    folder.mkdir()
    with pytest.raises(LensError, match="no answers files"):
        grade_class(bank, folder)
    write(folder / "a.json", page_file(bank, some_answers(bank), "Ada"))
    write(folder / "b.json", page_file(bank, some_answers(bank), " Ada "))
    with pytest.raises(LensError, match=r"b.json: learner 'Ada' also in a.json"):
        grade_class(bank, folder)
    write(folder / "b.json", {"1": "d"})  # a plain answers file must still be complete
    with pytest.raises(LensError, match=r"b.json: 14 question\(s\) unanswered"):
        grade_class(bank, folder)
    assert grade_class(bank, folder, blank_as_wrong=True).learners[1].score == 1


def test_take_quiz_as_a_library_function(bank):
    answers = [q.answer.letter if q.number != 4 else "zz" for q in bank.questions]
    out = io.StringIO()
    with pytest.raises(LensError, match="question 4: 'zz' is not one of the options a-d; no score"):
        take_quiz(bank, io.StringIO("\n".join(answers) + "\n"), out)
    out = io.StringIO()
    result = take_quiz(
        bank, io.StringIO("\n".join(q.answer.text for q in bank.questions) + "\n"), out, shuffle=True, seed=1
    )
    assert (result.score, result.total) == (15, 15)
    assert out.getvalue().rstrip().endswith("score: 15/15")


def test_page_keeps_answers_under_a_key_that_changes_with_the_bank(bank):
    from lensref.course.quiz import bank_from_dict

    text = quiz_html(bank)
    assert f'data-version="{bank_fingerprint(bank)}"' in text
    assert "localStorage" in text and "Download my answers" in text and PAGE_FORMAT in text
    data = {
        "id": "t",
        "title": "T",
        "questions": [
            {
                "id": "q",
                "question": "Q?",
                "section": "intro",
                "answer": "yes",
                "options": [{"text": "yes", "explanation": "."}, {"text": "no", "explanation": "."}],
            }
        ],
    }
    before = bank_fingerprint(bank_from_dict(data))
    data["questions"][0]["answer"] = "no"
    assert bank_fingerprint(bank_from_dict(data)) != before
    # every question shows its number as text (not only a list marker a narrow screen can clip)
    for q in bank.questions:
        assert f'<span class="lq-num">{q.number}.</span>' in text
