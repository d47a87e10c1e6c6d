"""LMS exports: parse GIFT, Moodle XML and JSON back and compare them with the bank."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET

import pytest

from lensref.cli import main
from lensref.course.quiz import bank_from_dict, load_bank
from lensref.course.quiz.export import to_gift, to_json, to_moodle_xml


@pytest.fixture(scope="module")
def bank():
    return load_bank()


def _unescape_gift(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _split_unescaped(text: str, marks: str) -> list[tuple[str, str]]:
    """Split GIFT answer text at unescaped ``marks``: [(mark, piece), ...]."""
    out, cur, mark, i = [], "", None, 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur += text[i : i + 2]
            i += 2
            continue
        if c in marks:
            if mark is not None or cur.strip():
                out.append((mark, cur))
            mark, cur = c, ""
        else:
            cur += c
        i += 1
    out.append((mark, cur))
    return out


def parse_gift(text: str) -> list[dict]:
    """A small GIFT reader for multiple-choice questions with per-answer feedback (what Moodle imports)."""
    body = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith(("//", "$CATEGORY")))
    questions = []
    for block in re.split(r"\n\s*\n", body.strip()):
        m = re.fullmatch(r"::(.*?)(?<!\\)::(.*?)(?<!\\)\{(.*)(?<!\\)\}", block.strip(), re.S)
        assert m, block
        title, qtext, answers = m.groups()
        options = []
        for mark, piece in _split_unescaped(answers, "=~"):
            assert mark in "=~"
            parts = [p for _, p in _split_unescaped("#" + piece, "#")]
            assert len(parts) == 2, piece  # the answer, then its feedback
            text_part, feedback = parts
            options.append(
                {
                    "text": _unescape_gift(text_part.strip()),
                    "correct": mark == "=",
                    "feedback": _unescape_gift(feedback.strip()),
                }
            )
        questions.append({"id": _unescape_gift(title), "question": _unescape_gift(qtext.strip()), "options": options})
    return questions


def test_gift_round_trip(bank):
    parsed = parse_gift(to_gift(bank))
    assert len(parsed) == 15
    for q, p in zip(bank.questions, parsed):
        assert p["id"] == q.id and p["question"] == q.text
        assert [o["text"] for o in p["options"]] == [o.text for o in q.options]
        assert [o["correct"] for o in p["options"]] == [o.correct for o in q.options]
        for o, po in zip(q.options, p["options"]):
            assert (
                po["feedback"]
                == f"{'Correct.' if o.correct else 'Not quite.'} {o.explanation} (Lesson: {o.section_title})"
            )


def test_gift_escapes_special_characters(bank):
    tricky = bank_from_dict(
        {
            "id": "t",
            "title": "T",
            "questions": [
                {
                    "id": "braces",
                    "question": "Which of {a} = b: ~c # d?",
                    "section": "intro",
                    "answer": "x = {1}",
                    "options": [
                        {"text": "x = {1}", "explanation": "Right: 50% ~ #1."},
                        {"text": "y \\ 2", "explanation": "Wrong {really}."},
                    ],
                }
            ],
        }
    )
    parsed = parse_gift(to_gift(tricky))
    assert parsed[0]["question"] == "Which of {a} = b: ~c # d?"
    assert [o["text"] for o in parsed[0]["options"]] == ["x = {1}", "y \\ 2"]
    assert parsed[0]["options"][0]["feedback"].startswith("Correct. Right: 50% ~ #1.")


def test_moodle_xml_round_trip(bank):
    root = ET.fromstring(to_moodle_xml(bank, base_url="https://example.org/course/book/"))
    assert root.tag == "quiz"
    assert root[0].get("type") == "category"
    questions = root.findall("question[@type='multichoice']")
    assert len(questions) == 15
    for q, el in zip(bank.questions, questions):
        assert el.findtext("idnumber") == q.id
        assert html.unescape(re.sub("<.*?>", "", el.findtext("questiontext/text"))) == q.text
        assert el.findtext("single") == "true"
        answers = el.findall("answer")
        assert [html.unescape(a.findtext("text")) for a in answers] == [o.text for o in q.options]
        assert [a.get("fraction") for a in answers] == ["100" if o.correct else "0" for o in q.options]
        for o, a in zip(q.options, answers):
            fb = a.findtext("feedback/text")
            assert html.escape(o.explanation) in fb
            assert f'href="https://example.org/course/book/{o.section}.html"' in fb


def test_json_round_trip(bank):
    data = json.loads(to_json(bank))
    assert data["id"] == "logit-lens" and len(data["questions"]) == 15
    # the JSON form carries everything the bank schema needs: rebuild a bank from it
    rebuilt = bank_from_dict(
        {
            "id": data["id"],
            "title": data["title"],
            "questions": [
                {
                    "id": q["id"],
                    "question": q["question"],
                    "answer": next(o["text"] for o in q["options"] if o["letter"] == q["answer"]),
                    "key_terms": q["key_terms"],
                    "options": [
                        {"text": o["text"], "explanation": o["explanation"], "section": o["section"]}
                        for o in q["options"]
                    ],
                }
                for q in data["questions"]
            ],
        }
    )
    assert rebuilt.questions == bank.questions
    assert data["questions"][1]["options"][0]["url"] == "what_you_see.html"


@pytest.mark.parametrize("fmt, ext", [("gift", "gift"), ("moodle-xml", "xml"), ("json", "json")])
def test_cli_export_writes_a_file(tmp_path, monkeypatch, capsys, bank, fmt, ext):
    monkeypatch.chdir(tmp_path)
    assert main(["quiz", "export", "--format", fmt]) == 0
    out = tmp_path / f"logit-lens.{ext}"
    assert out.exists() and f"wrote logit-lens.{ext}" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    if fmt == "gift":
        assert len(parse_gift(text)) == 15
    elif fmt == "moodle-xml":
        assert len(ET.fromstring(text).findall("question[@type='multichoice']")) == 15
    else:
        assert len(json.loads(text)["questions"]) == 15


def test_cli_export_to_stdout_and_bad_folder(tmp_path, capsys):
    assert main(["quiz", "export", "--format", "gift", "-o", "-"]) == 0
    assert len(parse_gift(capsys.readouterr().out)) == 15
    assert main(["quiz", "export", "--format", "gift", "-o", str(tmp_path / "no" / "x.gift")]) == 2
    assert "does not exist" in capsys.readouterr().err
