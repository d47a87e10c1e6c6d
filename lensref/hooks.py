"""Hooks on the residual stream: where layer ``l`` is read, reading and replacing a module's input, and
capturing what each block writes.

Layers follow :mod:`lensref.residual`: layer 0 is the embedding output (what block 0 reads), layer ``l`` is what
block ``l`` reads, and layer ``L`` is the last block's output, i.e. the final norm's input. So the residual state
of layer ``l`` is the input of :func:`residual_site` ``(adapter, l)``: ``blocks[l]`` for ``l < L``, else the final
norm.

Every hook is attached through :class:`Hooks`, a context manager that removes all of them on the way out, even
when the forward pass raises (a hook left behind would silently change every later run of the model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from .errors import LensError
from .indices import check_layer

PreHook = Callable[[nn.Module, tuple, dict], Any]
PostHook = Callable[[nn.Module, tuple, Any], Any]


def residual_site(adapter: Any, layer: int) -> nn.Module:
    """The module whose input is the residual state of ``layer`` (0..L): ``blocks[layer]``, or the final norm
    for ``layer == L``."""
    check_layer(layer, adapter.n_layers)
    return adapter.blocks[layer] if layer < adapter.n_layers else adapter.final_norm


def hidden_input(args: tuple, kwargs: dict) -> torch.Tensor:
    """The hidden states a module was called with (positional, or the ``hidden_states`` keyword)."""
    return args[0] if args else kwargs["hidden_states"]


def with_hidden_input(args: tuple, kwargs: dict, hidden: torch.Tensor) -> tuple[tuple, dict]:
    """``(args, kwargs)`` with the hidden states replaced by ``hidden``: what a pre-hook returns to patch them."""
    if args:
        return (hidden, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": hidden}


def output_tensor(output: Any) -> torch.Tensor:
    """A module's main output: attention modules return ``(out, weights)``; MLPs and transformers-5 decoder
    layers return a tensor (taking ``output[0]`` of a tensor would silently pick batch row 0)."""
    return output[0] if isinstance(output, tuple) else output


class Hooks:
    """Forward hooks attached for the length of a ``with`` block and always removed after it::

    with Hooks() as hooks:
        hooks.pre(residual_site(adapter, 3), my_pre_hook)
        model(input_ids=ids)
    """

    def __init__(self) -> None:
        self._handles: list[RemovableHandle] = []

    def pre(self, module: nn.Module, hook: PreHook) -> None:
        """A forward pre-hook ``hook(module, args, kwargs)``; it may return ``(args, kwargs)`` to change the input."""
        self._handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))

    def post(self, module: nn.Module, hook: PostHook) -> None:
        """A forward hook ``hook(module, args, output)``."""
        self._handles.append(module.register_forward_hook(hook))

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()

    def __enter__(self) -> Hooks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


# --- what each block writes ------------------------------------------------------------------------------


@dataclass
class BlockWrites:
    """One forward pass of one prompt, split into what each part wrote to the residual stream.

    With a ``position`` every tensor is at that position (``embed [d]``, ``attn [L, d]``, ...); without one it
    keeps all positions (``embed [T, d]``, ``attn [L, T, d]``, ...). ``embed + attn.sum(0) + mlp.sum(0)`` is the
    final residual ``final`` (the final norm's input) on every supported family.
    """

    embed: torch.Tensor  # the embedding output (layer 0)
    attn: torch.Tensor  # [L, ...] each attention block's output
    mlp: torch.Tensor  # [L, ...] each MLP's output
    heads: torch.Tensor  # [L, ..., H * head_dim] each attention output projection's input: the heads, concatenated
    final: torch.Tensor  # the final residual: the final norm's input (layer L)
    logits: torch.Tensor  # [..., V] the model's own logits

    @property
    def n_layers(self) -> int:
        return int(self.attn.shape[0])


@torch.no_grad()
def capture_block_writes(lm: Any, input_ids: torch.Tensor, position: int | None = None) -> BlockWrites:
    """Run ``lm`` once on ``input_ids [T]`` recording the embedding, each attention block's and MLP's output, each
    attention output projection's input (the concatenated heads), the final residual and the logits, at
    ``position`` (an index into the prompt) or at every position (None)."""
    adapter = lm.adapter
    L = adapter.n_layers
    at = slice(None) if position is None else position
    found: dict[str, list[torch.Tensor | None]] = {
        "embed": [None],
        "final": [None],
        "attn": [None] * L,
        "mlp": [None] * L,
        "heads": [None] * L,
    }

    def record_input(key: str, index: int) -> PreHook:
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            found[key][index] = hidden_input(args, kwargs)[0, at].detach()

        return hook

    def record_output(key: str, index: int) -> PostHook:
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            found[key][index] = output_tensor(output)[0, at].detach()

        return hook

    with Hooks() as hooks:
        hooks.pre(residual_site(adapter, 0), record_input("embed", 0))
        hooks.pre(residual_site(adapter, L), record_input("final", 0))
        for layer in range(L):
            hooks.post(adapter.attn(layer), record_output("attn", layer))
            hooks.post(adapter.mlp(layer), record_output("mlp", layer))
            hooks.pre(adapter.attn_out_proj(layer), record_input("heads", layer))
        logits = lm.model(input_ids=input_ids[None].to(lm.device)).logits[0, at]
    missing = [key for key, values in found.items() if any(v is None for v in values)]
    if missing:
        raise LensError(f"could not capture {', '.join(missing)} for {lm.name}; is its architecture supported?")
    got = cast("dict[str, list[torch.Tensor]]", found)
    return BlockWrites(
        embed=got["embed"][0],
        attn=torch.stack(got["attn"]),
        mlp=torch.stack(got["mlp"]),
        heads=torch.stack(got["heads"]),
        final=got["final"][0],
        logits=logits,
    )
