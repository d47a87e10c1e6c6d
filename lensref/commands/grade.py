"""``lensref grade ASSIGNMENT``: autograde ``submitted/<student>/<ASSIGNMENT>/`` into the gradebook, CSV, feedback."""
from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("grade", help="autograde a class's submissions with nbgrader (gradebook, CSV, feedback HTML)")
    p.add_argument("assignment", help="an assignment folder in solutions/, e.g. 01-logit-lens")
    p.add_argument("--submitted", default=None, metavar="DIR",
                   help="folder of <student>/<assignment>/ submissions (default: submitted/ in the course root)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="where gradebook.db, autograded/, feedback/ and grades-<assignment>.csv go (default: the course root)")
    p.add_argument("--timeout", type=int, default=None, metavar="S", help="seconds each notebook cell may run (default 60)")
    p.add_argument("--force", action="store_true", help="regrade submissions that were already graded and did not change")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..course.autograde import DEFAULT_TIMEOUT, GRADED, UNCHANGED, grade

    report = grade(args.assignment, submitted=args.submitted and Path(args.submitted), out=args.out and Path(args.out),
                   timeout=args.timeout if args.timeout is not None else DEFAULT_TIMEOUT, force=args.force)
    print(report.summary())
    return 0 if all(r.status in (GRADED, UNCHANGED) for r in report.results) else 1
