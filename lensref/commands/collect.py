"""``lensref collect ARCHIVE_OR_FOLDER...``: learners' zips and LMS downloads into ``submitted/``, refusing what
could abuse it (:mod:`lensref.course.grading.collect`)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the ``collect`` subcommand to ``sub`` (the CLI's subparsers)."""
    p = sub.add_parser(
        "collect",
        help="collect learners' zips (lensref submit) and Moodle/Canvas downloads into submitted/, safely",
        description="Reads each zip, notebook or folder (its zips and files) and writes every notebook it accepts "
        "to submitted/<student>/<assignment>/<notebook>.ipynb, the layout `lensref grade` reads. It never "
        "extracts: symlinks, hard links, absolute or '..' paths, oversized members and compression bombs, "
        "files that are not the course's notebooks, unsafe student names, two hand-ins for one student and "
        "assignment, symlinked destinations and existing submissions (without --force) are refused, one line "
        "each, and the rest is collected. submitted/collected.csv records where each notebook came from (with "
        "the LMS's id and name). Exit status 0 when everything was collected, 1 when something was refused, "
        "2 on bad input.",
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="ARCHIVE_OR_FOLDER",
        help="submission-<name>.zip files, a Moodle or Canvas download zip, notebooks, or folders holding them",
    )
    p.add_argument(
        "--assignment",
        default=None,
        metavar="A",
        help="the assignment, e.g. 01-logit-lens: required for Moodle and Canvas downloads (they do not name it); "
        "with lensref submit zips, collect only this assignment's notebooks",
    )
    p.add_argument(
        "--submitted",
        default=None,
        metavar="DIR",
        help="where the submissions go (default: submitted/ in the course root)",
    )
    p.add_argument("--force", action="store_true", help="replace submissions that were collected before")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Copy the learners' archives and folders into ``submitted/``; 1 if any was refused."""
    from ..course.grading.collect import collect

    report = collect(args.inputs, assignment=args.assignment, submitted=args.submitted, force=args.force)
    for line in report.lines():
        print(line)
    return report.exit_status
