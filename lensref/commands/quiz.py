"""``lensref quiz``: the end-of-lesson quiz in a terminal, grading and LMS exports.

    lensref quiz take                        # interactive, instant feedback (answers may be piped on stdin)
    lensref quiz grade answers.yaml          # {"1": "d", "early-layers": "Predictions close to ...", ...}
    lensref quiz grade-class responses.csv   # per-learner scores, per-question statistics, difficulty plot
    lensref quiz export --format gift        # or moodle-xml, json
    lensref quiz check                       # schema check of the bank
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path

from ..errors import LensError
from ..course.quiz import bank as bankmod
from ..course.quiz import classgrade, export, scoring
from ._common import write_atomically, write_json

_EXT = {"gift": "gift", "moodle-xml": "xml", "json": "json"}


def register(sub) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--bank", default=None, help=f"quiz bank YAML (default {bankmod.DEFAULT_BANK.name})")

    p = sub.add_parser("quiz", help="the end-of-lesson quiz: take, grade, grade a class, export to an LMS",
                       description="The end-of-lesson quiz, from the bank quizzes/logit-lens.yaml.")
    qsub = p.add_subparsers(dest="quiz_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    t = qsub.add_parser("take", parents=[common], help="answer the questions with instant feedback")
    t.add_argument("--shuffle", action="store_true", help="shuffle each question's options")
    t.add_argument("--seed", type=int, default=None, help="seed for --shuffle")
    t.add_argument("--json", metavar="PATH", help="also write the graded answers as JSON")
    t.set_defaults(func=run_take)

    g = qsub.add_parser("grade", parents=[common], help="grade a JSON/YAML file of answers",
                        description="Grade {question number 1-N or id: letter a-d or option text}.")
    g.add_argument("answers", help="JSON or YAML answers file")
    g.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    g.set_defaults(func=run_grade)

    c = qsub.add_parser("grade-class", parents=[common], help="grade an LMS responses CSV",
                        description="One row a learner, one column a question (header: number, Q<n>, "
                                    "'Response <n>' or question id). Writes learners.csv, questions.csv "
                                    "and difficulty.png.")
    c.add_argument("responses", help="responses CSV")
    c.add_argument("--out", default="quiz-results", help="output folder (created if missing; default quiz-results)")
    c.add_argument("--id-column", default=None, help="column naming the learner (default: the first)")
    c.add_argument("--blank-as-wrong", action="store_true", help="score a blank answer as wrong instead of failing")
    c.set_defaults(func=run_grade_class)

    e = qsub.add_parser("export", parents=[common], help="write the quiz for an LMS (Moodle: GIFT or XML)")
    e.add_argument("--format", required=True, choices=export.FORMATS)
    e.add_argument("-o", "--output", default=None, help="output file (default <bank id>.<ext>; '-' for stdout)")
    e.add_argument("--base-url", default="", help="where the book is published, to link explanations to it")
    e.set_defaults(func=run_export)

    k = qsub.add_parser("check", parents=[common], help="check the bank's schema")
    k.set_defaults(func=run_check)


def _bank(args) -> bankmod.Bank:
    return bankmod.load_bank(args.bank)


def run_check(args) -> int:
    bank = _bank(args)
    print(f"ok: {bank.path}: {len(bank)} questions, "
          f"{sum(len(q.options) for q in bank.questions)} options, all explained and linked")
    return 0


def run_grade(args) -> int:
    bank = _bank(args)
    answers = scoring.load_answers(args.answers)
    result = scoring.grade(bank, answers, where=str(args.answers))
    for r in result.results:
        print(scoring.format_result(r))
    print(f"score: {result.score}/{result.total}")
    if args.json:
        write_json(args.json, result.to_dict())
    return 0


def run_take(args, stdin=None, stdout=None) -> int:
    stdin = stdin or sys.stdin
    out = stdout or sys.stdout
    interactive = stdin.isatty()
    bank = _bank(args)
    rng = random.Random(args.seed)
    answers: dict[str, str] = {}
    score = 0
    print(f"{bank.title}: {len(bank)} questions. Answer with a letter (or the option's text); "
          f"{'q to quit' if interactive else 'one answer a line'}.\n", file=out)
    for q in bank.questions:
        shown = list(q.options)
        if args.shuffle:
            rng.shuffle(shown)
        letters = bankmod.LETTERS[:len(shown)]
        print(f"Question {q.number}/{len(bank)}: {q.text}", file=out)
        for letter, o in zip(letters, shown):
            print(f"  {letter}) {o.text}", file=out)
        while True:
            out.write(f"your answer ({letters[0]}-{letters[-1]}): ")
            out.flush()
            line = stdin.readline()
            if not line:
                print(file=out)
                raise LensError(f"input ended at question {q.number} of {len(bank)}: no score "
                                 f"(every question needs an answer)")
            reply = line.strip()
            if not interactive:
                print(reply, file=out)  # echo piped answers so the transcript reads like a session
            if interactive and reply.lower() in ("q", "quit", "exit"):
                print(f"quit at question {q.number}: no score", file=out)
                return 1
            chosen = _pick(q, shown, letters, reply)
            if chosen is not None:
                break
            message = f"question {q.number}: {reply!r} is not one of the options {letters[0]}-{letters[-1]}"
            if not interactive:
                raise LensError(message + "; no score")
            print(f"  {message}; try again", file=out)
        answers[str(q.number)] = chosen.letter
        score += chosen.correct
        if chosen.correct:
            print(f"  Correct. {chosen.explanation}", file=out)
        else:
            right = q.answer
            print(f"  Not quite. {chosen.explanation}", file=out)
            print(f"  The answer is {letters[shown.index(right)]}) {right.text}: {right.explanation}", file=out)
        print(f"  (lesson: {chosen.section_url()})   score so far: {score}/{q.number}\n", file=out)
    result = scoring.grade(bank, answers, where="your answers")
    print(f"score: {result.score}/{result.total}", file=out)
    if args.json:
        write_json(args.json, result.to_dict())
    return 0


def _pick(q: bankmod.Question, shown, letters: str, reply: str):
    key = bankmod.normalize(reply)
    if len(key) == 1 and key in letters:
        return shown[letters.index(key)]
    if len(key) > 1:
        for o in q.options:
            if bankmod.normalize(o.text) == key:
                return o
    return None


def run_grade_class(args) -> int:
    bank = _bank(args)
    result = classgrade.grade_class(bank, args.responses, id_column=args.id_column,
                                    blank_as_wrong=args.blank_as_wrong)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise LensError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    png_tmp = _render_png(result, out / "difficulty.png")
    try:
        write_atomically(out / "learners.csv", classgrade.learners_csv(result))
        write_atomically(out / "questions.csv", classgrade.questions_csv(result))
        os.replace(png_tmp, out / "difficulty.png")
    finally:
        if os.path.exists(png_tmp):
            os.unlink(png_tmp)
    n = len(bank)
    hardest = min(result.questions, key=lambda s: (s.share_correct, s.number))
    print(f"graded {len(result.learners)} learners on {n} questions: mean score {result.mean_score:.1f}/{n}")
    print(f"hardest: question {hardest.number} ({hardest.id}), {hardest.share_correct:.0%} correct"
          + (f", most chose {hardest.most_wrong}) {hardest.most_wrong_text}" if hardest.most_wrong else ""))
    if result.ignored_columns:
        print(f"ignored columns: {', '.join(result.ignored_columns)}")
    print(f"wrote {out / 'learners.csv'}, {out / 'questions.csv'}, {out / 'difficulty.png'}")
    return 0


def _render_png(result, final: Path) -> str:
    fd, tmp = tempfile.mkstemp(prefix=final.name + ".", suffix=".tmp", dir=final.parent)
    os.close(fd)
    try:
        classgrade.plot_difficulty(result, tmp)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def run_export(args) -> int:
    bank = _bank(args)
    text = export.render(bank, args.format, base_url=args.base_url)
    output = args.output or f"{bank.id}.{_EXT[args.format]}"
    if output == "-":
        sys.stdout.write(text)
        return 0
    write_atomically(output, text)
    print(f"wrote {output} ({args.format}, {len(bank)} questions)")
    return 0
