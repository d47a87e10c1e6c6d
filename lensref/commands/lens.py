"""``lensref lens PROMPT``: the per-layer table at the last position, optional JSON and grid PNG."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import LensError
from ._common import add_model_options, add_site_option, load_model, write_json
from ._validate import check_figure_output, check_output

if TYPE_CHECKING:
    from ..lens import LensResult

COLOURINGS = ("prob", "entropy", "kl", "rank")  # as lensref.plotting.grid draws them


def register(sub) -> None:
    p = sub.add_parser("lens", help="read a prompt through the logit lens, layer by layer")
    p.add_argument("prompt")
    add_model_options(p)
    p.add_argument("--target", default=None, help="one token to follow, e.g. ' Paris' (leading space matters)")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--json", default=None, metavar="FILE", help="write every layer and position as JSON")
    p.add_argument("--plot", default=None, metavar="FILE", help="write the layers x positions grid as PNG")
    p.add_argument(
        "--colour-by",
        default=None,
        choices=COLOURINGS,
        help="what colours the --plot grid's cells: prob (default), entropy, kl, or rank (needs --target)",
    )
    p.add_argument("--tuned", default=None, metavar="DIR", help="use a trained tuned lens instead of the logit lens")
    add_site_option(p)
    p.set_defaults(func=run)


def format_table(result: LensResult, position: int = -1) -> str:
    """One line per layer for one position (:meth:`LensResult.format_table`; the exercise notebooks import it
    from here)."""
    return result.format_table(position)


def check_args(args) -> None:
    """Every option on its own and in combination, before the model loads: one line for what is wrong."""
    if args.top_k < 1:
        raise LensError(f"--top-k must be at least 1, got {args.top_k}")
    if args.colour_by is not None and args.plot is None:
        raise LensError(f"--colour-by {args.colour_by} colours the grid figure; add --plot FILE")
    if args.colour_by == "rank" and args.target is None:
        raise LensError("--colour-by rank colours each cell by the target's rank; add --target TOKEN")
    if args.tuned and args.site != "pre":
        raise LensError(f"--tuned reads the states entering each block (--site pre), not --site {args.site}")
    check_output(args.json, "--json")
    check_figure_output(args.plot, "--plot")


def run(args) -> int:
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
    if args.json:
        write_json(args.json, result.to_dict())
    if args.plot:
        from ..plotting import plot_grid

        plot_grid(result, colour_by=args.colour_by or "prob", path=args.plot)
    return 0
