"""Grading one learner: `lensref quiz grade` and `lensref quiz take`, right, wrong, mixed and bad input."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from lensref import LensError
from lensref.cli import main
from lensref.course.quiz import grade, load_answers, load_bank
from lensref.course.quiz.bank import SECTIONS
from lensref.course.quiz.scoring import format_result

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "quiz"


@pytest.fixture(scope="module")
def bank():
    return load_bank()


def right_letters(bank) -> dict[str, str]:
    return {str(q.number): q.answer.letter for q in bank.questions}


def wrong_letters(bank) -> dict[str, str]:
    return {str(q.number): next(o.letter for o in q.options if not o.correct) for q in bank.questions}


def test_all_right_by_letter(bank):
    result = grade(bank, right_letters(bank))
    assert (result.score, result.total) == (15, 15)
    assert all(r.correct and r.chosen == r.answer for r in result.results)


def test_all_right_by_text_and_id(bank):
    answers = {q.id: f"  {q.answer.text.upper()} " for q in bank.questions}
    assert grade(bank, answers).score == 15


def test_all_wrong(bank):
    result = grade(bank, wrong_letters(bank))
    assert result.score == 0
    r3 = result.results[2]
    assert (r3.chosen, r3.answer) == ("a", "d")
    assert r3.explanation == bank.question(3).options[0].explanation


def test_mixed_fixture_file(bank):
    result = grade(bank, load_answers(FIXTURES / "mixed.json"))
    assert result.score == 11
    assert [r.number for r in result.results if not r.correct] == [2, 3, 7, 15]
    r15 = result.results[14]
    assert (r15.chosen, r15.chosen_text) == ("d", "Predictions widen to the general topic of the input")


def test_yaml_fixture_with_integer_keys(bank):
    answers = load_answers(FIXTURES / "all_right.yaml")
    assert 1 in answers and "3" in answers and "stays-wrong" in answers
    assert grade(bank, answers).score == 15


@pytest.mark.parametrize(
    "change, message",
    [
        ({"16": "a"}, "unknown question '16'"),
        ({"early-layer": "a"}, "unknown question 'early-layer'"),
        ({"2": "e"}, "question 2 (early-layers): no option 'e'"),
        (
            {"2": "The exact final answer"},
            "question 2 (early-layers): 'The exact final answer' is not one of its options",
        ),
        ({"2": ""}, "question 2 (early-layers): empty answer"),
        ({"2": None}, "question 2 (early-layers): no answer given"),
        ({"2": 3}, "question 2 (early-layers): answer must be a letter"),
        ({"early-layers": "a"}, "question 2 (early-layers) answered twice (keys '2' and 'early-layers')"),
    ],
)
def test_bad_answers_name_the_question(bank, change, message):
    answers = right_letters(bank) | change
    with pytest.raises(LensError) as info:
        grade(bank, answers)
    assert message in str(info.value)


def test_missing_answers_give_no_grade(bank):
    answers = right_letters(bank)
    del answers["4"], answers["12"]
    with pytest.raises(LensError, match=r"2 question\(s\) unanswered: 4, 12"):
        grade(bank, answers)
    with pytest.raises(LensError, match="no answers"):
        grade(bank, {})


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("empty.json", "", "answers file is empty"),
        ("blank.yaml", "  \n", "answers file is empty"),
        ("broken.json", '{"1": "a",', "not valid JSON"),
        ("broken.yaml", "1: [a\n", "not valid YAML"),
        ("dup.json", '{"1": "a", "1": "d"}', "key '1' appears twice"),
        ("dup.yaml", "1: a\n1: d\n", "duplicate key 1"),
        ("list.json", '["a", "b"]', "expected a mapping"),
    ],
)
def test_malformed_answer_files(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LensError, match=message):
        load_answers(path)


# --- the CLI ------------------------------------------------------------------------------------------------


def test_cli_grade_prints_results_and_writes_json(tmp_path, capsys):
    out = tmp_path / "result.json"
    assert main(["quiz", "grade", str(FIXTURES / "mixed.json"), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.strip().splitlines()[-1] == "score: 11/15"
    assert " 1. lens-definition: correct (d)" in text
    # a wrong answer shows its explanation and the right answer
    q7 = load_bank().question(7)
    assert f" 7. early-gibberish: wrong: you chose a) {q7.options[0].text}; the answer is c)" in text
    assert q7.options[0].explanation in text
    data = json.loads(out.read_text())
    assert (data["score"], data["total"]) == (11, 15)
    assert [r["correct"] for r in data["results"]].count(False) == 4
    assert data["results"][6]["explanation"] == q7.options[0].explanation


def test_cli_grade_bad_input_is_an_error_without_a_score(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"1": "d", "2": "z"}', encoding="utf-8")
    out = tmp_path / "result.json"
    assert main(["quiz", "grade", str(bad), "--json", str(out)]) == 2
    captured = capsys.readouterr()
    assert "score" not in captured.out
    assert captured.err.startswith(f"error: {bad}: question 2 (early-layers): no option 'z'")
    assert not out.exists()


def _take(monkeypatch, capsys, lines, *extra):
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(f"{l}\n" for l in lines)))
    code = main(["quiz", "take", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_take_piped_all_right(monkeypatch, capsys, bank, tmp_path):
    out = tmp_path / "take.json"
    code, text, _ = _take(monkeypatch, capsys, right_letters(bank).values(), "--json", str(out))
    assert code == 0
    assert text.strip().splitlines()[-1] == "score: 15/15"
    assert "score so far: 15/15" in text
    assert json.loads(out.read_text())["score"] == 15


def test_take_gives_instant_feedback_on_a_wrong_answer(monkeypatch, capsys, bank):
    answers = list(right_letters(bank).values())
    answers[2] = "b"
    code, text, _ = _take(monkeypatch, capsys, answers)
    assert code == 0
    q3 = bank.question(3)
    assert f"Not quite. {q3.options[1].explanation}" in text
    assert f"The answer is d) {q3.answer.text}" in text
    assert "score so far: 2/3" in text
    assert text.strip().splitlines()[-1] == "score: 14/15"


def test_take_shuffled_letters_follow_the_shown_order(monkeypatch, capsys, bank):
    # by text the order does not matter; by letter, the shown letter of the right answer must be used
    code, text, _ = _take(monkeypatch, capsys, [q.answer.text for q in bank.questions], "--shuffle", "--seed", "3")
    assert code == 0 and text.strip().endswith("score: 15/15")
    shown = [l[5:] for l in text.splitlines() if l[:2] == "  " and l[2:4] in ("a)", "b)", "c)", "d)")]
    orders = [shown[i : i + 4] for i in range(0, 60, 4)]
    assert len(shown) == 60
    assert all(sorted(o) == sorted(x.text for x in q.options) for o, q in zip(orders, bank.questions))
    assert any(o != [x.text for x in q.options] for o, q in zip(orders, bank.questions))


def test_take_stops_without_a_score_on_bad_or_short_input(monkeypatch, capsys, bank):
    code, text, err = _take(monkeypatch, capsys, ["d", "a", "x"])
    assert code == 2 and "score:" not in text
    assert "question 3: 'x' is not one of the options a-d" in err
    code, text, err = _take(monkeypatch, capsys, ["d", "a"])
    assert code == 2 and "score:" not in text
    assert "input ended at question 3 of 15: no score" in err


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_take_at_a_terminal_asks_again_and_can_quit(monkeypatch, capsys, bank):
    monkeypatch.setattr(sys, "stdin", _Terminal("e\nd\nq\n"))
    assert main(["quiz", "take"]) == 1
    text = capsys.readouterr().out
    assert "question 1: 'e' is not one of the options a-d; try again" in text
    assert "score so far: 1/1" in text
    assert "quit at question 2: no score" in text and "score:" not in text


def test_cli_check(tmp_path, capsys):
    assert main(["quiz", "check"]) == 0
    assert "ok: " in capsys.readouterr().out
    bad = tmp_path / "bank.yaml"
    bad.write_text("id: x\ntitle: t\nquestions:\n  - id: q\n    question: Why?\n    options: []\n", encoding="utf-8")
    assert main(["quiz", "check", "--bank", str(bad)]) == 2
    assert capsys.readouterr().err == f"error: {bad}: question 1 (q): field 'answer' missing\n"


# --- the lesson section a result points to is the CHOSEN option's ---------------------------------------------


def options_whose_section_differs_from_the_answers(bank):
    return [(q, o) for q in bank.questions for o in q.options if o.section != q.answer.section]


def test_the_bank_has_wrong_options_that_point_elsewhere(bank):
    """Without such options the tests below could not tell the chosen option's section from the answer's."""
    pairs = options_whose_section_differs_from_the_answers(bank)
    assert len(pairs) >= 5 and len({q.number for q, _ in pairs}) >= 4


def test_a_result_names_the_chosen_options_section(bank):
    for q, option in options_whose_section_differs_from_the_answers(bank):
        answers = right_letters(bank) | {str(q.number): option.letter}
        r = grade(bank, answers).results[q.number - 1]
        assert (r.chosen, r.correct, r.section) == (option.letter, False, option.section)
        assert r.explanation == option.explanation and r.answer_text == q.answer.text
        text = format_result(r)
        assert text.endswith(f"(lesson: {SECTIONS[option.section]}, {option.section}.html)"), text
        assert f"{q.answer.section}.html" not in text


def test_every_option_chosen_gives_its_own_section_and_explanation(bank):
    for q in bank.questions:
        for option in q.options:
            r = grade(bank, right_letters(bank) | {str(q.number): option.letter}).results[q.number - 1]
            assert (r.section, r.explanation, r.chosen_text) == (option.section, option.explanation, option.text)
            assert r.correct is option.correct and r.answer == q.answer.letter


def test_cli_and_json_link_the_chosen_options_page(bank, tmp_path, capsys):
    q, option = options_whose_section_differs_from_the_answers(bank)[0]
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps(right_letters(bank) | {str(q.number): option.letter}), encoding="utf-8")
    out = tmp_path / "result.json"
    assert main(["quiz", "grade", str(answers), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"(lesson: {SECTIONS[option.section]}, {option.section}.html)" in text
    data = json.loads(out.read_text())
    assert data["results"][q.number - 1]["section"] == option.section
    assert (data["score"], data["total"]) == (14, 15)


def test_take_links_the_chosen_options_page(monkeypatch, capsys, bank):
    q, option = options_whose_section_differs_from_the_answers(bank)[0]
    answers = list(right_letters(bank).values())
    answers[q.number - 1] = option.letter
    code, text, _ = _take(monkeypatch, capsys, answers)
    assert code == 0
    block = text.split(f"Question {q.number}/15")[1].split(f"Question {q.number + 1}/15")[0]
    assert f"(lesson: {option.section}.html)" in block and f"(lesson: {q.answer.section}.html)" not in block


# --- every field of a result, its JSON and its text -----------------------------------------------------------


def test_unanswered_questions_have_empty_fields_and_the_answers_section(bank):
    answers = right_letters(bank)
    del answers["3"]
    result = grade(bank, answers, allow_unanswered=True)
    r3 = result.results[2]
    q3 = bank.question(3)
    assert (r3.chosen, r3.chosen_text, r3.explanation, r3.correct) == (None, "", "", False)
    assert (r3.answer, r3.answer_text, r3.section) == (q3.answer.letter, q3.answer.text, q3.answer.section)
    assert (result.score, result.answered, result.total) == (14, 14, 15)
    assert result.score_line() == "score: 14/15 (14 of 15 answered)"
    assert grade(bank, right_letters(bank)).score_line() == "score: 15/15"
    assert format_result(r3) == (
        f" 3. {q3.id}: unanswered; the answer is {q3.answer.letter}) {q3.answer.text} "
        f"(lesson: {SECTIONS[q3.answer.section]}, {q3.answer.section}.html)"
    )


def test_to_dict_is_every_field(bank):
    answers = right_letters(bank) | {"2": "b"}
    del answers["5"]
    result = grade(bank, answers, allow_unanswered=True)
    data = result.to_dict()
    assert list(data) == ["bank", "score", "total", "answered", "results"]
    assert (data["bank"], data["score"], data["total"], data["answered"]) == (bank.id, 13, 15, 14)
    q2 = bank.question(2)
    assert data["results"][1] == {
        "number": 2,
        "id": q2.id,
        "chosen": "b",
        "chosen_text": q2.options[1].text,
        "answer": q2.answer.letter,
        "answer_text": q2.answer.text,
        "correct": q2.options[1].correct,
        "explanation": q2.options[1].explanation,
        "section": q2.options[1].section,
    }
    assert data["results"][4]["chosen"] is None and data["results"][4]["explanation"] == ""
    assert json.loads(json.dumps(data)) == data


def test_format_result_shows_the_explanation_of_a_right_answer_only_when_asked(bank):
    r1 = grade(bank, right_letters(bank)).results[0]
    q1 = bank.question(1)
    assert format_result(r1) == f" 1. {q1.id}: correct ({q1.answer.letter})"
    assert format_result(r1, show_explanation_when_right=True) == (
        f" 1. {q1.id}: correct ({q1.answer.letter})\n    {q1.answer.explanation}"
    )
    wrong = grade(bank, right_letters(bank) | {"1": "a"}).results[0]
    assert format_result(wrong, show_explanation_when_right=True) == format_result(wrong)


def test_errors_name_where_the_answers_came_from(bank):
    with pytest.raises(LensError, match=r"^answers: no answers$"):
        grade(bank, {})
    with pytest.raises(LensError, match=r"^my file: no answers$"):
        grade(bank, {}, where="my file")


def test_a_page_file_without_a_name_or_score(bank):
    from lensref.course.quiz.scoring import PAGE_FORMAT, grade_sheet, sheet_from_data

    sheet = sheet_from_data({"format": PAGE_FORMAT, "bank": bank.id, "answers": {"1": "d"}}, "page.json")
    assert (sheet.learner, sheet.page_score, sheet.from_page, sheet.bank, sheet.where) == (
        "",
        None,
        True,
        bank.id,
        "page.json",
    )
    named = sheet_from_data(
        {"format": PAGE_FORMAT, "bank": bank.id, "answers": {}, "learner": "  Ada \n Lovelace "}, "p"
    )
    assert named.learner == "Ada Lovelace"
    result = grade_sheet(bank, sheet)
    assert (result.answered, result.total) == (1, 15) and result.results[0].chosen == "d"
    plain = sheet_from_data({"1": "d"}, "plain.json")
    assert (plain.from_page, plain.learner, plain.bank, plain.answers) == (False, "", None, {"1": "d"})


def test_answer_files_that_cannot_be_read(tmp_path):
    with pytest.raises(LensError, match=r"^.*missing\.json: no such answers file$"):
        load_answers(tmp_path / "missing.json")
    binary = tmp_path / "answers.json"
    binary.write_bytes(b'{"1": "\xff\xfe"}')
    with pytest.raises(LensError, match=r"answers\.json: cannot read answers \("):
        load_answers(binary)


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("answers", '{"1": "a", "1": "d"}', "key '1' appears twice"),  # no extension, starts with {: JSON
        ("answers.txt", '{"1": "a", "1": "d"}', "key '1' appears twice"),
        ("answers.yml", '{"1": "a", "1": "d"}', "duplicate key"),  # a YAML flow mapping, read as YAML
        ("answers.YAML", '{"1": "a", "1": "d"}', "duplicate key"),
        ("answers", '  \n {"1": "a", "1": "d"}', "key '1' appears twice"),  # leading blank space
        ("answers", "1: a\n1: d\n", "duplicate key"),
        ("answers.json", "1: d\n", "not valid JSON"),  # the extension decides, whatever the content
        ("answers.JSON", "1: d\n", "not valid JSON"),
    ],
)
def test_json_or_yaml_by_extension_then_by_content(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LensError, match=message):
        load_answers(path)


def test_a_page_score_that_is_not_a_number_is_ignored(bank):
    from lensref.course.quiz.scoring import PAGE_FORMAT, sheet_from_data

    page = {"format": PAGE_FORMAT, "bank": bank.id, "answers": {}}
    assert sheet_from_data(page | {"score": 3}, "p").page_score == 3
    assert sheet_from_data(page | {"score": "3"}, "p").page_score is None
    assert sheet_from_data(page | {"score": True}, "p").page_score is None  # a bool is not a score


def test_yaml_content_in_a_file_of_another_extension_is_read_as_yaml(tmp_path):
    path = tmp_path / "answers.txt"
    path.write_text("1: d\nearly-layers: a\n", encoding="utf-8")
    assert load_answers(path) == {1: "d", "early-layers": "a"}


def test_resolve_answers_on_its_own(bank):
    from lensref.course.quiz.scoring import resolve_answers

    with pytest.raises(LensError, match=r"^answers: no answers$"):
        resolve_answers(bank, {})
    with pytest.raises(LensError, match=r"^answers: 14 question\(s\) unanswered: 2, 3, "):
        resolve_answers(bank, {"1": "d"})  # every question is needed unless asked otherwise
    chosen = resolve_answers(bank, {"1": "d"}, allow_unanswered=True)
    assert list(chosen) == [1] and chosen[1].letter == "d"
    with pytest.raises(LensError, match=r"^x\.json: expected a mapping from question \(number 1-15 or id\) to answer$"):
        resolve_answers(bank, ["d"], "x.json")


def test_a_file_that_is_not_a_mapping_says_what_it_is(tmp_path):
    path = tmp_path / "list.json"
    path.write_text('["a", "b"]', encoding="utf-8")
    with pytest.raises(
        LensError, match=r"list\.json: expected a mapping from question \(number or id\) to answer, got list$"
    ):
        load_answers(path)
