"""``lensref grade ASSIGNMENT``: grade ``submitted/<student>/<ASSIGNMENT>/`` into the gradebook, CSV and feedback."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add the ``grade`` subcommand to ``sub`` (the CLI's subparsers)."""
    p = sub.add_parser(
        "grade",
        help="grade a class's submissions in a sandbox (nbgrader gradebook, CSV, feedback HTML)",
        epilog="lensref grade export ASSIGNMENT --format canvas|moodle|csv [--roster F] [--feedback] writes the "
        "gradebook for an LMS (see lensref grade export --help).",
    )
    p.add_argument("assignment", help="an assignment folder in solutions/, e.g. 01-logit-lens")
    p.add_argument(
        "--submitted",
        default=None,
        metavar="DIR",
        help="folder of <student>/<assignment>/ submissions (default: submitted/ in the course root)",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="where gradebook.db, autograded/, feedback/ and grades-<assignment>.csv go (default: the course root)",
    )
    p.add_argument(
        "--timeout", type=int, default=None, metavar="S", help="seconds each notebook cell may run (default 60)"
    )
    p.add_argument(
        "--force", action="store_true", help="regrade submissions that were already graded and did not change"
    )
    p.add_argument(
        "--memory", type=int, default=4096, metavar="MB", help="memory limit of one submission's run (default 4096)"
    )
    p.add_argument(
        "--disk",
        type=int,
        default=None,
        metavar="MB",
        help="disk space of one submission's run, /tmp included (default 1024, or a quarter of --memory if that is "
        "less); kept in memory, never on this disk, and counted in --memory: at most half of it",
    )
    p.add_argument(
        "--max-procs", type=int, default=256, metavar="N", help="process limit of one submission's run (default 256)"
    )
    p.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run learner code unconfined (only for machines without user namespaces; learner code can then "
        "read and change anything you can)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="grade N submissions at a time, each in its own sandbox (default: the number of cores)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the notebooks on an existing Dask cluster (e.g. tcp://10.0.0.5:8786); the verdicts and the "
        "gradebook stay on this machine",
    )
    p.add_argument(
        "--baseline",
        action="store_true",
        help="also run each notebook as the learner would (visible checks only, in the same sandbox) and print "
        "both times (slow: for measuring)",
    )
    p.set_defaults(func=run)
    route_export(p, sub)


def route_export(grade_parser: argparse.ArgumentParser, subparsers: Any) -> None:
    """``lensref grade export ...`` goes to the ``grade export`` parser (:mod:`lensref.commands.grade_export`);
    every other ``lensref grade ...`` is parsed exactly as before."""
    parse_grade = grade_parser.parse_known_args

    def parse_known_args(
        args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if args and args[0] == "export":
            export_parser: argparse.ArgumentParser = subparsers.choices["grade export"]
            return export_parser.parse_known_args(args[1:], namespace)
        return parse_grade(args, namespace)

    grade_parser.parse_known_args = parse_known_args  # type: ignore[method-assign,assignment]  # on purpose


def run(args: argparse.Namespace) -> int:
    """Grade every submission of the assignment into the gradebook, the CSV and the feedback pages."""
    from ..course.grading.grader import DEFAULT_TIMEOUT, grade
    from ..course.grading.limits import Limits
    from ..errors import LensError

    if args.memory < 256:
        raise LensError(f"--memory must be at least 256 MB, got {args.memory}")
    if args.max_procs < 16:
        raise LensError(f"--max-procs must be at least 16, got {args.max_procs}")
    disk = args.disk if args.disk is not None else min(1024, args.memory // 4)
    if disk < 64:
        raise LensError(f"--disk must be at least 64 MB, got {disk}")
    report = grade(
        args.assignment,
        submitted=args.submitted and Path(args.submitted),
        out=args.out and Path(args.out),
        timeout=args.timeout if args.timeout is not None else DEFAULT_TIMEOUT,
        force=args.force,
        limits=Limits(memory_mb=args.memory, max_procs=args.max_procs, disk_mb=disk),
        sandboxed=not args.no_sandbox,
        baseline=args.baseline,
        jobs=args.jobs,
        scheduler=args.scheduler,
        bar=True,
    )
    print(report.summary())
    return 0 if all(r.status.recorded for r in report.results) else 1
