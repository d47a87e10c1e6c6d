"""Grading one learner's answers against a bank: all questions answered, or no grade at all."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from ...errors import LensError
from .bank import SECTIONS, Bank, Option, Question, UniqueKeyLoader, one_line, read_text_file


@dataclass(frozen=True)
class QuestionResult:
    number: int
    id: str
    chosen: str  # letter
    chosen_text: str
    answer: str  # letter
    answer_text: str
    correct: bool
    explanation: str  # of the chosen option
    section: str

    @classmethod
    def of(cls, question: Question, chosen: Option) -> "QuestionResult":
        ans = question.answer
        return cls(question.number, question.id, chosen.letter, chosen.text, ans.letter, ans.text,
                   chosen.correct, chosen.explanation, chosen.section)


@dataclass(frozen=True)
class QuizGrade:
    bank: str
    results: tuple[QuestionResult, ...]

    @property
    def score(self) -> int:
        return sum(r.correct for r in self.results)

    @property
    def total(self) -> int:
        return len(self.results)

    def to_dict(self) -> dict:
        return {"bank": self.bank, "score": self.score, "total": self.total,
                "results": [asdict(r) for r in self.results]}


def resolve_answers(bank: Bank, answers, where: str = "answers") -> dict[int, Option]:
    """Map question number -> chosen option from ``{question number or id: letter or option text}``.

    Raises :class:`LensError` for an unknown question, an option that does not exist, a question answered
    twice (e.g. by number and by id) or a question left unanswered: never a partial result.
    """
    if not isinstance(answers, dict):
        raise LensError(f"{where}: expected a mapping from question (number 1-{len(bank)} or id) to answer")
    if not answers:
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
    if missing:
        names = ", ".join(str(q.number) for q in missing)
        raise LensError(f"{where}: {len(missing)} question(s) unanswered: {names}; every question needs an answer")
    return chosen


def grade(bank: Bank, answers, where: str = "answers") -> QuizGrade:
    chosen = resolve_answers(bank, answers, where)
    return QuizGrade(bank.id, tuple(QuestionResult.of(q, chosen[q.number]) for q in bank.questions))


def load_answers(path: str | Path):
    """Read a JSON or YAML answers file (by extension; content sniffed otherwise); duplicate keys are errors."""
    path = Path(path)
    text = read_text_file(path, "answers", missing="no such answers file")
    if not text.strip():
        raise LensError(f"{path}: answers file is empty")
    as_json = path.suffix.lower() == ".json" or (path.suffix.lower() not in (".yaml", ".yml")
                                                 and text.lstrip().startswith("{"))
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


def _unique_pairs(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def format_result(r: QuestionResult, *, show_explanation_when_right: bool = False) -> str:
    """One learner-facing paragraph for a graded question."""
    if r.correct:
        line = f"{r.number:>2}. {r.id}: correct ({r.chosen})"
        if show_explanation_when_right:
            line += f"\n    {r.explanation}"
        return line
    return (f"{r.number:>2}. {r.id}: wrong: you chose {r.chosen}) {r.chosen_text}; "
            f"the answer is {r.answer}) {r.answer_text}\n    {r.explanation} "
            f"(lesson: {SECTIONS[r.section]}, {r.section}.html)")
