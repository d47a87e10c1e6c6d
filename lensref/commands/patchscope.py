"""``lensref patchscope PROMPT``: read one hidden state per layer by patching it into the identity prompt."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import add_output_options, add_prompt_command, check_options, load_model, write_outputs


def register(sub: Any) -> None:
    """Add the ``patchscope`` subcommand to ``sub`` (the CLI's subparsers)."""
    p = add_prompt_command(
        sub, "patchscope", "patch a hidden state into a target prompt and let the model say what it is"
    )
    p.add_argument("--position", type=int, default=-1, help="source position to read (default -1, the last token)")
    p.add_argument("--layers", default=None, help="source layers, e.g. 0,5,10-15 (default all)")
    p.add_argument(
        "--target-prompt",
        default=None,
        help="prompt to patch into (default: the few-shot identity prompt 'cat -> cat ... ? ->')",
    )
    p.add_argument("--placeholder", default=None, help="the token of the target prompt to overwrite (default ?)")
    p.add_argument(
        "--target-layer", type=int, default=None, help="patch every state in at this layer (default: the same layer)"
    )
    p.add_argument("--tokens", type=int, default=None, help="tokens to generate (default 4)")
    p.add_argument(
        "--target-model",
        default=None,
        help="read with another model; an affine map per layer is fitted on CPython's docs first",
    )
    add_output_options(p, json="write the readouts as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the prompt's state through the identity prompt at each layer; print the table, write the outputs."""
    # imported here, not at the top: building the parser (`lensref quiz ...`, `--help`) must not import torch
    from ..corpus import prose_windows
    from ..indices import parse_layers
    from ..patchscope import DEFAULT_NEW_TOKENS, IDENTITY_PROMPT, PLACEHOLDER, patchscope
    from ..residual_map import fit_residual_maps

    defaults = {"target_prompt": IDENTITY_PROMPT, "placeholder": PLACEHOLDER, "tokens": DEFAULT_NEW_TOKENS}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    check_options(args, "tokens")
    source = load_model(args.model, device=args.device)
    layers = parse_layers(args.layers, source.n_layers)
    target = maps = None
    if args.target_model is not None:
        target = load_model(args.target_model, device=args.device)
        pairs = {
            layer: (
                args.target_layer if args.target_layer is not None else round(layer * target.n_layers / source.n_layers)
            )
            for layer in layers
        }
        # enough aligned tokens for a well-posed fit (more than the source width), each text within context
        n_texts = 16 + 4 * max(source.adapter.d_model // 64, 1)
        chars = min(400, min(source.max_context, target.max_context) // 2)
        maps = fit_residual_maps(source, target, prose_windows(n_texts, chars), pairs)
    result = patchscope(
        source,
        args.prompt,
        position=args.position,
        layers=layers,
        target_prompt=args.target_prompt,
        placeholder=args.placeholder,
        target_layer=args.target_layer,
        n_tokens=args.tokens,
        target_lm=target,
        maps=maps,
    )
    print(result.format_table())
    write_outputs(args, result.to_dict())
    return 0
