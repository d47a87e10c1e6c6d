"""Hooks on the residual stream: where layer ``l`` is read, reading and replacing a module's input, and
capturing what each block writes.

Inside a block there are three places to read (the ``site``): ``pre``, the state entering block ``l`` (the
default, and the only one above); ``mid``, after attention has added its write and before the MLP reads; ``post``,
the block's output (what block ``l + 1`` reads). Row ``l < L`` of a capture reads block ``l`` at that site, and
row ``L`` is always the final norm's input, so the last row stays the model's own output at every site (at
``post``, rows ``L - 1`` and ``L`` hold the same state). Parallel-attention blocks (GPT-J, Cohere, Falcon and
GPT-NeoX when configured so) have no ``mid``: :func:`check_site` refuses it in one line.

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

PreHook = Callable[[nn.Module, tuple[Any, ...], dict[str, Any]], Any]
PostHook = Callable[[nn.Module, tuple[Any, ...], Any], Any]


def residual_site(adapter: Any, layer: int) -> nn.Module:
    """The module whose input is the residual state of ``layer`` (0..L): ``blocks[layer]``, or the final norm
    for ``layer == L``."""
    check_layer(layer, adapter.n_layers)
    site: nn.Module = adapter.blocks[layer] if layer < adapter.n_layers else adapter.final_norm
    return site


SITES = ("pre", "mid", "post")


def check_site(adapter: Any, site: str) -> str:
    """``site`` if this model can be read there, else a one-line :class:`LensError` saying why."""
    if site not in SITES:
        raise LensError(f"unknown site {site!r}; use one of {', '.join(SITES)}")
    if site == "mid":
        reason = adapter.mid_refusal()
        if reason:
            raise LensError(reason)
    return site


def read_site(hooks: Hooks, adapter: Any, layer: int, site: str, record: Callable[[torch.Tensor], None]) -> None:
    """Attach a hook that calls ``record(state)`` with the residual state of row ``layer`` (0..L) at ``site``.

    The hook raises nothing itself; ``record`` may (e.g. to stop the forward pass early).
    """
    site = check_site(adapter, site)
    check_layer(layer, adapter.n_layers)
    if layer == adapter.n_layers or site == "pre":
        hooks.pre(residual_site(adapter, layer), lambda module, args, kwargs: record(hidden_input(args, kwargs)))
    elif site == "mid":
        hooks.pre(adapter.mid_input(layer), lambda module, args, kwargs: record(hidden_input(args, kwargs)))
    else:  # "post"
        hooks.post(adapter.blocks[layer], lambda module, args, output: record(output_tensor(output)))


def hidden_input(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor:
    """The hidden states a module was called with (positional, or the ``hidden_states`` keyword)."""
    hidden: torch.Tensor = args[0] if args else kwargs["hidden_states"]
    return hidden


def with_hidden_input(
    args: tuple[Any, ...], kwargs: dict[str, Any], hidden: torch.Tensor
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` with the hidden states replaced by ``hidden``: what a pre-hook returns to patch them."""
    if args:
        return (hidden, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": hidden}


def output_tensor(output: Any) -> torch.Tensor:
    """A module's main output: attention modules return ``(out, weights)``; MLPs and transformers-5 decoder
    layers return a tensor (taking ``output[0]`` of a tensor would silently pick batch row 0)."""
    main: torch.Tensor = output[0] if isinstance(output, tuple) else output
    return main


class Hooks:
    """Forward hooks attached for the length of a ``with`` block and always removed after it.

    Example::

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
        """Detach every hook attached so far."""
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
    # [L, ...] the attention modules' own outputs, before a norm inside the branch (OLMo 2, Gemma 2/3); else None
    attn_raw: torch.Tensor | None = None

    @property
    def n_layers(self) -> int:
        """The number of blocks."""
        return int(self.attn.shape[0])

    def components(self) -> torch.Tensor:
        """``[2L+1, ...]``: the embedding, then each block's attention write and MLP write in turn; they sum to
        ``final``."""
        parts = torch.stack([self.attn, self.mlp], dim=1).flatten(0, 1)
        return torch.cat([self.embed[None], parts])


def residual_deltas(states: torch.Tensor) -> torch.Tensor:
    """``[L+1, ...]`` from residual states ``[L+1, ...]``: layer 0 itself, then what each block added
    (``states[l + 1] - states[l]``); they sum to the last layer's state."""
    return torch.cat([states[:1], states[1:] - states[:-1]])


@torch.no_grad()
def capture_block_writes(lm: Any, input_ids: torch.Tensor, position: int | None = None) -> BlockWrites:
    """Run ``lm`` once on ``input_ids [T]`` recording the embedding, what each attention block and MLP adds to the
    residual (after a norm inside the branch and times the family's write multiplier, where it has them), each
    attention output projection's input (the concatenated heads), the final residual and the logits, at
    ``position`` (an index into the prompt) or at every position (None). A mixture of experts is one MLP."""
    adapter = lm.adapter
    L = adapter.n_layers
    at = slice(None) if position is None else position
    n_positions = input_ids.shape[-1]
    post_normed = adapter.attn_post_norm(0) is not None
    found: dict[str, list[torch.Tensor | None]] = {
        "embed": [None],
        "final": [None],
        "attn": [None] * L,
        "mlp": [None] * L,
        "heads": [None] * L,
        **({"attn_raw": [None] * L} if post_normed else {}),
    }

    def record_input(key: str, index: int) -> PreHook:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            found[key][index] = hidden_input(args, kwargs)[0, at].detach()

        return hook

    def record_output(key: str, index: int) -> PostHook:
        def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            # a copy: Falcon adds attention's output into the MLP's output tensor in place after this hook
            out = output_tensor(output)  # OPT's MLP works on [B * T, d]: put the prompt's positions back
            found[key][index] = out.reshape(1, n_positions, out.shape[-1])[0, at].detach().clone()

        return hook

    with Hooks() as hooks:
        hooks.pre(residual_site(adapter, 0), record_input("embed", 0))
        hooks.pre(residual_site(adapter, L), record_input("final", 0))
        for layer in range(L):
            hooks.post(adapter.attn_write(layer), record_output("attn", layer))
            hooks.post(adapter.mlp_write(layer), record_output("mlp", layer))
            hooks.pre(adapter.attn_out_proj(layer), record_input("heads", layer))
            if post_normed:
                hooks.post(adapter.attn(layer), record_output("attn_raw", layer))
        logits = lm.model(input_ids=input_ids[None].to(lm.device)).logits[0, at]
    missing = [key for key, values in found.items() if any(v is None for v in values)]
    if missing:
        raise LensError(f"could not capture {', '.join(missing)} for {lm.name}; is its architecture supported?")
    got = cast(dict[str, list[torch.Tensor]], found)  # every entry was filled
    m = adapter.write_multiplier
    return BlockWrites(
        embed=got["embed"][0],
        attn=torch.stack(got["attn"]) * m,
        mlp=torch.stack(got["mlp"]) * m,
        heads=torch.stack(got["heads"]),
        final=got["final"][0],
        logits=logits,
        attn_raw=torch.stack(got["attn_raw"]) if post_normed else None,
    )
