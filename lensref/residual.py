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
    """States ``[L+1, B, T, d]`` (layer 0 = embeddings, layer L = pre-final-norm) and the model's logits ``[B, T, V]``."""

    states: torch.Tensor
    logits: torch.Tensor

    @property
    def n_layers(self) -> int:
        return self.states.shape[0] - 1


def _first_tensor(args, kwargs) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


@torch.no_grad()
def capture_residuals(lm: LoadedModel, input_ids: torch.Tensor) -> Residuals:
    """Run the model once on ``input_ids`` (``[T]`` or ``[B, T]``) and record the residual stream."""
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    input_ids = input_ids.to(lm.device)
    adapter = lm.adapter
    states: list[torch.Tensor | None] = [None] * (adapter.n_layers + 1)

    def recorder(index: int):
        def hook(module, args, kwargs):
            states[index] = _first_tensor(args, kwargs).detach()

        return hook

    modules = list(adapter.blocks) + [adapter.final_norm]
    handles = [m.register_forward_pre_hook(recorder(i), with_kwargs=True) for i, m in enumerate(modules)]
    try:
        logits = lm.model(input_ids=input_ids).logits
    finally:
        for handle in handles:
            handle.remove()
    return Residuals(states=torch.stack(states), logits=logits.detach())
