"""The online quiz in a real browser: answers, instant feedback, the running score, offline."""
from __future__ import annotations

import pytest

from lensref.course.quiz import load_bank

PAGE = "book/quiz.html"
ROOT_SEL = "#lensquiz-logit-lens"


@pytest.fixture(scope="module")
def bank():
    return load_bank()


def _open(page, site_url):
    page.goto(site_url + PAGE)
    page.wait_for_selector(f"{ROOT_SEL}[data-ready='1']")
    return page.locator(ROOT_SEL)


def _question(quiz, n):
    return quiz.locator(f"{ROOT_SEL}-q{n}")


def _click(question, text):
    question.get_by_role("button", name=text, exact=True).click()


def test_page_shows_the_bank(page, site_url, bank):
    quiz = _open(page, site_url)
    assert quiz.locator(".lq-question").count() == len(bank) == 15
    for q in bank.questions:
        el = _question(quiz, q.number)
        assert el.locator(".lq-text").inner_text() == q.text
        shown = el.locator(".lq-option").all_inner_texts()
        assert sorted(shown) == sorted(o.text for o in q.options)  # possibly shuffled
    # the code cell that builds it is hidden
    assert "display_quiz" not in page.inner_text("main")
    assert page.unexpected_errors() == [] and page.external_requests == []


def test_all_right_gives_the_full_score(page, site_url, bank):
    quiz = _open(page, site_url)
    score = quiz.locator(".lq-score-text")
    assert score.inner_text() == "Score: 0 / 15 (0 of 15 answered)"
    for q in bank.questions:
        el = _question(quiz, q.number)
        _click(el, q.answer.text)
        fb = el.locator(".lq-feedback")
        assert fb.is_visible()
        assert fb.inner_text().startswith("Correct. " + q.answer.explanation)
        if q.number < 15:
            assert score.inner_text() == f"Score: {q.number} / 15 ({q.number} of 15 answered)"
    assert score.inner_text() == "Final score: 15 / 15"
    assert quiz.get_attribute("data-score") == "15"
    assert page.unexpected_errors() == [] and page.external_requests == []


def test_a_wrong_answer_shows_its_explanation_and_counts(page, site_url, bank, site_dir):
    quiz = _open(page, site_url)
    q3 = bank.question(3)
    wrong = q3.options[0]
    el = _question(quiz, 3)
    _click(el, wrong.text)
    fb = el.locator(".lq-feedback")
    assert fb.is_visible()
    text = fb.inner_text()
    assert text.startswith("Not quite. " + wrong.explanation)
    link = fb.locator("a.lq-section")
    assert link.get_attribute("href") == f"{wrong.section}.html"
    assert (site_dir / "book" / f"{wrong.section}.html").exists()
    score = quiz.locator(".lq-score-text")
    assert score.inner_text() == "Score: 0 / 15 (1 of 15 answered)"
    # a second try shows the right option's explanation but the first answer stays scored
    _click(el, q3.answer.text)
    assert fb.inner_text().startswith("Correct. " + q3.answer.explanation)
    assert "first answer (wrong) is the one scored" in fb.inner_text()
    assert score.inner_text() == "Score: 0 / 15 (1 of 15 answered)"
    for q in bank.questions:
        if q.number != 3:
            _click(_question(quiz, q.number), q.answer.text)
    assert score.inner_text() == "Final score: 14 / 15"
    # start over clears everything
    quiz.get_by_role("button", name="Start over").click()
    assert score.inner_text() == "Score: 0 / 15 (0 of 15 answered)"
    assert not fb.is_visible()
    assert page.unexpected_errors() == [] and page.external_requests == []


def test_external_requests_are_caught(page, site_url):
    """The guard itself works: a request to another host is recorded (and blocked)."""
    _open(page, site_url)
    page.evaluate("() => fetch('http://example.invalid/x').catch(() => null)")
    page.wait_for_timeout(200)
    assert page.external_requests == ["http://example.invalid/x"]
    page.external_requests.clear()  # expected here: keep the fixture's teardown check for real leaks
