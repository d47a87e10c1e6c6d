"""The online quiz: one self-contained block of HTML, CSS and inline JavaScript generated from the bank.

It needs no server and loads nothing: the book page (``book/quiz.md``) displays it at build time, and it
works from the static ``_build/html`` offline. A learner clicks an option and at once sees whether it is
right, the explanation of that option and a link to the section that teaches it. The running score counts
each question's first answer; later clicks still show their explanations (so a learner can explore every
option) without changing the score. Options are shuffled on each visit unless ``shuffle=False``.

:func:`jupyterquiz_questions` gives the same bank in jupyterquiz's format, for use inside a notebook.
"""
from __future__ import annotations

import html
import json

from .bank import Bank

_CSS = """
.lensquiz{--lq-border:#c9ced6;--lq-bg:#f7f8fa;--lq-right:#1e7b45;--lq-wrong:#b3261e;--lq-fg:inherit;
  margin:1rem 0;font-size:1rem}
html[data-theme=dark] .lensquiz{--lq-border:#4a505a;--lq-bg:#22262c;--lq-right:#5cc98a;--lq-wrong:#f2867f}
.lensquiz .lq-score{position:sticky;top:0;z-index:2;background:var(--lq-bg);border:1px solid var(--lq-border);
  border-radius:6px;padding:.5rem .8rem;margin-bottom:1rem;font-weight:600;display:flex;gap:1rem;
  align-items:center;flex-wrap:wrap}
.lensquiz .lq-score .lq-restart{margin-left:auto;font-weight:400}
.lensquiz ol.lq-questions{padding-left:1.6rem}
.lensquiz .lq-question{margin-bottom:1.4rem}
.lensquiz .lq-text{font-weight:600;margin-bottom:.5rem}
.lensquiz .lq-options{display:grid;gap:.4rem}
.lensquiz button{font:inherit;color:inherit;cursor:pointer}
.lensquiz .lq-option{text-align:left;padding:.45rem .7rem;border:1px solid var(--lq-border);border-radius:6px;
  background:var(--lq-bg)}
.lensquiz .lq-option:hover,.lensquiz .lq-option:focus-visible{border-color:currentColor}
.lensquiz .lq-option.lq-right{border:2px solid var(--lq-right)}
.lensquiz .lq-option.lq-wrong{border:2px solid var(--lq-wrong)}
.lensquiz .lq-option.lq-right::after{content:" \\2714";color:var(--lq-right)}
.lensquiz .lq-option.lq-wrong::after{content:" \\2718";color:var(--lq-wrong)}
.lensquiz .lq-feedback{margin-top:.5rem;padding:.5rem .8rem;border-left:4px solid var(--lq-border)}
.lensquiz .lq-feedback.lq-right{border-left-color:var(--lq-right)}
.lensquiz .lq-feedback.lq-wrong{border-left-color:var(--lq-wrong)}
.lensquiz .lq-verdict{font-weight:700}
.lensquiz .lq-right .lq-verdict{color:var(--lq-right)}
.lensquiz .lq-wrong .lq-verdict{color:var(--lq-wrong)}
.lensquiz .lq-note{font-size:.9em;opacity:.8}
"""

