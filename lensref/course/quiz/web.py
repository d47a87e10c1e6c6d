"""The online quiz: one self-contained block of HTML, CSS and inline JavaScript generated from the bank.

It needs no server and loads nothing: the book page (``book/quiz.md``) displays it at build time, and it
works from the static ``_build/html`` offline. A learner clicks an option and at once sees whether it is
right, the explanation of that option and a link to the section that teaches it. The running score (sticky:
it stays in view while scrolling) counts each question's first answer; later clicks still show their
explanations (so a learner can explore every option) without changing the score.

Answers, the options' order and the learner's name are kept in the browser's ``localStorage`` under a key
naming the bank and a fingerprint of its content (:func:`bank_fingerprint`), so they survive a reload and a
changed quiz starts afresh; **Start over** clears them (and reshuffles). **Download my answers** saves a
JSON file (the format :mod:`.scoring` documents) that ``lensref quiz grade`` and ``grade-class`` accept as
they are. Colours come from the book theme's variables, so the quiz follows its light and dark modes.
Options are shuffled on a first visit unless ``shuffle=False``.

:func:`jupyterquiz_questions` gives the same bank in jupyterquiz's format, for use inside a notebook.
"""

from __future__ import annotations

import hashlib
import html
import json
from typing import TYPE_CHECKING, Any

from .bank import Bank

if TYPE_CHECKING:
    from IPython.display import HTML

_CSS = """
.lensquiz{--lq-fg:var(--pst-color-text-base,#222832);--lq-bg:var(--pst-color-background,#fff);
  --lq-surface:var(--pst-color-surface,#f3f4f5);--lq-border:var(--pst-color-border,#c2c8d0);
  --lq-muted:var(--pst-color-text-muted,#48566b);--lq-right:#1e7b45;--lq-wrong:#b3261e;--lq-top:0px;
  color:var(--lq-fg);background:var(--lq-bg);margin:1rem 0;font-size:1rem;line-height:1.5}
html[data-theme=dark] .lensquiz{--lq-right:#5cc98a;--lq-wrong:#f2867f}
.output:has(> .lensquiz),.cell_output:has(.lensquiz){overflow:visible!important;background:transparent!important;
  padding:0!important;border:0!important}
.lensquiz .lq-score{position:sticky;top:var(--lq-top);z-index:2;background:var(--lq-surface);
  border:1px solid var(--lq-border);border-radius:6px;padding:.45rem .8rem;margin-bottom:1rem;font-weight:600;
  display:flex;gap:.4rem 1rem;align-items:center;box-shadow:0 2px 4px rgba(0,0,0,.12)}
.lensquiz .lq-score .lq-score-text{flex:1 1 auto;min-width:0}
.lensquiz .lq-score .lq-restart{flex:none;font-weight:400}
.lensquiz ol.lq-questions{list-style:none;padding-left:0;margin:0}
.lensquiz .lq-question{margin-bottom:1.4rem}
.lensquiz .lq-head{display:flex;gap:.45rem;align-items:baseline;margin-bottom:.5rem}
.lensquiz .lq-num{flex:none;font-weight:700;min-width:1.7em}
.lensquiz .lq-text{font-weight:600;margin:0}
.lensquiz .lq-options{display:grid;gap:.4rem}
.lensquiz button{font:inherit;color:var(--lq-fg);background:var(--lq-surface);border:1px solid var(--lq-border);
  border-radius:6px;padding:.3rem .7rem;cursor:pointer}
.lensquiz .lq-option{text-align:left;padding:.45rem .7rem;overflow-wrap:anywhere}
.lensquiz button:hover,.lensquiz button:focus-visible{border-color:currentColor}
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
.lensquiz .lq-note{font-size:.9em;color:var(--lq-muted)}
.lensquiz .lq-handin{border:1px solid var(--lq-border);border-radius:6px;padding:.8rem;display:grid;gap:.6rem}
.lensquiz .lq-handin label{display:grid;gap:.25rem;font-weight:600}
.lensquiz .lq-handin input{font:inherit;font-weight:400;color:var(--lq-fg);background:var(--lq-bg);
  border:1px solid var(--lq-border);border-radius:6px;padding:.3rem .5rem;max-width:24rem}
.lensquiz .lq-handin .lq-download{justify-self:start;font-weight:600}
.lensquiz .lq-handin p{margin:0}
@media (max-width:480px){
  .lensquiz .lq-score{padding:.35rem .55rem;font-size:.92rem}
  .lensquiz .lq-score .lq-restart{padding:.15rem .5rem}
  .lensquiz .lq-option{padding:.4rem .55rem}
  .lensquiz .lq-feedback{padding:.45rem .6rem}
}
"""

