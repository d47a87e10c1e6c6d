"""Capturing the residual stream: the state entering each block, and the state entering the final norm.

Layer 0 is the embedding output (what block 0 reads); layer ``l`` is what block ``l`` reads, i.e. the
output of block ``l - 1``; layer ``L`` is the last block's output *before* the final norm. We record
these with forward pre-hooks instead of ``output_hidden_states``, whose last entry transformers has
already passed through the final norm (normalizing it again is the classic double-norm bug).

``site`` moves rows ``0..L-1`` inside their block (see :mod:`lensref.hooks`): ``mid`` reads block ``l`` after
attention and before the MLP, ``post`` reads its output; row ``L`` is the final norm's input at every site.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .hooks import Hooks, read_site
from .models import LoadedModel


@dataclass
class Residuals:
    """States ``[L+1, B, T, d]`` (layer 0 = embeddings, layer L = pre-final-norm) and the model's logits ``[B, T, V]``
    (None when captured with ``states_only``); ``site`` says where inside each block rows ``0..L-1`` were read."""

    states: torch.Tensor
    logits: torch.Tensor | None
    site: str = "pre"

    @property
    def n_layers(self) -> int:
        """How many blocks were read (the states hold ``n_layers + 1`` rows)."""
        return self.states.shape[0] - 1


class _StopForward(Exception):
    """Raised by the final-norm hook when the caller needs only the states, not the logits."""


@torch.no_grad()
def capture_residuals(
    lm: LoadedModel, input_ids: torch.Tensor, states_only: bool = False, site: str = "pre"
) -> Residuals:
    """Run the model once on ``input_ids`` (``[T]`` or ``[B, T]``) and record the residual stream at ``site``.

    ``states_only`` stops the forward pass at the final norm (no vocabulary-wide logits are computed) and
    leaves ``logits`` as None.
    """
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    input_ids = input_ids.to(lm.device)
    adapter = lm.adapter
    states: list[torch.Tensor | None] = [None] * (adapter.n_layers + 1)

    def recorder(index: int, stop: bool) -> Callable[[torch.Tensor], None]:
        def record(state: torch.Tensor) -> None:
            # OPT's MLP half works on [B * T, d]: every state is put back in the prompt's [B, T, d]
            states[index] = state.reshape(*input_ids.shape, state.shape[-1]).detach()
            if stop:
                raise _StopForward

        return record

    L = adapter.n_layers
    logits = None
    with Hooks() as hooks:
        for layer in range(L + 1):
            read_site(hooks, adapter, layer, site, recorder(layer, states_only and layer == L))
        try:
            logits = lm.model(input_ids=input_ids).logits.detach()
        except _StopForward:
            pass
    return Residuals(states=torch.stack(states), logits=logits, site=site)  # type: ignore[arg-type]  # all set
