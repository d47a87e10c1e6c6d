"""The quiz asks only what the lesson teaches: for every question, the book page its right answer's
explanation links to contains each of the question's key terms (``key_terms`` in the bank) in its prose.

Prose means the page's Markdown without its code cells and code blocks, with emphasis and inline-code marks
removed and whitespace collapsed, compared case-insensitively. No build is needed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lensref.course.quiz import bank as quiz_bank

ROOT = Path(__file__).resolve().parents[1]
BANK = quiz_bank.load_bank(ROOT / "quizzes" / "logit-lens.yaml")
_FENCE = re.compile(r"^(```+|~~~+).*?^\1\s*$", re.S | re.M)


def page_prose(section: str) -> str:
    text = (ROOT / "book" / f"{section}.md").read_text(encoding="utf-8")
    if text.startswith("---"):
        text = text.split("---", 2)[2]  # front matter
    # code cells and code blocks, but keep admonitions (their body is prose)
    kept = []
    for block in re.split(r"(^```+[^\n]*\n.*?^```+\s*$)", text, flags=re.S | re.M):
        head = block.split("\n", 1)[0]
        if block.startswith("```") and not head.startswith("```{admonition}"):
            continue
        kept.append(block)
    prose = "\n".join(kept)
    prose = re.sub(r"[*`]", "", prose)
    return " ".join(prose.split()).lower()


def test_every_question_has_key_terms():
    assert len(BANK.questions) == 15
    missing = [q.id for q in BANK.questions if not q.key_terms]
    assert missing == [], f"questions without key terms: {missing}"


@pytest.mark.parametrize("question", BANK.questions, ids=lambda q: q.id)
def test_answer_page_teaches_the_key_terms(question):
    section = question.answer.section
    prose = page_prose(section)
    absent = [term for term in question.key_terms if " ".join(term.split()).lower() not in prose]
    assert absent == [], f"{question.label}: its answer links to book/{section}.md, whose prose lacks {absent}"


def test_prose_excludes_code():
    # a term that appears only in a code cell does not count as taught
    prose = page_prose("logit_lens")
    assert "lm.model.lm_head" not in prose and "nostalgebraist" in prose


def test_bank_rejects_bad_key_terms(tmp_path):
    from lensref import LensError

    text = (ROOT / "quizzes" / "logit-lens.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "bank.yaml"
    bad.write_text(text.replace('key_terms: ["crystallizes", "final answer"]', 'key_terms: [""]'), encoding="utf-8")
    with pytest.raises(LensError, match="key_terms"):
        quiz_bank.load_bank(bad)
