"""The quiz bank: faithful to the lesson brief, correct answers, and a schema check that names what is wrong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from lensref import LensError
from lensref.course.quiz import SECTIONS, bank_from_dict, load_bank
from lensref.course.quiz.bank import DEFAULT_BANK

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "quiz"

# The correct option of every question, decided from the lesson text (see the brief's lesson part).
EXPECTED_ANSWERS = {
    1: "Applies the model's final unembedding matrix to intermediate layer activations",
    2: "Predictions close to the input token or simple patterns",
    3: "Later processing corrected or added information to reach the right answer",
    4: "The necessary information was never present in the residual stream or was erased",
    5: "It trains small translator networks per layer for more accurate reading",
    6: "A running hidden state that each layer reads from and writes corrections to",
    7: "The representations have changed basis across layers, making the lens inapplicable",
    8: "Comparing the model's prediction scores for a target token versus a distractor token",
    9: "Using a stronger model to interpret or make sense of activations from a weaker model",
    10: "It requires only a single line of code to implement",
    11: "That the final unembedding matrix can be meaningfully applied to them",
    12: "Predictions related to the general category or topic of the input",
    13: "Decomposes which model components contributed to a particular prediction",
    14: "A user named nostalgebraist on the LessWrong forum",
    15: "The final answer crystallizes into its precise form",
}


def brief_questions() -> list[tuple[str, list[str]]]:
    """The brief's quiz (copied verbatim into the fixture): a question line, then its options; Q15 has two."""
    lines = [l.strip() for l in (FIXTURES / "brief_quiz.txt").read_text(encoding="utf-8").splitlines() if l.strip()]
    out = []
    while lines:
        out.append((lines[0], lines[1:5]))
        lines = lines[5:]
    return out


@pytest.fixture(scope="module")
def bank():
    return load_bank()


def test_default_bank_is_the_course_bank(bank):
    assert DEFAULT_BANK == ROOT / "quizzes" / "logit-lens.yaml"
    assert bank.id == "logit-lens"
    assert len(bank) == 15


def test_questions_and_options_are_the_briefs_in_its_order(bank):
    brief = brief_questions()
    assert len(brief) == 15
    for q, (text, options) in zip(bank.questions, brief):
        assert q.text == text
        assert [o.text for o in q.options[: len(options)]] == options, q.label
        assert len(q.options) == 4, q.label
    # Q15 lost two options in the brief: its first two are the brief's, the last two are ours.
    assert len(brief[14][1]) == 2


def test_every_answer_is_the_one_the_lesson_supports(bank):
    got = {q.number: q.answer.text for q in bank.questions}
    assert got == EXPECTED_ANSWERS
    assert all(sum(o.correct for o in q.options) == 1 for q in bank.questions)


def test_question_ids_are_stable_and_unique(bank):
    ids = [q.id for q in bank.questions]
    assert len(set(ids)) == 15
    assert ids[0] == "lens-definition" and ids[14] == "near-the-end"


def _sentences(text: str) -> int:
    text = re.sub(r"\b(et al|e\.g|i\.e)\.", "X", text)
    return len(re.findall(r"[.!?](?=\s|$)", text))


def test_every_option_has_a_short_explanation_and_a_book_section(bank):
    for q in bank.questions:
        for o in q.options:
            assert 1 <= _sentences(o.explanation) <= 2, f"{q.label} option {o.letter}: {o.explanation}"
            assert len(o.explanation) > 40, f"{q.label} option {o.letter}"
            assert o.section in SECTIONS and o.section != "quiz"
            assert o.section_url() == f"{o.section}.html"
            assert not o.explanation.lower().startswith(("correct", "wrong", "incorrect"))


def test_sections_are_pages_of_the_book(bank):
    book = ROOT / "book"
    if not (book / "intro.md").exists():
        pytest.skip("book pages not written yet (book/intro.md missing)")
    for name in {o.section for q in bank.questions for o in q.options}:
        assert (book / f"{name}.md").exists() or (book / f"{name}.ipynb").exists(), name


