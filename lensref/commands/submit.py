"""``lensref submit NOTEBOOK --student NAME``: hand a notebook in, in the layout ``lensref grade`` reads."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add the ``submit`` subcommand to ``sub`` (the CLI's subparsers)."""
    p = sub.add_parser(
        "submit",
        help="hand in an exercise notebook: NAME/ASSIGNMENT/NOTEBOOK.ipynb into a zip or folder",
        description="Copies NOTEBOOK (byte for byte) to <NAME>/<assignment>/<notebook>.ipynb inside "
        "a zip (default submission-<NAME>.zip; run it once per notebook, the zip "
        "collects them) or a folder, the layout `lensref grade` reads once the "
        "instructor collects it into submitted/ with `lensref collect`. The assignment and the notebook's "
        "name come from its nbgrader cells, so a renamed copy is handed in under "
        "the right name; a notebook that is not one of the course's is refused.",
    )
    p.add_argument("notebook", help="your exercise notebook, e.g. my-work/01-logit-lens/logit_lens.ipynb")
    p.add_argument("--student", required=True, metavar="NAME", help="your name or id as your instructor knows it")
    p.add_argument(
        "--out",
        default=None,
        metavar="ZIP_OR_DIR",
        help="a .zip file (added to, or created) or a folder, e.g. submitted/ (default submission-NAME.zip)",
    )
    p.add_argument(
        "--course", default=None, metavar="DIR", help="the course folder holding solutions/ (default: this checkout)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Copy the notebook into ``submitted/<student>/<assignment>/`` for ``lensref grade``."""
    from ..course.release import COURSE_ROOT
    from ..course.submit import submit

    result = submit(args.notebook, args.student, args.out, root=Path(args.course) if args.course else COURSE_ROOT)
    print(result.summary())
    a = result.course_notebook.assignment
    if result.is_zip:
        print(
            f"hand {result.target} in; your instructor runs: lensref collect {result.target.name}, "
            f"then: lensref grade {a}"
        )
    else:
        print(
            f"graded with: lensref grade {a}"
            + (f" --submitted {result.target}" if result.target.name != "submitted" else "")
        )
    return 0