# Plain ES5-level JavaScript, no dependencies. Builds feedback with textContent (never as markup).
_JS = r"""
(function () {
  var root = document.getElementById(__ROOT_ID__);
  if (!root || root.dataset.ready) { return; }
  var KEY = "lensquiz:" + root.dataset.bank + ":" + root.dataset.version;
  var questions = Array.prototype.slice.call(root.querySelectorAll(".lq-question"));
  var total = questions.length;
  var scoreBox = root.querySelector(".lq-score-text");
  var nameBox = root.querySelector(".lq-learner");
  var storageNote = root.querySelector(".lq-storage-note");
  var state = load() || fresh();

  function fresh() { return {first: {}, tried: {}, last: {}, order: {}, learner: ""}; }

  function load() {
    try {
      var s = JSON.parse(window.localStorage.getItem(KEY));
      if (s && typeof s.first === "object" && typeof s.tried === "object" && typeof s.order === "object") {
        s.last = s.last || {};
        s.learner = typeof s.learner === "string" ? s.learner : "";
        return s;
      }
    } catch (e) { /* no storage, or not ours: start afresh */ }
    return null;
  }

  function save() {
    questions.forEach(function (q) { state.order[q.dataset.qid] = letters(q); });
    try {
      window.localStorage.setItem(KEY, JSON.stringify(state));
    } catch (e) {
      storageNote.hidden = false;
    }
  }

  function options(q) { return Array.prototype.slice.call(q.querySelectorAll(".lq-option")); }
  function letters(q) { return options(q).map(function (b) { return b.dataset.letter; }); }
  function byLetter(q, letter) {
    var found = null;
    options(q).forEach(function (b) { if (b.dataset.letter === letter) { found = b; } });
    return found;
  }
  function isRight(b) { return b.dataset.correct === "true"; }

  function order(q, wanted) {
    var box = q.querySelector(".lq-options");
    var have = letters(q).slice().sort().join();
    if (!wanted || wanted.slice().sort().join() !== have) { return false; }
    wanted.forEach(function (l) { box.appendChild(byLetter(q, l)); });
    return true;
  }

  function shuffle(q) {
    var box = q.querySelector(".lq-options");
    var items = options(q);
    for (var i = items.length - 1; i > 0; i--) {
      var j = Math.floor(Math.random() * (i + 1));
      var t = items[i]; items[i] = items[j]; items[j] = t;
    }
    items.forEach(function (b) { box.appendChild(b); });
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text) { e.textContent = text; }
    return e;
  }

  function render(q) {
    var qid = q.dataset.qid, first = state.first[qid] && byLetter(q, state.first[qid]);
    var fb = q.querySelector(".lq-feedback");
    options(q).forEach(function (b) { b.classList.remove("lq-right", "lq-wrong"); });
    fb.textContent = ""; fb.className = "lq-feedback";
    if (!first) { delete q.dataset.first; delete state.first[qid]; fb.hidden = true; return; }
    q.dataset.first = isRight(first) ? "right" : "wrong";
    var tried = state.tried[qid] || [];
    tried.forEach(function (l) {
      var b = byLetter(q, l);
      if (b) { b.classList.add(isRight(b) ? "lq-right" : "lq-wrong"); }
    });
    var shown = byLetter(q, state.last[qid]) || first, right = isRight(shown);
    fb.className = "lq-feedback " + (right ? "lq-right" : "lq-wrong");
    fb.appendChild(el("span", "lq-verdict", right ? "Correct. " : "Not quite. "));
    fb.appendChild(el("span", "lq-explanation", shown.dataset.explanation));
    fb.appendChild(document.createTextNode(" "));
    var link = el("a", "lq-section", "Lesson: " + shown.dataset.sectionTitle);
    link.href = shown.dataset.sectionUrl;
    fb.appendChild(link);
    if (tried.length > 1) {
      fb.appendChild(el("div", "lq-note",
        "Your first answer (" + (q.dataset.first === "right" ? "correct" : "wrong") + ") is the one scored."));
    } else if (!right) {
      fb.appendChild(el("div", "lq-note", "Try the other options to read why they are right or wrong."));
    }
    fb.hidden = false;
  }

  function counts() {
    var answered = 0, correct = 0;
    questions.forEach(function (q) {
      if (q.dataset.first) { answered++; if (q.dataset.first === "right") { correct++; } }
    });
    return {answered: answered, correct: correct};
  }

  function update() {
    var c = counts();
    root.dataset.score = c.correct;
    root.dataset.answered = c.answered;
    scoreBox.textContent = c.answered === total
      ? "Final score: " + c.correct + " / " + total
      : "Score: " + c.correct + " / " + total + " (" + c.answered + " of " + total + " answered)";
  }

  function choose(q, b) {
    var qid = q.dataset.qid, l = b.dataset.letter;
    if (!state.first[qid]) { state.first[qid] = l; }
    var tried = state.tried[qid] || (state.tried[qid] = []);
    if (tried.indexOf(l) < 0) { tried.push(l); }
    state.last[qid] = l;
    save();
    render(q);
    update();
  }

  function reset() {
    if (counts().answered > 0 && !window.confirm("Start over? Your answers on this page will be cleared.")) {
      return;
    }
    var learner = state.learner;
    state = fresh();
    state.learner = learner;
    questions.forEach(function (q) { if (root.dataset.shuffle === "true") { shuffle(q); } render(q); });
    save();
    update();
  }

  function answersFile() {
    var c = counts(), answers = {};
    questions.forEach(function (q) {
      var first = state.first[q.dataset.qid] && byLetter(q, state.first[q.dataset.qid]);
      if (first) { answers[q.dataset.qid] = first.textContent; }
    });
    return {format: "lensref-quiz-answers", version: 1, bank: root.dataset.bank,
            bank_version: root.dataset.version, learner: state.learner, saved: new Date().toISOString(),
            answers: answers, score: c.correct, answered: c.answered, total: total};
  }

  function download() {
    var data = answersFile();
    var slug = data.learner.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
    var a = el("a");
    a.href = URL.createObjectURL(new Blob([JSON.stringify(data, null, 1) + "\n"], {type: "application/json"}));
    a.download = root.dataset.bank + "-answers" + (slug ? "-" + slug : "") + ".json";
    a.hidden = true;
    root.appendChild(a);
    a.click();
    window.setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 2000);
  }

  // The score bar sticks below the page's sticky header; the page's scroll padding covers both, so an
  // option reached with Tab or Shift+Tab is scrolled into view below the bar, never under it.
  function placeScore() {
    var header = document.querySelector(".bd-header-article"), top = 0;
    if (header) {
      var pos = window.getComputedStyle(header).position;
      if (pos === "sticky" || pos === "fixed") { top = header.getBoundingClientRect().height; }
    }
    root.style.setProperty("--lq-top", top + "px");
    var bar = root.querySelector(".lq-score");
    document.documentElement.style.scrollPaddingTop = Math.ceil(top + bar.getBoundingClientRect().height + 8) + "px";
  }

  questions.forEach(function (q) {
    if (!order(q, state.order[q.dataset.qid]) && root.dataset.shuffle === "true") { shuffle(q); }
    options(q).forEach(function (b) { b.addEventListener("click", function () { choose(q, b); }); });
    render(q);
  });
  nameBox.value = state.learner;
  nameBox.addEventListener("input", function () { state.learner = nameBox.value; save(); });
  root.querySelector(".lq-restart").addEventListener("click", reset);
  root.querySelector(".lq-download").addEventListener("click", download);
  window.addEventListener("resize", placeScore);
  if (window.ResizeObserver) { new window.ResizeObserver(placeScore).observe(root.querySelector(".lq-score")); }
  update();
  placeScore();
  root.dataset.ready = "1";
})();
"""


