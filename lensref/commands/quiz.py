"""``lensref quiz``: the end-of-lesson quiz in a terminal, grading and LMS exports.

lensref quiz take                        # interactive, instant feedback (answers may be piped on stdin)
lensref quiz grade answers.yaml          # {"1": "d", "early-layers": "Predictions close to ...", ...}
lensref quiz grade logit-lens-answers.json   # the online quiz's "Download my answers" file, as it is
lensref quiz grade-class responses.csv   # per-learner scores, per-question statistics, difficulty plot
lensref quiz grade-class student_analysis.csv   # ... Canvas's quiz Student Analysis report, as it is
lensref quiz grade-class answers/        # ... or a folder of the page's answers files
lensref quiz export --format gift        # or moodle-xml, json, qti (an IMS QTI 1.2 zip for Canvas and others)
lensref quiz check                       # schema check of the bank
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from ..course.quiz import bank as bankmod
from ..course.quiz import classgrade, export, scoring
from ..course.quiz.take import take_quiz
from ..errors import LensError
from ..files import replacing, write_atomically, write_json
from ._validate import check_output

_EXT = {"gift": "gift", "moodle-xml": "xml", "json": "json", "qti": "zip"}


def register(sub: Any) -> None:
    """Add the ``quiz`` subcommand to ``sub`` (the CLI's subparsers)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--bank", default=None, help=f"quiz bank YAML (default {bankmod.DEFAULT_BANK.name})")

    p = sub.add_parser(
        "quiz",
        help="the end-of-lesson quiz: take, grade, grade a class, export to an LMS",
        description="The end-of-lesson quiz, from the bank quizzes/logit-lens.yaml.",
    )
    qsub = p.add_subparsers(dest="quiz_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    t = qsub.add_parser("take", parents=[common], help="answer the questions with instant feedback")
    t.add_argument("--shuffle", action="store_true", help="shuffle each question's options")
    t.add_argument("--seed", type=int, default=None, help="seed for --shuffle")
    t.add_argument("--json", metavar="PATH", help="also write the graded answers as JSON")
    t.set_defaults(func=run_take)

    g = qsub.add_parser(
        "grade",
        parents=[common],
        help="grade a JSON/YAML file of answers",
        description="Grade {question number 1-N or id: letter a-d or option text}, or the "
        'file the online quiz\'s "Download my answers" saves (as it is).',
    )
    g.add_argument("answers", help="JSON or YAML answers file, or the quiz page's downloaded JSON")
    g.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    g.set_defaults(func=run_grade)

    c = qsub.add_parser(
        "grade-class",
        parents=[common],
        help="grade an LMS responses CSV (Moodle, Canvas's Student Analysis) or a folder of the quiz page's answers",
        description="A CSV: one row a learner, one column a question (header: number, Q<n>, "
        "'Response <n>' or question id), or Canvas's quiz Student Analysis report as it is "
        "(questions matched by their text). A folder: one *.json file a learner, as "
        'the quiz page\'s "Download my answers" saves it. Writes learners.csv, '
        "questions.csv and difficulty.png.",
    )
    c.add_argument("responses", help="responses CSV (Moodle's responses, Canvas's Student Analysis), or a folder")
    c.add_argument("--out", default="quiz-results", help="output folder (created if missing; default quiz-results)")
    c.add_argument(
        "--id-column", default=None, help="column naming the learner (default: the first; Canvas's report: name)"
    )
    c.add_argument("--blank-as-wrong", action="store_true", help="score a blank answer as wrong instead of failing")
    c.set_defaults(func=run_grade_class)

    e = qsub.add_parser(
        "export",
        parents=[common],
        help="write the quiz for an LMS (Moodle: GIFT or XML; Canvas and others: a QTI 1.2 zip)",
    )
    e.add_argument(
        "--format",
        required=True,
        choices=export.FORMATS,
        help="gift or moodle-xml (Moodle's question bank), qti (an IMS QTI 1.2 zip: Canvas, Brightspace, ...), json",
    )
    e.add_argument("-o", "--output", default=None, help="output file (default <bank id>.<ext>; '-' for stdout)")
    e.add_argument("--base-url", default="", help="where the book is published, to link explanations to it")
    e.set_defaults(func=run_export)

    k = qsub.add_parser("check", parents=[common], help="check the bank's schema")
    k.set_defaults(func=run_check)


def _bank(args: argparse.Namespace) -> bankmod.Bank:
    return bankmod.load_bank(args.bank)


def run_check(args: argparse.Namespace) -> int:
    """``lensref quiz check``: load the bank (every question explained and linked) and say how big it is."""
    bank = _bank(args)
    print(
        f"ok: {bank.path}: {len(bank)} questions, "
        f"{sum(len(q.options) for q in bank.questions)} options, all explained and linked"
    )
    return 0


def run_grade(args: argparse.Namespace) -> int:
    """``lensref quiz grade``: score one saved answer sheet, one line per question, then the score."""
    check_output(args.json, "--json")
    bank = _bank(args)
    sheet = scoring.load_answer_sheet(args.answers)
    result = scoring.grade_sheet(bank, sheet)
    for r in result.results:
        print(scoring.format_result(r))
    print(result.score_line())
    if sheet.page_score is not None and sheet.page_score != result.score:
        print(
            f"note: the page showed {sheet.page_score}/{result.total} when the file was saved "
            f"(the quiz changed since?); the score above is against the current quiz"
        )
    if args.json:
        write_json(args.json, result.to_dict())
    return 0


def run_take(args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """``lensref quiz take``: the quiz in the terminal (``stdin``/``stdout`` by default); 1 if it was left early."""
    if args.seed is not None and not args.shuffle:
        raise LensError("--seed only chooses the order --shuffle shows; add --shuffle")
    check_output(args.json, "--json")
    result = take_quiz(_bank(args), stdin or sys.stdin, stdout or sys.stdout, shuffle=args.shuffle, seed=args.seed)
    if result is None:
        return 1
    if args.json:
        write_json(args.json, result.to_dict())
    return 0


def run_grade_class(args: argparse.Namespace) -> int:
    """``lensref quiz grade-class``: a class's responses into per-learner and per-question CSVs and a figure."""
    bank = _bank(args)
    result = classgrade.grade_class(bank, args.responses, id_column=args.id_column, blank_as_wrong=args.blank_as_wrong)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise LensError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    with replacing(out / "difficulty.png") as png:  # the figure first: if it fails, nothing is written
        classgrade.plot_difficulty(result, png)
        write_atomically(out / "learners.csv", classgrade.learners_csv(result))
        write_atomically(out / "questions.csv", classgrade.questions_csv(result))
    n = len(bank)
    hardest = min(result.questions, key=lambda s: (s.share_correct, s.number))
    print(f"graded {len(result.learners)} learners on {n} questions: mean score {result.mean_score:.1f}/{n}")
    partial = [l.learner for l in result.learners if None in l.chosen]
    if partial and Path(args.responses).is_dir():
        print(f"{len(partial)} learner(s) left questions unanswered (scored wrong): {', '.join(partial)}")
    print(
        f"hardest: question {hardest.number} ({hardest.id}), {hardest.share_correct:.0%} correct"
        + (f", most chose {hardest.most_wrong}) {hardest.most_wrong_text}" if hardest.most_wrong else "")
    )
    if result.ignored_columns:
        print(f"ignored columns: {', '.join(result.ignored_columns)}")
    print(f"wrote {out / 'learners.csv'}, {out / 'questions.csv'}, {out / 'difficulty.png'}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """``lensref quiz export``: the bank in an LMS's import format (``-`` writes to stdout)."""
    bank = _bank(args)
    output = args.output or f"{bank.id}.{_EXT[args.format]}"
    if args.format in export.PACKAGES:
        data = export.render_package(bank, args.format, base_url=args.base_url)
        if output == "-":
            sys.stdout.buffer.write(data)
            return 0
        with replacing(output) as tmp:
            tmp.write_bytes(data)
        print(f"wrote {output} ({args.format}, {len(bank)} questions)")
        return 0
    text = export.render(bank, args.format, base_url=args.base_url)
    if output == "-":
        sys.stdout.write(text)
        return 0
    write_atomically(output, text)
    print(f"wrote {output} ({args.format}, {len(bank)} questions)")
    return 0
