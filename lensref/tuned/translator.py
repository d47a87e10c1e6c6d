"""The tuned lens's translators: one affine map per layer, applied before the final norm and unembedding.

Layer ``l`` (0 = embeddings, ..., ``L - 1``) gets ``h -> h @ W[l].T + b[l]``; layer ``L`` (the last block's
output) is already what the model decodes, so it is left alone. Initialised to ``W = I, b = 0`` the tuned
lens *is* the logit lens, exactly.
"""

from __future__ import annotations

import torch
from torch import nn


class TunedLens(nn.Module):
    """``n_layers`` affine translators of width ``d_model``. Call it as ``lens(layer, states [N, d])``: it is a
    :data:`lensref.lens.Translator`, so ``logit_lens(lm, prompt, translator=lens)`` reads through it."""

    def __init__(self, n_layers: int, d_model: int):
        super().__init__()
        self.n_layers = n_layers
        self.d_model = d_model
        self.weight = nn.Parameter(torch.eye(d_model).repeat(n_layers, 1, 1))  # [L, d_out, d_in]
        self.bias = nn.Parameter(torch.zeros(n_layers, d_model))  # [L, d]

    def translate(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        """Map residual states ``h [..., d]`` of ``layer`` towards the final layer's; identity at ``layer == n_layers``."""
        if not 0 <= layer <= self.n_layers:
            raise IndexError(f"layer {layer} is outside 0..{self.n_layers}")
        if layer == self.n_layers:
            return h
        w, b = self.weight[layer], self.bias[layer]
        return (h.to(w.dtype) @ w.T + b).to(h.dtype)

    def forward(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        """:meth:`translate`, so that the module can be called."""
        return self.translate(layer, h)

    @torch.no_grad()
    def reset_to_identity(self) -> None:
        """Every layer's map back to the identity (the logit lens)."""
        self.weight.copy_(torch.eye(self.d_model, device=self.weight.device).expand_as(self.weight))
        self.bias.zero_()

    def extra_repr(self) -> str:
        """The sizes, shown in the module's repr."""
        return f"n_layers={self.n_layers}, d_model={self.d_model}"
