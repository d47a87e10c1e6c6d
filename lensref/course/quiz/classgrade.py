"""Grading a class: a responses CSV as LMSes export it (one row a learner, one column a question), or a
folder of the files the online quiz page downloads ("Download my answers"), one per learner.

The learner column is the first one unless named. Question columns are recognised by their header: the
question's number (``3``, ``Q3``, ``Question 3``, ``Response 3`` as in Moodle's responses report) or its id.
Canvas's quiz "Student Analysis" report is recognised by its own columns and read with its question columns matched
by their text (:mod:`lensref.course.lms.canvas_quiz_report`); its learner column is ``name`` unless named.
Other columns (e-mail, state, time taken...) are ignored and reported. Every question needs exactly one
column; every cell an option letter or an option's text. A blank cell (or Moodle's ``-``) is an error unless
``blank_as_wrong``, when it counts as unanswered and wrong. Any bad row stops the whole grading: a class
grade is complete or not produced.

In a folder, every ``*.json`` file is one learner, named by the name typed on the page or else by the
file's name. A page file may leave questions unanswered: they count as unanswered and wrong, as the page
scored them. A plain answers file (``{question: answer}``) in the folder must answer everything, unless
``blank_as_wrong``.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ...errors import LensError
from ..lms import canvas_quiz_report
from .bank import Bank, Question, read_text_file
from .scoring import load_answer_sheet, resolve_answers

BLANKS = {"", "-"}
_NUMBERED = re.compile(r"^(?:q|question|response)?\s*\.?\s*(\d+)$", re.IGNORECASE)
_SKIP_LEARNERS = ("overall average",)  # Moodle appends a summary row


@dataclass(frozen=True)
class LearnerScore:
    """One learner's row: the letter chosen per question (None: unanswered) and whether each is right."""

    learner: str
    line: int  # line of the CSV file (0 for a learner read from an answers file)
    chosen: tuple[str | None, ...]  # letter per question, None when unanswered
    correct: tuple[bool, ...]
    source: str = ""  # the answers file, when grading a folder

    @property
    def score(self) -> int:
        """How many questions the learner got right."""
        return sum(self.correct)

    @property
    def total(self) -> int:
        """How many questions there are."""
        return len(self.correct)


@dataclass(frozen=True)
class QuestionStats:
    """How the class answered one question: who answered, who was right, the count per letter, the most chosen
    wrong option."""

    number: int
    id: str
    answer: str
    learners: int
    answered: int
    n_correct: int
    counts: dict[str, int]  # letter -> learners who chose it
    most_wrong: str | None  # most chosen wrong letter (earliest letter on ties), None if nobody was wrong
    most_wrong_text: str
    most_wrong_count: int

    @property
    def share_correct(self) -> float:
        """The share of learners who chose the right answer (0 when there are none)."""
        return self.n_correct / self.learners if self.learners else 0.0


@dataclass(frozen=True)
class ClassGrade:
    """A class's quiz results: each learner's score and each question's statistics, and the columns ignored."""

    bank: str
    learners: tuple[LearnerScore, ...]
    questions: tuple[QuestionStats, ...]
    ignored_columns: tuple[str, ...]

    @property
    def mean_score(self) -> float:
        """The learners' mean score, in questions right."""
        return sum(l.score for l in self.learners) / len(self.learners)


