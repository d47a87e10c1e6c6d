"""Capturing the residual stream: the state entering each block, and the state entering the final norm.

Layer 0 is the embedding output (what block 0 reads); layer ``l`` is what block ``l`` reads, i.e. the
output of block ``l - 1``; layer ``L`` is the last block's output *before* the final norm. We record
these with forward pre-hooks instead of ``output_hidden_states``, whose last entry transformers has
already passed through the final norm (normalizing it again is the classic double-norm bug).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .hooks import Hooks, PreHook, hidden_input, residual_site
from .models import LoadedModel


@dataclass
class Residuals:
    """States ``[L+1, B, T, d]`` (layer 0 = embeddings, layer L = pre-final-norm) and the model's logits ``[B, T, V]``
    (None when captured with ``states_only``)."""

    states: torch.Tensor
    logits: torch.Tensor | None

    @property
    def n_layers(self) -> int:
        return self.states.shape[0] - 1


class _StopForward(Exception):
    """Raised by the final-norm hook when the caller needs only the states, not the logits."""


@torch.no_grad()
def capture_residuals(lm: LoadedModel, input_ids: torch.Tensor, states_only: bool = False) -> Residuals:
    """Run the model once on ``input_ids`` (``[T]`` or ``[B, T]``) and record the residual stream.

    ``states_only`` stops the forward pass at the final norm (no vocabulary-wide logits are computed) and
    leaves ``logits`` as None.
    """
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    input_ids = input_ids.to(lm.device)
    adapter = lm.adapter
    states: list[torch.Tensor | None] = [None] * (adapter.n_layers + 1)

    def recorder(index: int, stop: bool) -> PreHook:
        def hook(module, args, kwargs):
            states[index] = hidden_input(args, kwargs).detach()
            if stop:
                raise _StopForward

        return hook

    L = adapter.n_layers
    logits = None
    with Hooks() as hooks:
        for layer in range(L + 1):
            hooks.pre(residual_site(adapter, layer), recorder(layer, states_only and layer == L))
        try:
            logits = lm.model(input_ids=input_ids).logits.detach()
        except _StopForward:
            pass
    return Residuals(states=torch.stack(states), logits=logits)  # type: ignore[arg-type]  # every entry is set
