"""The quiz bank: its schema, loading, and looking up questions and options.

A bank is a YAML file (``quizzes/logit-lens.yaml``)::

    id: logit-lens
    title: ...
    questions:
      - id: lens-definition             # stable, unique; used by graders and LMS exports
        question: What does ...?
        section: logit_lens              # default book page for this question's explanations
        answer: <text of the correct option>
        key_terms: [residual stream]     # optional: words the right answer's book page must contain
        options:
          - text: ...
            explanation: ...             # why this option is right or wrong
            section: tuned_lens          # optional override

Options keep the order they are written in; letters ``a``, ``b``, ... follow that order. :func:`load_bank`
checks the schema and raises :class:`~lensref.errors.LensError` naming the file, the question and the field.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ...errors import LensError

COURSE_BANK = Path(__file__).resolve().parents[3] / "quizzes" / "logit-lens.yaml"  # in a course folder
PACKAGED_BANK = Path(__file__).resolve().parent / "banks" / "logit-lens.yaml"  # the copy a wheel carries (setup.py)
DEFAULT_BANK = COURSE_BANK if COURSE_BANK.is_file() else PACKAGED_BANK

# The book's pages (book/<name>.md) an explanation may link to, with their titles.
SECTIONS: dict[str, str] = {
    "intro": "Introduction",
    "residual_stream": "The residual stream",
    "logit_lens": "The logit lens",
    "what_you_see": "What you see",
    "reading_honestly": "Reading the lens honestly",
    "tuned_lens": "The tuned lens",
    "logit_difference": "Logit difference",
    "dla": "Direct logit attribution",
    "patchscopes": "Patchscopes",
    "quiz": "End-of-lesson quiz",
    "instructors": "For instructors",
}

LETTERS = string.ascii_lowercase
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class Option:
    """One of a question's options: its letter and text, the explanation shown for it, the book page teaching it."""

    letter: str
    text: str
    explanation: str
    section: str
    correct: bool

    @property
    def section_title(self) -> str:
        """The title of the book page teaching this option."""
        return SECTIONS[self.section]

    def section_url(self, base: str = "") -> str:
        """Link to the book page teaching this option: relative (``what_you_see.html``) unless ``base``."""
        return f"{base.rstrip('/') + '/' if base else ''}{self.section}.html"


@dataclass(frozen=True)
class Question:
    """One question of the bank: its number, stable id, text and options (exactly one of them correct)."""

    number: int  # 1-based position in the bank
    id: str
    text: str
    options: tuple[Option, ...]
    key_terms: tuple[str, ...] = ()  # terms the right answer's page teaches (tests/test_quiz_coverage.py)

    @property
    def answer(self) -> Option:
        """The correct option."""
        return next(o for o in self.options if o.correct)

    @property
    def label(self) -> str:
        """How messages name the question: ``question 3 (lens-definition)``."""
        return f"question {self.number} ({self.id})"

    def option(self, choice: str) -> Option:
        """The option named by ``choice``: a letter (``a``-``d``, any case) or the option's text."""
        if not isinstance(choice, str):
            raise LensError(f"{self.label}: answer must be a letter or an option's text, got {choice!r}")
        key = normalize(choice)
        if not key:
            raise LensError(f"{self.label}: empty answer")
        if len(key) == 1 and key in LETTERS:
            for o in self.options:
                if o.letter == key:
                    return o
            raise LensError(
                f"{self.label}: no option {key!r} (options are {self.options[0].letter}-{self.options[-1].letter})"
            )
        for o in self.options:
            if normalize(o.text) == key:
                return o
        short = choice if len(choice) <= 60 else choice[:57] + "..."
        raise LensError(
            f"{self.label}: {short!r} is not one of its options (give a letter "
            f"{self.options[0].letter}-{self.options[-1].letter} or an option's exact text)"
        )


@dataclass(frozen=True)
class Bank:
    """A quiz bank as loaded and checked: its id, title and questions, in order."""

    id: str
    title: str
    questions: tuple[Question, ...]
    path: str = "<bank>"

    def __len__(self) -> int:
        return len(self.questions)

    def question(self, key: object) -> Question:
        """Look a question up by number (``3``, ``"3"``, ``"q3"``) or id."""
        if isinstance(key, bool):
            raise LensError(f"unknown question {key!r}")
        if isinstance(key, int):
            key = str(key)
        if not isinstance(key, str):
            raise LensError(f"unknown question {key!r}: use a number 1-{len(self)} or a question id")
        k = key.strip()
        m = re.fullmatch(r"[qQ]?\s*(\d+)", k)
        if m:
            n = int(m.group(1))
            if 1 <= n <= len(self):
                return self.questions[n - 1]
            raise LensError(f"unknown question {key!r}: numbers run from 1 to {len(self)}")
        for q in self.questions:
            if q.id == k.lower():
                return q
        raise LensError(f"unknown question {key!r}: use a number 1-{len(self)} or a question id")


def normalize(text: str) -> str:
    """Compare option texts ignoring case, surrounding and repeated whitespace."""
    return " ".join(str(text).split()).casefold()


