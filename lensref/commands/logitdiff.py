"""``lensref logitdiff PROMPT --target T --distractor D``: the lens logit difference per layer."""
from __future__ import annotations

from ..logitdiff import LogitDiffResult, check_position, logit_diff
from ..models import load_model
from ..tokens import show_token
from ._common import add_model_options, add_pair_options, write_json
from ._validate import check_figure_output, check_output


def register(sub) -> None:
    p = sub.add_parser("logitdiff", help="logit(target) - logit(distractor) through the lens, layer by layer")
    p.add_argument("prompt")
    add_model_options(p)
    add_pair_options(p)
    p.add_argument("--position", type=int, default=-1, help="position for the table and line plot (default -1)")
    p.add_argument("--json", default=None, metavar="FILE", help="write every layer and position as JSON")
    p.add_argument("--plot", default=None, metavar="FILE", help="write the plot across layers as PNG")
    p.set_defaults(func=run)


def format_table(result: LogitDiffResult, position: int = -1) -> str:
    position = check_position(position, result.n_positions)
    target, distractor = show_token(result.target), show_token(result.distractor)
    lines = [f"{result.model}: logit {target} - logit {distractor} after {show_token(result.tokens[position])!r}",
             f"{'layer':>5}  {'diff':>8}  {target:>10}  {distractor:>10}"]
    for layer in range(result.n_layers + 1):
        lines.append(f"{layer:>5}  {float(result.diff[layer, position]):8.3f}  "
                     f"{float(result.target_logit[layer, position]):10.3f}  "
                     f"{float(result.distractor_logit[layer, position]):10.3f}")
    first = result.first_positive_layer(position)
    lines.append(f"positive from layer {first} on" if first is not None else "not positive at the last layer")
    return "\n".join(lines)


def run(args) -> int:
    check_output(args.json, "--json")
    check_figure_output(args.plot)
    lm = load_model(args.model, device=args.device)
    result = logit_diff(lm, args.prompt, args.target, args.distractor)
    print(format_table(result, args.position))
    if args.json:
        write_json(args.json, result.to_dict())
    if args.plot:
        from ..plotting.logitdiff import plot_logit_diff

        plot_logit_diff(result, position=args.position, path=args.plot)
    return 0
