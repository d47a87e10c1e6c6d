"""``lensref logitdiff PROMPT --target T --distractor D``: the lens logit difference per layer."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ._common import (
    add_output_options,
    add_prompt_command,
    add_site_option,
    check_options,
    load_model,
    write_outputs,
)

if TYPE_CHECKING:
    from ..logitdiff import LogitDiffResult


def register(sub: Any) -> None:
    """Add the ``logitdiff`` subcommand to ``sub`` (the CLI's subparsers)."""
    p = add_prompt_command(
        sub, "logitdiff", "logit(target) - logit(distractor) through the lens, layer by layer", pair=True
    )
    p.add_argument("--position", type=int, default=-1, help="position for the table and line plot (default -1)")
    add_site_option(p)
    add_output_options(p, json="write every layer and position as JSON", plot="write the plot across layers as PNG")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the logit difference per layer at ``--position``, write ``--json`` and ``--plot``."""
    from ..logitdiff import logit_diff  # here, not at the top: the parser alone must not import torch

    check_options(args)
    lm = load_model(args.model, device=args.device)
    result = logit_diff(lm, args.prompt, args.target, args.distractor, site=args.site)
    print(result.format_table(args.position))
    write_outputs(args, result.to_dict(), lambda path: _plot(result, args.position, path))
    return 0


def _plot(result: LogitDiffResult, position: int, path: str) -> None:
    from ..plotting.logitdiff import plot_logit_diff

    plot_logit_diff(result, position=position, path=path)
