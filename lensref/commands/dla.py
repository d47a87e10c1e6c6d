"""``lensref dla PROMPT --target T --distractor D``: which components wrote the logit difference."""
from __future__ import annotations

from ..dla import DLAResult, direct_logit_attribution
from ..errors import LensError
from ..models import load_model
from ..tokens import show_token
from ._common import add_model_options, add_pair_options, write_json
from ._validate import check_figure_output, check_output


def register(sub) -> None:
    p = sub.add_parser("dla", help="direct logit attribution: split a logit difference into blocks and heads")
    p.add_argument("prompt")
    add_model_options(p)
    add_pair_options(p)
    p.add_argument("--position", type=int, default=-1, help="the position to attribute (default -1, the last)")
    p.add_argument("--top", type=int, default=10, help="how many components and heads to list (default 10)")
    p.add_argument("--json", default=None, metavar="FILE", help="write every component and head as JSON")
    p.add_argument("--plot", default=None, metavar="FILE", help="write the bar chart and head heatmap as PNG")
    p.set_defaults(func=run)


def format_report(result: DLAResult, top: int = 10) -> str:
    lines = [
        f"{result.model}: logit {show_token(result.target)} - logit {show_token(result.distractor)} "
        f"after {show_token(result.tokens[result.position])!r}",
        f"model: {result.logit_diff:.4f}   sum of components: {result.total:.4f}   "
        f"(embed {result.embed:.3f}, attention {float(result.attn.sum()):.3f}, MLPs {float(result.mlp.sum()):.3f}, "
        f"constant {result.constant:.3f})",
        "largest components:",
    ]
    lines += [f"  {c.name:>10}  {c.value:+8.3f}" for c in result.top(top)]
    lines.append("largest heads:")
    lines += [f"  {c.name:>10}  {c.value:+8.3f}" for c in result.top(top, heads=True)]
    return "\n".join(lines)


def run(args) -> int:
    if args.top < 1:
        raise LensError(f"--top must be at least 1, got {args.top}")
    check_output(args.json, "--json")
    check_figure_output(args.plot)
    lm = load_model(args.model, device=args.device)
    result = direct_logit_attribution(lm, args.prompt, args.target, args.distractor, position=args.position)
    print(format_report(result, args.top))
    if args.json:
        write_json(args.json, result.to_dict())
    if args.plot:
        from ..plotting.dla import plot_dla

        plot_dla(result, top=max(args.top, 15), path=args.plot)
    return 0
