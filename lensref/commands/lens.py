"""``lensref lens PROMPT``: the per-layer table at the last position, optional JSON and grid PNG."""
from __future__ import annotations

from ..lens import LensResult, logit_lens
from ..models import load_model
from ..tokens import show_token
from ._common import add_model_options, write_json


def register(sub) -> None:
    p = sub.add_parser("lens", help="read a prompt through the logit lens, layer by layer")
    p.add_argument("prompt")
    add_model_options(p)
    p.add_argument("--target", default=None, help="one token to follow, e.g. ' Paris' (leading space matters)")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--json", default=None, metavar="FILE", help="write every layer and position as JSON")
    p.add_argument("--plot", default=None, metavar="FILE", help="write the layers x positions grid as PNG")
    p.add_argument("--colour-by", default="prob", choices=["prob", "entropy", "kl", "rank"])
    p.add_argument("--tuned", default=None, metavar="DIR", help="use a trained tuned lens instead of the logit lens")
    p.set_defaults(func=run)


def format_table(result: LensResult, position: int = -1) -> str:
    """One line per layer for one position: top tokens with probabilities, entropy, KL, target."""
    header = f"{'layer':>5}  {'entropy':>7}  {'KL':>7}  " + ("target p / rank  " if result.target else "") + "top tokens"
    lines = [f"{result.model}: next-token predictions after {show_token(result.tokens[position])!r}", header]
    for layer in range(result.n_layers + 1):
        tops = "  ".join(f"{show_token(t.token)} {t.prob:.3f}" for t in result.top(layer, position))
        target = ""
        if result.target is not None:
            target = f"{float(result.target_prob[layer, position]):.4f} / {int(result.target_rank[layer, position]):<6} "
        lines.append(f"{layer:>5}  {float(result.entropy[layer, position]):7.3f}  "
                     f"{float(result.kl_to_final[layer, position]):7.3f}  {target}{tops}")
    return "\n".join(lines)


def run(args) -> int:
    from ..errors import LensError

    if args.top_k < 1:
        raise LensError(f"--top-k must be at least 1, got {args.top_k}")
    lm = load_model(args.model, device=args.device)
    translator = None
    if args.tuned:
        from ..tuned import load_tuned_lens

        translator = load_tuned_lens(args.tuned, lm)
    result = logit_lens(lm, args.prompt, target=args.target, top_k=args.top_k, translator=translator)
    print(format_table(result))
    if args.json:
        write_json(args.json, result.to_dict())
    if args.plot:
        from ..plotting import plot_grid

        plot_grid(result, colour_by=args.colour_by, path=args.plot)
    return 0
