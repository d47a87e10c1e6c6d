"""The online quiz's HTML: generated from the bank, self-contained (loads nothing), and the book page uses it."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from lensref.course.quiz import jupyterquiz_questions, load_bank, quiz_html

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bank():
    return load_bank()


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.buttons, self.questions, self.tags, self._in = [], [], [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "button" and "lq-option" in a.get("class", ""):
            self.buttons.append(a)
            self._in = "button"
        elif tag == "p" and a.get("class") == "lq-text":
            self._in = "p"

    def handle_data(self, data):
        if self._in == "button":
            self.buttons[-1]["text"] = data
        elif self._in == "p":
            self.questions.append(data)

    def handle_endtag(self, tag):
        self._in = None


def test_html_holds_every_question_option_and_explanation(bank):
    page = _Collect()
    page.feed(quiz_html(bank))
    assert page.questions == [q.text for q in bank.questions]
    options = [o for q in bank.questions for o in q.options]
    assert [b["text"] for b in page.buttons] == [o.text for o in options]
    assert [b["data-correct"] for b in page.buttons] == ["true" if o.correct else "false" for o in options]
    assert [b["data-explanation"] for b in page.buttons] == [o.explanation for o in options]
    assert [b["data-section-url"] for b in page.buttons] == [f"{o.section}.html" for o in options]


def test_html_is_self_contained(bank):
    text = quiz_html(bank)
    assert "http://" not in text and "https://" not in text
    page = _Collect()
    page.feed(text)
    for tag, attrs in page.tags:
        assert "src" not in attrs, (tag, attrs)
        assert tag not in ("link", "iframe", "img"), tag
    assert "innerHTML" not in text  # feedback is built with textContent
    assert re.search(r'data-shuffle="true"', text)
    assert 'data-shuffle="false"' in quiz_html(bank, shuffle=False)


def test_html_escapes_text():
    from lensref.course.quiz import bank_from_dict

    tricky = bank_from_dict(
        {
            "id": "t",
            "title": "T",
            "questions": [
                {
                    "id": "q",
                    "question": "Is <b>bold</b> & safe?",
                    "section": "intro",
                    "answer": "<script>x</script>",
                    "options": [
                        {"text": "<script>x</script>", "explanation": 'Quotes " and <tags> stay text.'},
                        {"text": "no", "explanation": "Fine."},
                    ],
                }
            ],
        }
    )
    text = quiz_html(tricky)
    assert "<b>bold</b>" not in text and html.escape("Is <b>bold</b> & safe?") in text
    assert "<script>x</script>" not in text
    page = _Collect()
    page.feed(text)
    assert page.buttons[0]["data-explanation"] == 'Quotes " and <tags> stay text.'


def test_jupyterquiz_format(bank):
    qs = jupyterquiz_questions(bank)
    assert len(qs) == 15 and all(q["type"] == "multiple_choice" for q in qs)
    assert [sum(a["correct"] for a in q["answers"]) for q in qs] == [1] * 15
    assert qs[8]["answers"][2]["answer"] == bank.question(9).answer.text
    assert "(patchscopes.html)" in qs[8]["answers"][2]["feedback"]


def test_book_page_builds_the_quiz_from_the_bank():
    page = (ROOT / "book" / "quiz.md").read_text(encoding="utf-8")
    assert page.startswith("---\nfile_format: mystnb")
    cell = re.search(r"```\{code-cell\}[^\n]*\n(.*?)```", page, re.S).group(1)
    assert ":tags: [remove-input]" in cell
    assert "display_quiz()" in cell
    # no question is hand-copied into the page
    for q in load_bank().questions:
        assert q.text not in page
