"""Grading one learner's answers against a bank.

An answers file (``{question number or id: letter or option text}``) must answer every question, or there is
no grade at all. The file the online quiz page downloads ("Download my answers") is accepted as it is: it
records the first answer to each question the learner answered (as the page scores them), so it may be
partial, and an unanswered question scores as wrong, exactly as on the page::

    {"format": "lensref-quiz-answers", "version": 1, "bank": "logit-lens", "learner": "Ada",
     "answers": {"lens-definition": "<option text>", ...}, "score": 3, "answered": 5, "total": 15}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from ...errors import LensError
from .bank import SECTIONS, Bank, Option, Question, UniqueKeyLoader, one_line, read_text_file

PAGE_FORMAT = "lensref-quiz-answers"  # the "format" field of the online quiz's downloaded file


@dataclass(frozen=True)
class QuestionResult:
    """One question's outcome: the option chosen (or none), the right one, and the chosen option's explanation."""

    number: int
    id: str
    chosen: str | None  # letter; None when the question was left unanswered (page files only)
    chosen_text: str
    answer: str  # letter
    answer_text: str
    correct: bool
    explanation: str  # of the chosen option ("" when unanswered)
    section: str

    @classmethod
    def of(cls, question: Question, chosen: Option | None) -> QuestionResult:
        """The outcome of ``question`` when ``chosen`` (None: left unanswered) was picked."""
        ans = question.answer
        if chosen is None:
            return cls(question.number, question.id, None, "", ans.letter, ans.text, False, "", ans.section)
        return cls(
            question.number,
            question.id,
            chosen.letter,
            chosen.text,
            ans.letter,
            ans.text,
            chosen.correct,
            chosen.explanation,
            chosen.section,
        )


@dataclass(frozen=True)
class QuizGrade:
    """One learner's grade on a bank: a result per question, in order."""

    bank: str
    results: tuple[QuestionResult, ...]

    @property
    def score(self) -> int:
        """How many questions are right."""
        return sum(r.correct for r in self.results)

    @property
    def total(self) -> int:
        """How many questions the bank has."""
        return len(self.results)

    @property
    def answered(self) -> int:
        """How many questions were answered (fewer only for the page's file)."""
        return sum(r.chosen is not None for r in self.results)

    def score_line(self) -> str:
        """``score: 11/15``, with ``(5 of 15 answered)`` when some questions were left unanswered."""
        partial = f" ({self.answered} of {self.total} answered)" if self.answered < self.total else ""
        return f"score: {self.score}/{self.total}{partial}"

    def to_dict(self) -> dict[str, Any]:
        """The grade as plain data: the score, total and answered count, and every question's result."""
        return {
            "bank": self.bank,
            "score": self.score,
            "total": self.total,
            "answered": self.answered,
            "results": [asdict(r) for r in self.results],
        }


@dataclass(frozen=True)
class AnswerSheet:
    """One learner's answers as read from a file: a plain answers mapping, or the quiz page's download."""

    answers: dict[Any, Any]
    where: str
    from_page: bool = False  # the page's file: questions may be unanswered (scored wrong, as on the page)
    learner: str = ""  # the name typed on the page, if any
    bank: str | None = None  # the quiz the page file belongs to
    page_score: int | None = None  # the score the page showed when the file was saved


def resolve_answers(
    bank: Bank, answers: object, where: str = "answers", *, allow_unanswered: bool = False
) -> dict[int, Option]:
    """Map question number -> chosen option from ``{question number or id: letter or option text}``.

    Raises :class:`LensError` for an unknown question, an option that does not exist, a question answered
    twice (e.g. by number and by id) or, unless ``allow_unanswered``, a question left unanswered: never a
    partial result.
    """
    if not isinstance(answers, dict):
        raise LensError(f"{where}: expected a mapping from question (number 1-{len(bank)} or id) to answer")
    if not answers and not allow_unanswered:
        raise LensError(f"{where}: no answers")
    chosen: dict[int, Option] = {}
    keys: dict[int, str] = {}
    for key, value in answers.items():
        try:
            q = bank.question(key)
        except LensError as exc:
            raise LensError(f"{where}: {exc}") from None
        if q.number in chosen:
            raise LensError(f"{where}: {q.label} answered twice (keys {keys[q.number]!r} and {key!r})")
        if value is None:
            raise LensError(f"{where}: {q.label}: no answer given")
        try:
            chosen[q.number] = q.option(value)
        except LensError as exc:
            raise LensError(f"{where}: {exc}") from None
        keys[q.number] = str(key)
    missing = [q for q in bank.questions if q.number not in chosen]
    if missing and not allow_unanswered:
        names = ", ".join(str(q.number) for q in missing)
        raise LensError(f"{where}: {len(missing)} question(s) unanswered: {names}; every question needs an answer")
    return chosen


