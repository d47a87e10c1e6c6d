"""The ``lensref`` command: a thin layer over the library.

Each subcommand lives in its own module under :mod:`lensref.commands` with two functions,
``register(subparsers)`` (adds its parser, sets ``func``) and ``run(args) -> int``. Modules are found
automatically, so a new subcommand is one new file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import NoReturn

from . import commands
from .errors import LensError


class OneLineErrors(argparse.ArgumentParser):
    """A usage mistake (unknown option, missing argument, bad choice) is one line on stderr and exit status 2,
    like every other bad input; ``--help`` still shows the full usage. Subcommand parsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        """Exit with status 2 after one line naming the mistake."""
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``lensref`` parser, with one subcommand per module of :mod:`lensref.commands`."""
    parser = OneLineErrors(prog="lensref", description="The logit lens and its variants, on a real model.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``lensref`` command; a :class:`~lensref.errors.LensError` is one line on stderr and status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LensError as exc:
        # one line, even when the message quotes text with line breaks in it (shown as in token tables)
        print(f"error: {str(exc).strip()}".replace("\n", "↵"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