def read_text_file(path: Path, what: str, encoding: str = "utf-8", missing: str | None = None) -> str:
    """The text of ``path``, or a one-line error naming the file and what it should be (``what``)."""
    try:
        return path.read_text(encoding=encoding)
    except FileNotFoundError:
        raise LensError(f"{path}: {missing or f'no such {what} file'}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LensError(f"{path}: cannot read {what} ({exc})") from None


def load_bank(path: str | Path | None = None) -> Bank:
    """Read and check a bank file (default: the course's ``quizzes/logit-lens.yaml``)."""
    path = Path(path) if path is not None else DEFAULT_BANK
    text = read_text_file(path, "quiz bank", missing="quiz bank not found")
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise LensError(f"{path}: not valid YAML ({one_line(exc)})") from None
    return bank_from_dict(data, str(path))


def bank_from_dict(data: object, where: str = "<bank>") -> Bank:
    """Build a :class:`Bank` from parsed YAML/JSON, checking every field (see the module docstring)."""
    if not isinstance(data, dict):
        raise LensError(f"{where}: a quiz bank must be a mapping with 'id', 'title' and 'questions'")
    _unknown_keys(data, {"id", "title", "source", "questions"}, where)
    bank_id = _required_str(data, "id", where)
    title = _required_str(data, "title", where)
    raw_questions = data.get("questions")
    if not isinstance(raw_questions, list) or not raw_questions:
        raise LensError(f"{where}: field 'questions' must be a non-empty list")
    questions: list[Question] = []
    seen_ids: dict[str, int] = {}
    for n, raw in enumerate(raw_questions, start=1):
        q = _question_from_dict(raw, n, where)
        if q.id in seen_ids:
            raise LensError(f"{where}: question {n}: field 'id': {q.id!r} duplicates question {seen_ids[q.id]}")
        seen_ids[q.id] = n
        questions.append(q)
    return Bank(id=bank_id, title=title, questions=tuple(questions), path=where)


def _question_from_dict(raw: object, n: int, where: str) -> Question:
    if not isinstance(raw, dict):
        raise LensError(f"{where}: question {n}: must be a mapping with id, question, options, answer")
    qid = raw.get("id")
    at = f"{where}: question {n}" + (f" ({qid})" if isinstance(qid, str) else "")
    _unknown_keys(raw, {"id", "question", "section", "answer", "options", "key_terms"}, at)
    qid = _required_str(raw, "id", at)
    if not _ID_RE.match(qid):
        raise LensError(f"{at}: field 'id': {qid!r} must be lower-case letters, digits, '-' or '_'")
    if qid.isdigit():
        raise LensError(f"{at}: field 'id': {qid!r} must not be a bare number (numbers name positions)")
    text = _required_str(raw, "question", at)
    default_section = raw.get("section")
    if default_section is not None:
        _check_section(default_section, f"{at}: field 'section'")
    answer = _required_str(raw, "answer", at)
    raw_options = raw.get("options")
    if not isinstance(raw_options, list):
        raise LensError(f"{at}: field 'options' must be a list")
    if len(raw_options) < 2:
        raise LensError(f"{at}: field 'options': needs at least two options, has {len(raw_options)}")
    if len(raw_options) > len(LETTERS):
        raise LensError(f"{at}: field 'options': at most {len(LETTERS)} options")
    options: list[Option] = []
    seen: dict[str, str] = {}
    for i, ro in enumerate(raw_options):
        letter = LETTERS[i]
        oat = f"{at}: option {letter}"
        if not isinstance(ro, dict):
            raise LensError(f"{oat}: must be a mapping with 'text' and 'explanation'")
        _unknown_keys(ro, {"text", "explanation", "section"}, oat)
        otext = _required_str(ro, "text", oat)
        key = normalize(otext)
        if key in seen:
            raise LensError(f"{oat}: field 'text': duplicates option {seen[key]} ({otext!r})")
        if len(key) == 1 and key in LETTERS:
            raise LensError(f"{oat}: field 'text': a single letter would be mistaken for an option letter")
        seen[key] = letter
        explanation = _required_str(ro, "explanation", oat)
        section = ro.get("section", default_section)
        if section is None:
            raise LensError(f"{oat}: field 'section' missing (and the question has no default 'section')")
        _check_section(section, f"{oat}: field 'section'")
        options.append(Option(letter, otext, explanation, section, normalize(otext) == normalize(answer)))
    if not any(o.correct for o in options):
        short = answer if len(answer) <= 60 else answer[:57] + "..."
        raise LensError(f"{at}: field 'answer': {short!r} is not among the options")
    key_terms = raw.get("key_terms", [])
    if not isinstance(key_terms, list) or not all(isinstance(t, str) and t.strip() for t in key_terms):
        raise LensError(f"{at}: field 'key_terms' must be a list of non-empty texts")
    return Question(
        number=n, id=qid, text=text, options=tuple(options), key_terms=tuple(" ".join(t.split()) for t in key_terms)
    )


def _required_str(d: dict[Any, Any], key: str, at: str) -> str:
    if key not in d or d[key] is None:
        raise LensError(f"{at}: field {key!r} missing")
    value = d[key]
    if not isinstance(value, str) or not value.strip():
        raise LensError(f"{at}: field {key!r} must be non-empty text")
    return " ".join(value.split())


def _check_section(section: object, at: str) -> None:
    if section not in SECTIONS:
        raise LensError(f"{at}: {section!r} is not a book page (one of {', '.join(SECTIONS)})")


def _unknown_keys(d: dict[Any, Any], allowed: set[str], at: str) -> None:
    extra = sorted(str(k) for k in d if k not in allowed)
    if extra:
        raise LensError(f"{at}: unknown field(s) {', '.join(map(repr, extra))}")


def one_line(exc: Exception) -> str:
    """An exception's message on one line (a YAML or JSON parser's spans several)."""
    return " ".join(str(exc).split())


class UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects a mapping with the same key twice (PyYAML keeps the last)."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} on line {line}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)
