"""``lensref dla PROMPT --target T --distractor D``: which components wrote the logit difference."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ._common import add_output_options, add_prompt_command, check_options, load_model, write_outputs

if TYPE_CHECKING:
    from ..dla import DLAResult


def register(sub: Any) -> None:
    """Add the ``dla`` subcommand to ``sub`` (the CLI's subparsers)."""
    p = add_prompt_command(
        sub, "dla", "direct logit attribution: split a logit difference into blocks and heads", pair=True
    )
    p.add_argument("--position", type=int, default=-1, help="the position to attribute (default -1, the last)")
    p.add_argument("--top", type=int, default=10, help="how many components and heads to list (default 10)")
    add_output_options(
        p, json="write every component and head as JSON", plot="write the bar chart and head heatmap as PNG"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Attribute the logit difference, print the top components, write ``--json`` and ``--plot``."""
    from ..dla import direct_logit_attribution  # here, not at the top: the parser alone must not import torch

    check_options(args, "top")
    lm = load_model(args.model, device=args.device)
    result = direct_logit_attribution(lm, args.prompt, args.target, args.distractor, position=args.position)
    print(result.format_table(args.top))
    write_outputs(args, result.to_dict(), lambda path: _plot(result, max(args.top, 15), path))
    return 0


def _plot(result: DLAResult, top: int, path: str) -> None:
    from ..plotting.dla import plot_dla

    plot_dla(result, top=top, path=path)
