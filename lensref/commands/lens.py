"""``lensref lens PROMPT``: the per-layer table at the last position, optional JSON and grid PNG."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..errors import LensError
from ..tables import format_table
from ._common import (
    add_output_options,
    add_prompt_command,
    add_site_option,
    check_options,
    load_model,
    write_outputs,
)

if TYPE_CHECKING:
    from ..lens import LensResult

__all__ = ["COLOURINGS", "check_args", "format_table", "register", "run"]  # format_table: the old import path

COLOURINGS = ("prob", "entropy", "kl", "rank")  # as lensref.plotting.grid draws them


def register(sub: Any) -> None:
    """Add the ``lens`` subcommand to ``sub`` (the CLI's subparsers)."""
    p = add_prompt_command(sub, "lens", "read a prompt through the logit lens, layer by layer")
    p.add_argument("--target", default=None, help="one token to follow, e.g. ' Paris' (leading space matters)")
    p.add_argument("--top-k", type=int, default=5)
    add_output_options(
        p, json="write every layer and position as JSON", plot="write the layers x positions grid as PNG"
    )
    p.add_argument(
        "--colour-by",
        default=None,
        choices=COLOURINGS,
        help="what colours the --plot grid's cells: prob (default), entropy, kl, or rank (needs --target)",
    )
    p.add_argument("--tuned", default=None, metavar="DIR", help="use a trained tuned lens instead of the logit lens")
    add_site_option(p)
    p.set_defaults(func=run)


def check_args(args: argparse.Namespace) -> None:
    """Every option on its own and in combination, before the model loads: one line for what is wrong."""
    check_options(args, "top_k")
    if args.colour_by is not None and args.plot is None:
        raise LensError(f"--colour-by {args.colour_by} colours the grid figure; add --plot FILE")
    if args.colour_by == "rank" and args.target is None:
        raise LensError("--colour-by rank colours each cell by the target's rank; add --target TOKEN")
    if args.tuned and args.site != "pre":
        raise LensError(f"--tuned reads the states entering each block (--site pre), not --site {args.site}")


def run(args: argparse.Namespace) -> int:
    """Read the prompt through the lens (or a tuned lens), print the table, write ``--json`` and ``--plot``."""
    from ..lens import logit_lens  # here, not at the top: the parser alone must not import torch

    check_args(args)
    lm = load_model(args.model, device=args.device)
    vocab = lm.adapter.unembed.weight.shape[0]
    if args.top_k > vocab:
        raise LensError(f"--top-k {args.top_k} is more than the {vocab} tokens of {lm.name}'s vocabulary")
    translator = None
    if args.tuned:
        from ..tuned import load_tuned_lens

        translator = load_tuned_lens(args.tuned, lm)
    result = logit_lens(lm, args.prompt, target=args.target, top_k=args.top_k, translator=translator, site=args.site)
    print(result.format_table())
    write_outputs(args, result.to_dict(), lambda path: _plot(result, args.colour_by or "prob", path))
    return 0


def _plot(result: LensResult, colour_by: str, path: str) -> None:
    from ..plotting import plot_grid

    plot_grid(result, colour_by=colour_by, path=path)