def test_lookup_by_number_and_id(bank):
    assert bank.question(3).id == bank.question("3").id == bank.question("Q3").id == "prediction-changes"
    assert bank.question("patchscopes").number == 9
    assert bank.question(9).option("C").text == EXPECTED_ANSWERS[9]
    assert (
        bank.question(9)
        .option("  using a STRONGER model to interpret or make sense of activations from a weaker model ")
        .letter
        == "c"
    )
    for bad in (0, 16, "nope", None):
        with pytest.raises(LensError, match="unknown question"):
            bank.question(bad)
    with pytest.raises(LensError, match=r"question 2 \(early-layers\): no option 'e'"):
        bank.question(2).option("e")
    with pytest.raises(LensError, match="is not one of its options"):
        bank.question(2).option("Predictions about related topics")


# --- the schema check -------------------------------------------------------------------------------------


def _raw_bank() -> dict:
    return yaml.safe_load(DEFAULT_BANK.read_text(encoding="utf-8"))


def _write(tmp_path, data) -> Path:
    path = tmp_path / "bank.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def _reject(tmp_path, data, *fragments):
    path = _write(tmp_path, data)
    with pytest.raises(LensError) as info:
        load_bank(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_raw_bank_round_trips_through_the_schema(tmp_path):
    path = _write(tmp_path, _raw_bank())
    assert [q.answer.letter for q in load_bank(path).questions] == [q.answer.letter for q in load_bank().questions]


def test_missing_answer_is_rejected(tmp_path):
    data = _raw_bank()
    del data["questions"][3]["answer"]
    _reject(tmp_path, data, "question 4 (stays-wrong)", "field 'answer' missing")


def test_answer_not_among_options_is_rejected(tmp_path):
    data = _raw_bank()
    data["questions"][0]["answer"] = "Applies the unembedding to the inputs"
    _reject(tmp_path, data, "question 1 (lens-definition)", "field 'answer'", "is not among the options")


def test_duplicate_ids_are_rejected(tmp_path):
    data = _raw_bank()
    data["questions"][5]["id"] = data["questions"][1]["id"]
    _reject(tmp_path, data, "question 6", "field 'id'", "'early-layers' duplicates question 2")


def test_duplicate_options_are_rejected(tmp_path):
    data = _raw_bank()
    opts = data["questions"][7]["options"]
    opts[3]["text"] = opts[0]["text"].upper()
    _reject(tmp_path, data, "question 8 (logit-difference): option d", "field 'text'", "duplicates option a")


def test_fewer_than_two_options_is_rejected(tmp_path):
    data = _raw_bank()
    q = data["questions"][2]
    q["options"] = [o for o in q["options"] if o["text"] == q["answer"]]
    _reject(tmp_path, data, "question 3 (prediction-changes)", "field 'options'", "at least two options, has 1")


@pytest.mark.parametrize("field", ["text", "explanation"])
def test_option_without_text_or_explanation_is_rejected(tmp_path, field):
    data = _raw_bank()
    del data["questions"][10]["options"][1][field]
    _reject(tmp_path, data, "question 11 (lens-assumption): option b", f"field '{field}' missing")


def test_unknown_section_and_field_are_rejected(tmp_path):
    data = _raw_bank()
    data["questions"][12]["options"][2]["section"] = "appendix"
    _reject(tmp_path, data, "question 13 (direct-logit-attribution): option c", "field 'section'", "'appendix'")
    data = _raw_bank()
    data["questions"][0]["answr"] = "x"
    _reject(tmp_path, data, "question 1", "unknown field(s) 'answr'")


def test_malformed_files_are_rejected(tmp_path):
    _reject(tmp_path, "", "must be a mapping")
    _reject(tmp_path, "questions: [1, 2\n", "not valid YAML")
    _reject(tmp_path, "id: x\nid: y\ntitle: t\nquestions: []\n", "duplicate key 'id'")
    _reject(tmp_path, {"id": "x", "title": "t", "questions": []}, "field 'questions' must be a non-empty list")
    _reject(tmp_path, {"id": "x", "title": "t", "questions": ["what?"]}, "question 1: must be a mapping")
    with pytest.raises(LensError, match="quiz bank not found"):
        load_bank(tmp_path / "nope.yaml")


def test_bank_from_dict_names_its_source():
    with pytest.raises(LensError, match=r"^inline: field 'title' missing"):
        bank_from_dict({"id": "x", "questions": []}, "inline")
