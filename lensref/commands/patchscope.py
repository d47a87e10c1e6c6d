"""``lensref patchscope PROMPT``: read one hidden state per layer by patching it into the identity prompt."""
from __future__ import annotations

from ..errors import LensError
from ..models import load_model
from ..patchscope import (DEFAULT_NEW_TOKENS, IDENTITY_PROMPT, PLACEHOLDER, PatchscopeResult, fit_residual_maps,
                          parse_layers, patchscope, shared_texts)
from ..tokens import show_token
from ._common import add_model_options, write_json
from ._validate import check_output


def register(sub) -> None:
    p = sub.add_parser("patchscope", help="patch a hidden state into a target prompt and let the model say what it is")
    p.add_argument("prompt")
    add_model_options(p)
    p.add_argument("--position", type=int, default=-1, help="source position to read (default -1, the last token)")
    p.add_argument("--layers", default=None, help="source layers, e.g. 0,5,10-15 (default all)")
    p.add_argument("--target-prompt", default=IDENTITY_PROMPT,
                   help="prompt to patch into (default: the few-shot identity prompt 'cat -> cat ... ? ->')")
    p.add_argument("--placeholder", default=PLACEHOLDER, help="the token of the target prompt to overwrite (default ?)")
    p.add_argument("--target-layer", type=int, default=None, help="patch every state in at this layer (default: the same layer)")
    p.add_argument("--tokens", type=int, default=DEFAULT_NEW_TOKENS, help="tokens to generate (default 4)")
    p.add_argument("--target-model", default=None,
                   help="read with another model; an affine map per layer is fitted on CPython's docs first")
    p.add_argument("--json", default=None, metavar="FILE", help="write the readouts as JSON")
    p.set_defaults(func=run)


def format_table(result: PatchscopeResult) -> str:
    lines = [f"{result.source_model} -> {result.target_model}: {show_token(result.source_token)!r} "
             f"(position {result.position}) read through {result.target_prompt!r}",
             f"{'layer':>5}  {'-> l*':>5}  {'p(first)':>8}  readout"]
    for r in result.readouts:
        lines.append(f"{r.layer:>5}  {r.target_layer:>5}  {r.first_prob:8.3f}  {show_token(r.text)}")
    return "\n".join(lines)


def run(args) -> int:
    if args.tokens < 1:
        raise LensError(f"--tokens must be at least 1, got {args.tokens}")
    check_output(args.json, "--json")
    source = load_model(args.model, device=args.device)
    layers = parse_layers(args.layers, source.n_layers)
    target = maps = None
    if args.target_model is not None:
        target = load_model(args.target_model, device=args.device)
        pairs = {layer: (args.target_layer if args.target_layer is not None
                         else round(layer * target.n_layers / source.n_layers)) for layer in layers}
        # enough aligned tokens for a well-posed fit (more than the source width), each text within context
        n_texts = 16 + 4 * max(source.adapter.d_model // 64, 1)
        chars = min(400, min(source.max_context, target.max_context) // 2)
        maps = fit_residual_maps(source, target, shared_texts(n_texts, chars), pairs)
    result = patchscope(source, args.prompt, position=args.position, layers=layers, target_prompt=args.target_prompt,
                        placeholder=args.placeholder, target_layer=args.target_layer, n_tokens=args.tokens,
                        target_lm=target, maps=maps)
    print(format_table(result))
    if args.json:
        write_json(args.json, result.to_dict())
    return 0
