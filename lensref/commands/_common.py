"""Options and output helpers shared by several subcommands."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..errors import LensError
from ..files import write_atomically, write_json
from ._validate import check_figure_output, check_output

__all__ = [
    "add_model_options",
    "add_pair_options",
    "add_prompt_command",
    "add_site_option",
    "add_output_options",
    "check_options",
    "write_outputs",
    "load_model",
    "write_atomically",
    "write_json",  # the writers live in lensref.files
]


def load_model(spec: str | None = None, device: str = "cpu") -> Any:
    """:func:`lensref.models.load_model`, imported when a command runs: building the parser (for ``lensref quiz``
    or ``--help``) must not import torch."""
    from ..models import load_model as load

    return load(spec, device=device)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model: default SmolLM2-135M-Instruct; a local folder or hub id")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")


def add_pair_options(parser: argparse.ArgumentParser) -> None:
    """``--target`` and ``--distractor``: the two single tokens a logit difference compares."""
    parser.add_argument("--target", required=True, help="one token, e.g. ' Paris' (leading space matters)")
    parser.add_argument("--distractor", required=True, help="one token to compare with, e.g. ' London'")


def add_prompt_command(sub: Any, name: str, help: str, pair: bool = False) -> argparse.ArgumentParser:
    """A subcommand that reads one PROMPT on a model (``--model``, ``--device``; with ``pair``, ``--target`` and
    ``--distractor`` too)."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help)
    parser.add_argument("prompt")
    add_model_options(parser)
    if pair:
        add_pair_options(parser)
    return parser


def add_site_option(parser: argparse.ArgumentParser) -> None:
    """``--site pre|mid|post``: where inside each block the residual is read (see :mod:`lensref.hooks`)."""
    parser.add_argument(
        "--site",
        default="pre",
        choices=["pre", "mid", "post"],
        help="where row l reads block l: pre (entering it, default), mid (after attention, before the MLP), "
        "post (its output); the last row is always the model's output",
    )


def add_output_options(parser: argparse.ArgumentParser, json: str, plot: str | None = None) -> None:
    """``--json FILE`` (what it writes: ``json``) and, if ``plot`` says what it draws, ``--plot FILE``."""
    parser.add_argument("--json", default=None, metavar="FILE", help=json)
    if plot is not None:
        parser.add_argument("--plot", default=None, metavar="FILE", help=plot)


def check_options(args: argparse.Namespace, *counts: str) -> None:
    """Before any model loads: each count option named in ``counts`` (``"top"`` for ``--top``) is at least 1, and
    ``--json`` and ``--plot`` (where the command has them) can be written."""
    for name in counts:
        value = getattr(args, name)
        if value < 1:
            raise LensError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    check_output(getattr(args, "json", None), "--json")
    check_figure_output(getattr(args, "plot", None))


def write_outputs(args: argparse.Namespace, data: Any, plot: Callable[[str], object] | None = None) -> None:
    """Write ``data`` to ``--json`` and call ``plot(path)`` for ``--plot``, each if it was given."""
    if getattr(args, "json", None):
        write_json(args.json, data)
    if plot is not None and getattr(args, "plot", None):
        plot(args.plot)