# Plain ES5-level JavaScript, no dependencies. Builds feedback with textContent (never innerHTML).
_JS = r"""
(function () {
  var root = document.getElementById(%(root_id)s);
  if (!root || root.dataset.ready) { return; }
  root.dataset.ready = "1";
  var questions = Array.prototype.slice.call(root.querySelectorAll(".lq-question"));
  var total = questions.length;
  var scoreBox = root.querySelector(".lq-score-text");

  function shuffle(q) {
    var box = q.querySelector(".lq-options");
    var items = Array.prototype.slice.call(box.children);
    for (var i = items.length - 1; i > 0; i--) {
      var j = Math.floor(Math.random() * (i + 1));
      var t = items[i]; items[i] = items[j]; items[j] = t;
    }
    items.forEach(function (el) { box.appendChild(el); });
  }

  function update() {
    var answered = 0, correct = 0;
    questions.forEach(function (q) {
      if (q.dataset.first) { answered++; if (q.dataset.first === "right") { correct++; } }
    });
    root.dataset.score = correct;
    root.dataset.answered = answered;
    scoreBox.textContent = answered === total
      ? "Final score: " + correct + " / " + total
      : "Score: " + correct + " / " + total + " (" + answered + " of " + total + " answered)";
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text) { e.textContent = text; }
    return e;
  }

  function choose(q, button) {
    var right = button.dataset.correct === "true";
    var first = !q.dataset.first;
    if (first) { q.dataset.first = right ? "right" : "wrong"; }
    button.classList.add(right ? "lq-right" : "lq-wrong");
    var fb = q.querySelector(".lq-feedback");
    fb.textContent = "";
    fb.className = "lq-feedback " + (right ? "lq-right" : "lq-wrong");
    fb.appendChild(el("span", "lq-verdict", right ? "Correct. " : "Not quite. "));
    fb.appendChild(el("span", "lq-explanation", button.dataset.explanation));
    fb.appendChild(document.createTextNode(" "));
    var link = el("a", "lq-section", "Lesson: " + button.dataset.sectionTitle);
    link.href = button.dataset.sectionUrl;
    fb.appendChild(link);
    if (!first) {
      fb.appendChild(el("div", "lq-note",
        "Your first answer (" + (q.dataset.first === "right" ? "correct" : "wrong") + ") is the one scored."));
    } else if (!right) {
      fb.appendChild(el("div", "lq-note", "Try the other options to read why they are right or wrong."));
    }
    fb.hidden = false;
    update();
  }

  function reset() {
    questions.forEach(function (q) {
      delete q.dataset.first;
      var fb = q.querySelector(".lq-feedback");
      fb.hidden = true; fb.textContent = ""; fb.className = "lq-feedback";
      q.querySelectorAll(".lq-option").forEach(function (b) { b.classList.remove("lq-right", "lq-wrong"); });
      if (root.dataset.shuffle === "true") { shuffle(q); }
    });
    update();
  }

  questions.forEach(function (q) {
    q.querySelectorAll(".lq-option").forEach(function (b) {
      b.addEventListener("click", function () { choose(q, b); });
    });
  });
  root.querySelector(".lq-restart").addEventListener("click", reset);
  reset();
})();
"""


def quiz_html(bank: Bank, *, shuffle: bool = True, base_url: str = "") -> str:
    """The whole quiz as one HTML fragment (style, markup, script); links relative unless ``base_url``."""
    root_id = f"lensquiz-{bank.id}"
    esc = html.escape
    parts = [f'<div class="lensquiz" id="{esc(root_id)}" data-bank="{esc(bank.id)}" '
             f'data-total="{len(bank)}" data-shuffle="{"true" if shuffle else "false"}">',
             f"<style>{_CSS}</style>",
             '<div class="lq-score" role="status" aria-live="polite">'
             f'<span class="lq-score-text">Score: 0 / {len(bank)} (0 of {len(bank)} answered)</span>'
             '<button type="button" class="lq-restart">Start over</button></div>',
             "<noscript><p>This quiz needs JavaScript for its feedback; you can also take it in a terminal "
             "with <code>lensref quiz take</code>.</p></noscript>",
             '<ol class="lq-questions">']
    for q in bank.questions:
        parts.append(f'<li class="lq-question" id="{esc(root_id)}-q{q.number}" data-qid="{esc(q.id)}" '
                     f'data-number="{q.number}">')
        parts.append(f'<p class="lq-text">{esc(q.text)}</p>')
        parts.append(f'<div class="lq-options" role="group" aria-label="Question {q.number} options">')
        for o in q.options:
            parts.append(
                f'<button type="button" class="lq-option" data-letter="{o.letter}" '
                f'data-correct="{"true" if o.correct else "false"}" '
                f'data-explanation="{esc(o.explanation, quote=True)}" '
                f'data-section-url="{esc(o.section_url(base_url), quote=True)}" '
                f'data-section-title="{esc(o.section_title, quote=True)}">{esc(o.text)}</button>')
        parts.append("</div>")
        parts.append('<div class="lq-feedback" role="status" aria-live="polite" hidden></div>')
        parts.append("</li>")
    parts.append("</ol>")
    parts.append(f"<script>{_JS % {'root_id': json.dumps(root_id)}}</script>")
    parts.append("</div>")
    return "\n".join(parts)


def display_quiz(bank: Bank | None = None, **kwargs):
    """An IPython HTML object of the quiz (what the book page displays); ``bank`` defaults to the course's."""
    from IPython.display import HTML

    from .bank import load_bank

    return HTML(quiz_html(bank if bank is not None else load_bank(), **kwargs))


def jupyterquiz_questions(bank: Bank, base_url: str = "") -> list[dict]:
    """The bank as the list of dicts jupyterquiz's ``display_quiz`` takes (its own data stays inline)."""
    out = []
    for q in bank.questions:
        out.append({
            "question": f"{q.number}. {q.text}",
            "type": "multiple_choice",
            "answers": [{
                "answer": o.text,
                "correct": o.correct,
                "feedback": f"{'Correct.' if o.correct else 'Not quite.'} {o.explanation} "
                            f"[Lesson: {o.section_title}]({o.section_url(base_url)})",
            } for o in q.options],
        })
    return out
