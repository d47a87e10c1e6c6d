"""``lensref grade export ASSIGNMENT``: the gradebook as an LMS's grade import file, or the feedback pages as its
bulk upload (:mod:`lensref.course.lms.grade_export`).

The parser is registered as ``grade export``; ``lensref grade`` hands it every command line that starts with
``export`` (:func:`lensref.commands.grade.route_export`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

PARSER_NAME = "grade export"


def register(sub: Any) -> None:
    """Add the ``grade export`` subcommand to ``sub`` (the CLI's subparsers)."""
    p = sub.add_parser(
        PARSER_NAME,
        description="Write the gradebook of ASSIGNMENT as an LMS's own grade import file (Canvas's gradebook CSV, "
        "Moodle's grade import CSV, or a plain CSV), students matched through --roster; or, with --feedback, the "
        "feedback pages as a zip for the LMS's bulk feedback upload. A student that cannot be matched is listed, "
        "one line each, and nothing is written (exit status 2) unless --skip-unmatched (the file holds the others; "
        "exit status 1).",
    )
    p.add_argument("assignment", help="an assignment already graded, e.g. 01-logit-lens")
    p.add_argument(
        "--format",
        required=True,
        choices=("canvas", "moodle", "csv"),
        help="canvas: Grades > Import; moodle: Grades > Import > CSV file; csv: student, name, id, email, score, max",
    )
    p.add_argument(
        "--roster",
        default=None,
        metavar="F",
        help="who the students are in the LMS: Canvas's gradebook export, Moodle's grade export (plain text), or a "
        "CSV with a 'student' column (required for canvas and moodle)",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="F",
        help="the file to write (default: <format>-grades-<assignment>.csv, or <format>-feedback-<assignment>.zip, "
        "beside the gradebook)",
    )
    p.add_argument(
        "--feedback",
        action="store_true",
        help="package the feedback pages instead: Moodle's feedback-files zip, or Canvas's Re-Upload Submissions zip",
    )
    p.add_argument(
        "--column",
        default=None,
        metavar="NAME",
        help="the LMS's assignment or grade item (default: ASSIGNMENT); with a Canvas roster that has 'NAME (id)', "
        "that assignment is updated",
    )
    p.add_argument(
        "--graded",
        default=None,
        metavar="DIR",
        help="where lensref grade wrote gradebook.db and feedback/ (its --out; default: the course root)",
    )
    p.add_argument(
        "--submitted",
        default=None,
        metavar="DIR",
        help="where lensref collect wrote collected.csv (default: submitted/ in the course root)",
    )
    p.add_argument(
        "--skip-unmatched",
        action="store_true",
        help="write the file without the students the roster (or collected.csv) does not know; they are still listed",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the gradebook or the feedback pages in the chosen LMS's import format."""
    from ..course.grading.grader import course_root
    from ..course.lms.grade_export import ExportPlaces, default_output, export_feedback, export_grades
    from ..errors import LensError

    root = course_root()
    places = ExportPlaces(
        graded=Path(args.graded or root).resolve(), submitted=Path(args.submitted or root / "submitted").resolve()
    )
    out = Path(args.out) if args.out else default_output(places, args.format, args.assignment, args.feedback)
    if args.feedback:
        if args.roster or args.column:
            raise LensError("--feedback takes no --roster or --column: students are matched by collected.csv")
        result = export_feedback(args.assignment, args.format, places, out, skip_unmatched=args.skip_unmatched)
        what = "feedback page(s)"
    else:
        result = export_grades(
            args.assignment,
            args.format,
            places,
            out,
            roster_path=Path(args.roster) if args.roster else None,
            column=args.column or args.assignment,
            skip_unmatched=args.skip_unmatched,
        )
        what = "student(s)"
    for line in result.unmatched:
        print(f"unmatched: {line}", file=sys.stderr)
    if not result.written:
        print(
            f"error: {len(result.unmatched)} student(s) unmatched, nothing written "
            f"(fix the roster, or add --skip-unmatched to write the others)",
            file=sys.stderr,
        )
        return 2
    print(f"wrote {result.path}: {result.count} {what} ({args.format})")
    return 1 if result.unmatched else 0