def read_responses(path: str | Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-empty rows (with their line numbers) of a CSV file."""
    path = Path(path)
    text = read_text_file(path, "responses", encoding="utf-8-sig", missing="no such responses file")
    if not text.strip():
        raise LensError(f"{path}: responses file is empty")
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)  # LMSes export commas; some locales semicolons or tabs
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    rows: list[tuple[int, list[str]]] = []
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                rows.append((reader.line_num, fields))
    except csv.Error as exc:
        raise LensError(f"{path}: line {reader.line_num}: malformed CSV ({exc})") from None
    header = [h.strip() for h in rows[0][1]]
    return header, rows[1:]


def map_columns(
    bank: Bank, header: list[str], id_column: str | None, where: str
) -> tuple[int, dict[int, int], tuple[str, ...]]:
    """(learner column index, {question number: column index}, ignored headers)."""
    if id_column is None:
        learner_col = 0
    elif id_column in header:
        learner_col = header.index(id_column)
    else:
        raise LensError(f"{where}: no column {id_column!r} for the learner (columns: {', '.join(header)})")
    by_question: dict[int, int] = {}
    ignored = []
    ids = {q.id: q for q in bank.questions}
    for col, name in enumerate(header):
        if col == learner_col:
            continue
        q = _question_for_header(bank, name, ids, where)
        if q is None:
            ignored.append(name)
            continue
        if q.number in by_question:
            raise LensError(f"{where}: columns {header[by_question[q.number]]!r} and {name!r} both hold {q.label}")
        by_question[q.number] = col
    require_every_question(bank, by_question, where, "name columns by number, e.g. '1' or 'Q1', or by question id")
    return learner_col, by_question, tuple(ignored)


def require_every_question(bank: Bank, by_question: dict[int, int], where: str, hint: str) -> None:
    """A one-line error naming the questions no column holds, with ``hint`` on how columns are recognised."""
    missing = [str(q.number) for q in bank.questions if q.number not in by_question]
    if missing:
        raise LensError(f"{where}: no column for question(s) {', '.join(missing)} ({hint})")


def _question_for_header(bank: Bank, name: str, ids: dict[str, Question], where: str) -> Question | None:
    if name.lower() in ids:
        return ids[name.lower()]
    m = _NUMBERED.match(name)
    if m:
        n = int(m.group(1))
        if not 1 <= n <= len(bank):
            raise LensError(f"{where}: column {name!r}: unknown question {n} (the quiz has {len(bank)})")
        return bank.questions[n - 1]
    return None


def grade_class(
    bank: Bank, path: str | Path, *, id_column: str | None = None, blank_as_wrong: bool = False
) -> ClassGrade:
    """Grade a responses CSV, or a folder of answers files (see the module docstring)."""
    if Path(path).is_dir():
        return grade_folder(bank, path, blank_as_wrong=blank_as_wrong)
    where = str(path)
    header, rows = read_responses(path)
    if not rows:
        raise LensError(f"{where}: no learners (only a header row)")
    if canvas_quiz_report.is_student_analysis(header):
        learner_col, by_question, ignored = canvas_quiz_report.map_columns(bank, header, id_column, where)
        require_every_question(bank, by_question, where, canvas_quiz_report.COLUMN_HINT)
    else:
        learner_col, by_question, ignored = map_columns(bank, header, id_column, where)
    learners: list[LearnerScore] = []
    first_line: dict[str, int] = {}
    for line, fields in rows:
        if len(fields) != len(header):
            raise LensError(f"{where}: line {line}: {len(fields)} fields, the header has {len(header)}")
        learner = fields[learner_col].strip()
        if learner.lower().startswith(_SKIP_LEARNERS):
            continue
        if not learner:
            raise LensError(f"{where}: line {line}: no learner in column {header[learner_col]!r}")
        if learner in first_line:
            raise LensError(f"{where}: line {line}: learner {learner!r} also on line {first_line[learner]}")
        first_line[learner] = line
        chosen: list[str | None] = []
        correct: list[bool] = []
        for q in bank.questions:
            cell = fields[by_question[q.number]].strip()
            at = f"{where}: line {line} (learner {learner!r}), column {header[by_question[q.number]]!r}"
            if cell in BLANKS:
                if not blank_as_wrong:
                    raise LensError(f"{at}: {q.label} unanswered (use --blank-as-wrong to score blanks as wrong)")
                chosen.append(None)
                correct.append(False)
                continue
            try:
                option = q.option(cell)
            except LensError as exc:
                raise LensError(f"{at}: {exc}") from None
            chosen.append(option.letter)
            correct.append(option.correct)
        learners.append(LearnerScore(learner, line, tuple(chosen), tuple(correct)))
    if not learners:
        raise LensError(f"{where}: no learners")
    return ClassGrade(bank.id, tuple(learners), tuple(_stats(bank, learners)), ignored)


def grade_folder(bank: Bank, folder: str | Path, *, blank_as_wrong: bool = False) -> ClassGrade:
    """One learner per ``*.json`` file of ``folder`` (the quiz page's downloads, as they are)."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".json")
    if not files:
        raise LensError(f'{folder}: no answers files (*.json, as the quiz page\'s "Download my answers" saves them)')
    learners: list[LearnerScore] = []
    seen: dict[str, Path] = {}
    for path in files:
        sheet = load_answer_sheet(path)
        if sheet.bank is not None and sheet.bank != bank.id:
            raise LensError(f"{path}: these are answers to the quiz {sheet.bank!r}, not {bank.id!r}")
        learner = sheet.learner or path.stem
        if learner in seen:
            raise LensError(f"{path}: learner {learner!r} also in {seen[learner].name} (one file per learner)")
        seen[learner] = path
        chosen = resolve_answers(bank, sheet.answers, str(path), allow_unanswered=sheet.from_page or blank_as_wrong)
        picked = [chosen.get(q.number) for q in bank.questions]
        learners.append(
            LearnerScore(
                learner,
                0,
                tuple(o.letter if o else None for o in picked),
                tuple(bool(o and o.correct) for o in picked),
                source=str(path),
            )
        )
    return ClassGrade(bank.id, tuple(learners), tuple(_stats(bank, learners)), ())


def _stats(bank: Bank, learners: list[LearnerScore]) -> list[QuestionStats]:
    out = []
    for i, q in enumerate(bank.questions):
        counts = Counter(l.chosen[i] for l in learners if l.chosen[i] is not None)
        wrong = [(counts[o.letter], o) for o in q.options if not o.correct and counts[o.letter] > 0]
        best = max(wrong, key=lambda t: t[0], default=None)  # max keeps the first (earliest letter) on ties
        out.append(
            QuestionStats(
                number=q.number,
                id=q.id,
                answer=q.answer.letter,
                learners=len(learners),
                answered=sum(counts.values()),
                n_correct=sum(l.correct[i] for l in learners),
                counts={o.letter: counts[o.letter] for o in q.options},
                most_wrong=best[1].letter if best else None,
                most_wrong_text=best[1].text if best else "",
                most_wrong_count=best[0] if best else 0,
            )
        )
    return out


def learners_csv(result: ClassGrade) -> str:
    """The per-learner CSV: the score, total and percent, then 1 or 0 per question."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    n = len(result.questions)
    w.writerow(["learner", "score", "total", "percent"] + [str(q.number) for q in result.questions])
    for l in result.learners:
        w.writerow([l.learner, l.score, n, f"{100 * l.score / n:.1f}"] + [int(c) for c in l.correct])
    return buf.getvalue()


def questions_csv(result: ClassGrade) -> str:
    """The per-question CSV: the answer, how many were right, the most chosen wrong option, the count per letter."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    letters = sorted({k for q in result.questions for k in q.counts})
    w.writerow(
        [
            "number",
            "id",
            "answer",
            "learners",
            "answered",
            "correct",
            "share_correct",
            "most_chosen_wrong",
            "most_chosen_wrong_count",
            "most_chosen_wrong_text",
        ]
        + [f"chose_{k}" for k in letters]
    )
    for q in result.questions:
        w.writerow(
            [
                q.number,
                q.id,
                q.answer,
                q.learners,
                q.answered,
                q.n_correct,
                f"{q.share_correct:.3f}",
                q.most_wrong or "",
                q.most_wrong_count,
                q.most_wrong_text,
            ]
            + [q.counts.get(k, "") for k in letters]
        )
    return buf.getvalue()


def plot_difficulty(result: ClassGrade, path: str | Path) -> None:
    """A horizontal bar per question: the share of learners who got it right (low = hard)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    qs = result.questions
    shares = [q.share_correct for q in qs]
    colors = ["#c0392b" if s < 0.5 else "#e08e0b" if s < 0.8 else "#2e8b57" for s in shares]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(qs) + 1.4))
    y = list(range(len(qs)))
    ax.barh(y, shares, color=colors)
    ax.set_yticks(y, [f"{q.number}. {q.id}" for q in qs], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of learners correct")
    mean = sum(shares) / len(shares)
    ax.axvline(mean, color="#555555", linestyle="--", linewidth=1, label=f"mean {mean:.0%}")
    for yi, s in zip(y, shares):
        ax.text(min(s + 0.01, 0.93), yi, f"{s:.0%}", va="center", fontsize=7)
    ax.set_title(f"Question difficulty ({len(result.learners)} learners)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=120)
    plt.close(fig)
