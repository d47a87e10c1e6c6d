"""Capturing the residual stream: the state entering each block, and the state entering the final norm.

Layer 0 is the embedding output (what block 0 reads); layer ``l`` is what block ``l`` reads, i.e. the
output of block ``l - 1``; layer ``L`` is the last block's output *before* the final norm. We record
these with forward pre-hooks instead of ``output_hidden_states``, whose last entry transformers has
already passed through the final norm (normalizing it again is the classic double-norm bug).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

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


def _first_tensor(args, kwargs) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


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

    def recorder(index: int, stop: bool):
        def hook(module, args, kwargs):
            states[index] = _first_tensor(args, kwargs).detach()
            if stop:
                raise _StopForward

        return hook

    modules = list(adapter.blocks) + [adapter.final_norm]
    last = len(modules) - 1
    handles = [m.register_forward_pre_hook(recorder(i, states_only and i == last), with_kwargs=True)
               for i, m in enumerate(modules)]
    logits = None
    try:
        logits = lm.model(input_ids=input_ids).logits.detach()
    except _StopForward:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return Residuals(states=torch.stack(states), logits=logits)
