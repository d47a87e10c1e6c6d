"""The model's final norm and unembedding, as one object every lens and variant decodes through.

The logit lens, the tuned lens, the fast readout, the logit difference and direct logit attribution all
turn a residual state into logits the same way: the model's own final norm, then its unembedding (with its
bias, when it has one). :class:`Unembed` holds the two modules (not copies: a tied unembedding stays tied)
and offers each form the library needs:

- ``unembed(h)``: full logits ``[..., V]`` of residual states (the logit lens);
- :meth:`Unembed.token_logits`: the logits of a few token ids only (the logit difference);
- :meth:`Unembed.logits_into`: the blocked matmul of the readout, into a caller's buffer;
- :meth:`Unembed.expected_row`: ``p @ W`` and ``p @ b`` for distributions ``p`` (the readout's KL);
- :meth:`Unembed.frozen_direction`: the linear map a direct logit attribution uses, with the norm's scale
  frozen at one residual.

The unembedding bias is read in one place (:attr:`Unembed.bias`) and every method adds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from .errors import LensError

EXPECTATION_CHUNK = 1024  # vocabulary chunk for the float64-accumulated p @ W


@dataclass(frozen=True)
class FrozenDirection:
    """``logit(target) - logit(distractor)`` as a linear function of a residual component ``c``: ``c @ v``.

    ``final_resid @ v + constant`` is the model's exact logit difference at the residual the scale was frozen
    at; ``constant`` holds the final norm's bias and the unembedding bias (zero when there are none).
    """

    v: torch.Tensor  # [d], float64
    constant: float
    scale: float  # the frozen 1 / sqrt(mean square or variance + eps)


def frozen_norm_direction(
    norm: nn.Module, final_resid: torch.Tensor, direction: torch.Tensor
) -> tuple[torch.Tensor, float, float]:
    """The final norm linearised at ``final_resid [d]``, composed with an unembedding ``direction [d]``.

    Returns ``(v, constant, scale)``: a component ``c`` contributes ``c @ v``, and ``final_resid @ v + constant``
    is the exact value of ``norm(final_resid) @ direction`` (no unembedding bias: :meth:`Unembed.frozen_direction`
    adds it).

    * RMSNorm:   ``(s w x) . u``                  with ``s = 1 / sqrt(mean(x_final^2) + eps)``
    * LayerNorm: ``(s w (x - mean x)) . u + b . u`` with ``s = 1 / sqrt(var(x_final) + eps)``; centring is a
      symmetric projection, so it moves onto ``v`` (``v`` is centred).
    """
    x = final_resid.double()
    u = direction.double()
    weight = getattr(norm, "weight", None)
    w = torch.ones_like(x) if weight is None else weight.double()
    if isinstance(norm, nn.LayerNorm):
        scale = 1.0 / torch.sqrt(x.var(unbiased=False) + norm.eps)
        v = scale * w * u
        v = v - v.mean()  # (x - mean x) . a == x . (a - mean a)
        bias = getattr(norm, "bias", None)
        constant = 0.0 if bias is None else float(bias.double() @ u)
    else:  # RMSNorm: Llama, Mistral, Qwen2
        eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", None))
        if eps is None or getattr(norm, "bias", None) is not None:
            raise LensError(f"unsupported final norm {type(norm).__name__} for direct logit attribution")
        scale = 1.0 / torch.sqrt(x.pow(2).mean() + eps)
        v = scale * w * u
        constant = 0.0
    return v, constant, float(scale)


@dataclass(frozen=True)
class Unembed:
    """A model's final norm and unembedding (``weight [V, d]``, optional ``bias [V]``): ``Unembed.of(lm)(h)``."""

    norm: nn.Module
    linear: nn.Module

    @classmethod
    def of(cls, model: Any) -> Unembed:
        """The unembedding of a :class:`~lensref.models.LoadedModel` or an :class:`~lensref.adapters.Adapter`."""
        adapter = getattr(model, "adapter", model)
        return cls(norm=adapter.final_norm, linear=adapter.unembed)

    # --- the parameters ----------------------------------------------------------------------------------

    @property
    def weight(self) -> torch.Tensor:
        """``[V, d]``: row ``v`` is token ``v``'s unembedding vector."""
        return cast(torch.Tensor, self.linear.weight)

    @property
    def bias(self) -> torch.Tensor | None:
        """``[V]`` or None: the one place the unembedding bias is read."""
        return cast("torch.Tensor | None", getattr(self.linear, "bias", None))

    @property
    def vocab_size(self) -> int:
        return int(self.weight.shape[0])

    @property
    def d_model(self) -> int:
        return int(self.weight.shape[1])

    # --- decoding ------------------------------------------------------------------------------------------

    def __call__(self, resid: torch.Tensor) -> torch.Tensor:
        """Full logits ``[..., V]`` of residual states ``[..., d]``: the final norm, then the unembedding."""
        return self.linear(self.norm(resid))

    def normalize(self, resid: torch.Tensor) -> torch.Tensor:
        """The final norm alone (the readout runs it once, then decodes in blocks)."""
        return self.norm(resid)

    def unembed_normed(self, normed: torch.Tensor) -> torch.Tensor:
        """The unembedding alone, for states that are already normed (e.g. transformers' last hidden state)."""
        return self.linear(normed)

    def token_logits(self, resid: torch.Tensor, ids: list[int]) -> torch.Tensor:
        """Float32 logits ``[..., len(ids)]`` of the tokens ``ids`` only: one ``[d, k]`` product, not ``[d, V]``."""
        logits = self.norm(resid) @ self.weight[ids].T
        if self.bias is not None:
            logits = logits + self.bias[ids]
        return logits.float()

    def logits_into(self, normed: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Logits of already-normed states ``[n, d]`` written into ``out [n, V]`` (no allocation when the dtypes
        agree): the readout's blocked matmul. States of another dtype than the unembedding are cast to it first, as
        the model itself would hold them."""
        weight, bias = self.weight, self.bias
        if weight.dtype == out.dtype == normed.dtype:
            if bias is None:
                return torch.mm(normed, weight.t(), out=out)
            return torch.addmm(bias, normed, weight.t(), out=out)
        return out.copy_(self.linear(normed.to(weight.dtype)))

    def expected_row(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """For distributions ``p [n, V]``: ``p @ W`` (the expected unembedding vector) and ``p @ b`` (or None), in
        float64.

        Partial products over chunks of the vocabulary are summed in float64: one float32 matmul over all 49,152
        terms is off by ~1e-3 nats in the KL it feeds; chunked it is as good as float64 maths.
        """
        weight, bias = self.weight, self.bias
        w = torch.zeros(p.shape[0], weight.shape[1], dtype=torch.float64, device=p.device)
        b = None if bias is None else torch.zeros(p.shape[0], dtype=torch.float64, device=p.device)
        for v0 in range(0, self.vocab_size, EXPECTATION_CHUNK):
            part = p[:, v0 : v0 + EXPECTATION_CHUNK]
            w += (part.to(weight.dtype) @ weight[v0 : v0 + EXPECTATION_CHUNK]).double()
            if b is not None and bias is not None:
                b += (part.to(bias.dtype) @ bias[v0 : v0 + EXPECTATION_CHUNK]).double()
        return w, b

    # --- attribution ----------------------------------------------------------------------------------------

    def frozen_direction(self, final_resid: torch.Tensor, target_id: int, distractor_id: int) -> FrozenDirection:
        """``logit(target) - logit(distractor)`` linearised at ``final_resid [d]`` (the norm's scale frozen there),
        the unembedding bias included in the constant."""
        direction = self.weight[target_id] - self.weight[distractor_id]
        v, constant, scale = frozen_norm_direction(self.norm, final_resid, direction)
        if self.bias is not None:
            constant += float(self.bias[target_id].double() - self.bias[distractor_id].double())
        return FrozenDirection(v=v, constant=constant, scale=scale)