def bank_fingerprint(bank: Bank) -> str:
    """A short hash of what the page's saved answers depend on: a changed quiz starts afresh."""
    content = [[q.id, [[o.letter, o.text, o.correct] for o in q.options]] for q in bank.questions]
    return hashlib.sha256(json.dumps([bank.id, content]).encode("utf-8")).hexdigest()[:12]


def quiz_html(bank: Bank, *, shuffle: bool = True, base_url: str = "") -> str:
    """The whole quiz as one HTML fragment (style, markup, script); links relative unless ``base_url``."""
    root_id = f"lensquiz-{bank.id}"
    esc = html.escape
    parts = [
        f'<div class="lensquiz" id="{esc(root_id)}" data-bank="{esc(bank.id)}" '
        f'data-version="{bank_fingerprint(bank)}" data-total="{len(bank)}" '
        f'data-shuffle="{"true" if shuffle else "false"}">',
        f"<style>{_CSS}</style>",
        '<div class="lq-score" role="status" aria-live="polite">'
        f'<span class="lq-score-text">Score: 0 / {len(bank)} (0 of {len(bank)} answered)</span>'
        '<button type="button" class="lq-restart">Start over</button></div>',
        "<noscript><p>This quiz needs JavaScript for its feedback; you can also take it in a terminal "
        "with <code>lensref quiz take</code>.</p></noscript>",
        '<ol class="lq-questions" role="list">',
    ]
    for q in bank.questions:
        parts.append(
            f'<li class="lq-question" id="{esc(root_id)}-q{q.number}" data-qid="{esc(q.id)}" data-number="{q.number}">'
        )
        parts.append(
            f'<div class="lq-head"><span class="lq-num">{q.number}.</span><p class="lq-text">{esc(q.text)}</p></div>'
        )
        parts.append(f'<div class="lq-options" role="group" aria-label="Question {q.number} options">')
        for o in q.options:
            parts.append(
                f'<button type="button" class="lq-option" data-letter="{o.letter}" '
                f'data-correct="{"true" if o.correct else "false"}" '
                f'data-explanation="{esc(o.explanation, quote=True)}" '
                f'data-section-url="{esc(o.section_url(base_url), quote=True)}" '
                f'data-section-title="{esc(o.section_title, quote=True)}">{esc(o.text)}</button>'
            )
        parts.append("</div>")
        parts.append('<div class="lq-feedback" role="status" aria-live="polite" hidden></div>')
        parts.append("</li>")
    parts.append("</ol>")
    parts.append(
        '<div class="lq-handin">'
        "<label>Your name (optional: it goes into the file for your instructor)"
        '<input type="text" class="lq-learner" maxlength="80" autocomplete="name"></label>'
        '<button type="button" class="lq-download">Download my answers</button>'
        f'<p class="lq-note">Saves <code>{esc(bank.id)}-answers.json</code> (with your name in the file name if '
        "you typed one): your first answer to each question you answered, and your score. Hand it in as your "
        "instructor asks; in a terminal, <code>lensref quiz grade FILE</code> scores it. Your answers stay in this "
        "browser when you reload the page; <b>Start over</b> clears them.</p>"
        '<p class="lq-note lq-storage-note" hidden>This browser does not let the page keep your answers: '
        "they are lost when you leave the page, so download them before you do.</p>"
        "</div>"
    )
    parts.append(f"<script>{_JS.replace('__ROOT_ID__', json.dumps(root_id))}</script>")
    parts.append("</div>")
    return "\n".join(parts)


def display_quiz(bank: Bank | None = None, **kwargs: Any) -> HTML:
    """An IPython HTML object of the quiz (what the book page displays); ``bank`` defaults to the course's."""
    from IPython.display import HTML

    from .bank import load_bank

    return HTML(quiz_html(bank if bank is not None else load_bank(), **kwargs))  # type: ignore[no-untyped-call]  # IPython's HTML is unannotated


def jupyterquiz_questions(bank: Bank, base_url: str = "") -> list[dict[str, Any]]:
    """The bank as the list of dicts jupyterquiz's ``display_quiz`` takes (its own data stays inline)."""
    out = []
    for q in bank.questions:
        out.append(
            {
                "question": f"{q.number}. {q.text}",
                "type": "multiple_choice",
                "answers": [
                    {
                        "answer": o.text,
                        "correct": o.correct,
                        "feedback": f"{'Correct.' if o.correct else 'Not quite.'} {o.explanation} "
                        f"[Lesson: {o.section_title}]({o.section_url(base_url)})",
                    }
                    for o in q.options
                ],
            }
        )
    return out