def grade(bank: Bank, answers: object, where: str = "answers", *, allow_unanswered: bool = False) -> QuizGrade:
    """Grade an answers mapping (``{question number or id: letter or option text}``); every question must be answered
    unless ``allow_unanswered``."""
    chosen = resolve_answers(bank, answers, where, allow_unanswered=allow_unanswered)
    return QuizGrade(bank.id, tuple(QuestionResult.of(q, chosen.get(q.number)) for q in bank.questions))


def grade_sheet(bank: Bank, sheet: AnswerSheet) -> QuizGrade:
    """Grade a file's answers; the page's file may leave questions unanswered (they score as wrong)."""
    if sheet.bank is not None and sheet.bank != bank.id:
        raise LensError(f"{sheet.where}: these are answers to the quiz {sheet.bank!r}, not {bank.id!r}")
    return grade(bank, sheet.answers, sheet.where, allow_unanswered=sheet.from_page)


def load_answer_sheet(path: str | Path) -> AnswerSheet:
    """Read an answers file: a plain mapping, or the online quiz's "Download my answers" file as it is."""
    data = load_answers(path)
    return sheet_from_data(data, str(path))


def sheet_from_data(data: dict[str, Any], where: str) -> AnswerSheet:
    """The answer sheet in a file's data: the quiz page's download (checked field by field), else a plain answers
    mapping."""
    if data.get("format") != PAGE_FORMAT:
        return AnswerSheet(answers=data, where=where)
    answers, learner, bank_id = data.get("answers"), data.get("learner", ""), data.get("bank")
    page_score = data.get("score")
    if not isinstance(answers, dict):
        raise LensError(f"{where}: field 'answers' must be a mapping from question id to the chosen option")
    if not isinstance(bank_id, str) or not bank_id:
        raise LensError(f"{where}: field 'bank' must name the quiz")
    if not isinstance(learner, str):
        raise LensError(f"{where}: field 'learner' must be text")
    return AnswerSheet(
        answers=answers,
        where=where,
        from_page=True,
        learner=" ".join(learner.split()),
        bank=bank_id,
        page_score=page_score if type(page_score) is int else None,
    )


def load_answers(path: str | Path) -> dict[Any, Any]:
    """Read a JSON or YAML answers file (by extension; content sniffed otherwise); duplicate keys are errors."""
    path = Path(path)
    text = read_text_file(path, "answers", missing="no such answers file")
    if not text.strip():
        raise LensError(f"{path}: answers file is empty")
    as_json = path.suffix.lower() == ".json" or (
        path.suffix.lower() not in (".yaml", ".yml") and text.lstrip().startswith("{")
    )
    try:
        if as_json:
            data = json.loads(text, object_pairs_hook=_unique_pairs)
        else:
            data = yaml.load(text, Loader=UniqueKeyLoader)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if as_json else "YAML"
        raise LensError(f"{path}: not valid {kind} ({one_line(exc)})") from None
    except _DuplicateKey as exc:
        raise LensError(f"{path}: key {exc.args[0]!r} appears twice") from None
    if not isinstance(data, dict):
        raise LensError(f"{path}: expected a mapping from question (number or id) to answer, got {type(data).__name__}")
    return data


class _DuplicateKey(Exception):
    pass


def _unique_pairs(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def format_result(r: QuestionResult, *, show_explanation_when_right: bool = False) -> str:
    """One learner-facing paragraph for a graded question."""
    if r.chosen is None:
        return (
            f"{r.number:>2}. {r.id}: unanswered; the answer is {r.answer}) {r.answer_text} "
            f"(lesson: {SECTIONS[r.section]}, {r.section}.html)"
        )
    if r.correct:
        line = f"{r.number:>2}. {r.id}: correct ({r.chosen})"
        if show_explanation_when_right:
            line += f"\n    {r.explanation}"
        return line
    return (
        f"{r.number:>2}. {r.id}: wrong: you chose {r.chosen}) {r.chosen_text}; "
        f"the answer is {r.answer}) {r.answer_text}\n    {r.explanation} "
        f"(lesson: {SECTIONS[r.section]}, {r.section}.html)"
    )
