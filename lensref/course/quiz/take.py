"""The quiz in a terminal: one question at a time, instant feedback, a final score.

:func:`take_quiz` reads answers from ``stdin`` (a letter or an option's text). Interactive (a terminal), a
bad answer is asked again and ``q`` quits; piped, answers are echoed so the transcript reads like a session,
and a bad or missing answer is an error: a piped session is complete or produces no score.
"""

from __future__ import annotations

import random
from typing import TextIO

from ...errors import LensError
from .bank import LETTERS, Bank, Option, Question, normalize
from .scoring import QuizGrade, grade

QUIT_WORDS = ("q", "quit", "exit")


def take_quiz(
    bank: Bank, stdin: TextIO, out: TextIO, *, shuffle: bool = False, seed: int | None = None
) -> QuizGrade | None:
    """Ask every question of ``bank``; the graded answers, or None if the learner quit."""
    interactive = stdin.isatty()
    rng = random.Random(seed)
    answers: dict[str, str] = {}
    score = 0
    print(
        f"{bank.title}: {len(bank)} questions. Answer with a letter (or the option's text); "
        f"{'q to quit' if interactive else 'one answer a line'}.\n",
        file=out,
    )
    for q in bank.questions:
        shown = list(q.options)
        if shuffle:
            rng.shuffle(shown)
        letters = LETTERS[: len(shown)]
        print(f"Question {q.number}/{len(bank)}: {q.text}", file=out)
        for letter, o in zip(letters, shown):
            print(f"  {letter}) {o.text}", file=out)
        chosen = _ask(q, shown, letters, stdin, out, interactive, len(bank))
        if chosen is None:
            print(f"quit at question {q.number}: no score", file=out)
            return None
        answers[str(q.number)] = chosen.letter
        score += chosen.correct
        if chosen.correct:
            print(f"  Correct. {chosen.explanation}", file=out)
        else:
            right = q.answer
            print(f"  Not quite. {chosen.explanation}", file=out)
            print(f"  The answer is {letters[shown.index(right)]}) {right.text}: {right.explanation}", file=out)
        print(f"  (lesson: {chosen.section_url()})   score so far: {score}/{q.number}\n", file=out)
    result = grade(bank, answers, where="your answers")
    print(f"score: {result.score}/{result.total}", file=out)
    return result


def _ask(
    q: Question, shown: list[Option], letters: str, stdin: TextIO, out: TextIO, interactive: bool, n_questions: int
) -> Option | None:
    """The option the learner picks for ``q`` (None when they quit)."""
    while True:
        out.write(f"your answer ({letters[0]}-{letters[-1]}): ")
        out.flush()
        line = stdin.readline()
        if not line:
            print(file=out)
            raise LensError(
                f"input ended at question {q.number} of {n_questions}: no score (every question needs an answer)"
            )
        reply = line.strip()
        if not interactive:
            print(reply, file=out)
        if interactive and reply.lower() in QUIT_WORDS:
            return None
        chosen = pick_option(q, shown, letters, reply)
        if chosen is not None:
            return chosen
        message = f"question {q.number}: {reply!r} is not one of the options {letters[0]}-{letters[-1]}"
        if not interactive:
            raise LensError(message + "; no score")
        print(f"  {message}; try again", file=out)


def pick_option(q: Question, shown: list[Option], letters: str, reply: str) -> Option | None:
    """The option a reply names: a letter of the order shown, or an option's text; None if neither."""
    key = normalize(reply)
    if len(key) == 1 and key in letters:
        return shown[letters.index(key)]
    if len(key) > 1:
        for o in q.options:
            if normalize(o.text) == key:
                return o
    return None
