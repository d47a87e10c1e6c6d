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


def norm_kind(norm: nn.Module, kind: str | None = None) -> str:
    """``kind`` if given, else ``"layer"`` for a ``nn.LayerNorm`` and ``"rms"`` for anything else."""
    if kind is not None:
        return kind
    return "layer" if isinstance(norm, nn.LayerNorm) else "rms"


@dataclass(frozen=True)
class FrozenNorm:
    """A norm linearised at one input ``x``: ``norm(y) ~= gain * centre(y) + bias`` (exact at ``y = x``), with
    ``centre`` subtracting the mean when ``centred`` and doing nothing otherwise."""

    gain: torch.Tensor  # [d] float64: the frozen scale times the norm's own gain
    bias: torch.Tensor | None  # [d] float64
    centred: bool
    scale: float  # 1 / sqrt(mean square or variance + eps) at x

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        """The linearised norm of ``y [..., d]`` without its bias (float64): what a component contributes."""
        y = y.double()
        if self.centred:
            y = y - y.mean(-1, keepdim=True)
        return y * self.gain


def freeze_norm(norm: nn.Module, x: torch.Tensor, kind: str | None = None, role: str = "final norm") -> FrozenNorm:
    """The norm ``norm`` (of ``kind``, see :data:`lensref.adapters.NORM_KINDS`) with its scale frozen at ``x [d]``.

    * ``rms``:   ``s w y``             with ``s = 1 / sqrt(mean(x^2) + eps)``
    * ``rms1p``: ``s (1 + w) y``       (Gemma's RMSNorm)
    * ``layer``: ``s w (y - mean y) + b`` with ``s = 1 / sqrt(var(x) + eps)`` (nn.LayerNorm, Cohere's bias-free one)
    """
    kind = norm_kind(norm, kind)
    x = x.double()
    weight = getattr(norm, "weight", None)
    w = torch.ones_like(x) if weight is None else weight.double() + (1.0 if kind == "rms1p" else 0.0)
    eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", None))
    bias = getattr(norm, "bias", None)
    if eps is None or (bias is not None and kind != "layer"):
        raise LensError(f"unsupported {role} {type(norm).__name__} for direct logit attribution")
    if kind == "layer":
        scale = 1.0 / torch.sqrt(x.var(unbiased=False) + eps)
    else:
        scale = 1.0 / torch.sqrt(x.pow(2).mean() + eps)
    return FrozenNorm(
        gain=scale * w, bias=None if bias is None else bias.double(), centred=kind == "layer", scale=float(scale)
    )


def frozen_norm_direction(
    norm: nn.Module, final_resid: torch.Tensor, direction: torch.Tensor, kind: str | None = None
) -> tuple[torch.Tensor, float, float]:
    """The final norm linearised at ``final_resid [d]``, composed with an unembedding ``direction [d]``.

    Returns ``(v, constant, scale)``: a component ``c`` contributes ``c @ v``, and ``final_resid @ v + constant``
    is the exact value of ``norm(final_resid) @ direction`` (no unembedding bias: :meth:`Unembed.frozen_direction`
    adds it).

    * RMSNorm:   ``(s w x) . u``                  with ``s = 1 / sqrt(mean(x_final^2) + eps)`` (``1 + w`` for Gemma)
    * LayerNorm: ``(s w (x - mean x)) . u + b . u`` with ``s = 1 / sqrt(var(x_final) + eps)``; centring is a
      symmetric projection, so it moves onto ``v`` (``v`` is centred).
    """
    frozen = freeze_norm(norm, final_resid, kind)
    u = direction.double()
    v = frozen.gain * u
    if frozen.centred:
        v = v - v.mean()  # (x - mean x) . a == x . (a - mean a)
    constant = 0.0 if frozen.bias is None else float(frozen.bias @ u)
    return v, constant, frozen.scale


@dataclass(frozen=True)
class Unembed:
    """A model's final norm and unembedding (``weight [V, d]``, optional ``bias [V]``): ``Unembed.of(lm)(h)``.

    Some families change the logits after the unembedding; those steps live here, once, and every form below
    applies them: ``scale`` multiplies the logits (Cohere's ``logit_scale``, Granite's ``1 / logits_scaling``),
    then ``softcap`` ``c`` squashes them to ``c * tanh(z / c)`` (Gemma 2). ``norm_kind`` tells the attribution
    how the norm computes (see :func:`freeze_norm`); the norm module itself always does the decoding.
    """

    norm: nn.Module
    linear: nn.Module
    scale: float = 1.0
    softcap: float | None = None
    norm_kind: str | None = None  # None: inferred from the module

    @classmethod
    def of(cls, model: Any) -> Unembed:
        """The unembedding of a :class:`~lensref.models.LoadedModel` or an :class:`~lensref.adapters.Adapter`."""
        adapter = getattr(model, "adapter", model)
        return cls(
            norm=adapter.final_norm,
            linear=adapter.unembed,
            scale=getattr(adapter, "logit_scale", 1.0),
            softcap=getattr(adapter, "softcap", None),
            norm_kind=getattr(getattr(adapter, "spec", None), "norm", None),
        )

    @property
    def linear_in_normed(self) -> bool:
        """Whether the logits are a linear (affine) function of the normed state: False once soft-capped."""
        return self.softcap is None

    def finish(self, logits: torch.Tensor) -> torch.Tensor:
        """The steps after the unembedding (scale, then soft-cap) on logits ``[..., k]``, out of place."""
        if self.scale != 1.0:
            logits = logits * self.scale
        if self.softcap is not None:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    def _finish_(self, logits: torch.Tensor) -> torch.Tensor:
        """:meth:`finish` in place (the readout's buffer)."""
        if self.scale != 1.0:
            logits.mul_(self.scale)
        if self.softcap is not None:
            logits.div_(self.softcap).tanh_().mul_(self.softcap)
        return logits

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
        """How many tokens the unembedding scores."""
        return int(self.weight.shape[0])

    @property
    def d_model(self) -> int:
        """The width of the states it decodes."""
        return int(self.weight.shape[1])

    # --- decoding ------------------------------------------------------------------------------------------

    def __call__(self, resid: torch.Tensor) -> torch.Tensor:
        """Full logits ``[..., V]`` of residual states ``[..., d]``: the final norm, the unembedding, :meth:`finish`."""
        return self.finish(self.linear(self.norm(resid)))

    def normalize(self, resid: torch.Tensor) -> torch.Tensor:
        """The final norm alone (the readout runs it once, then decodes in blocks)."""
        normed: torch.Tensor = self.norm(resid)
        return normed

    def unembed_normed(self, normed: torch.Tensor) -> torch.Tensor:
        """The unembedding alone, for states that are already normed (e.g. transformers' last hidden state)."""
        return self.finish(self.linear(normed))

    def token_logits(self, resid: torch.Tensor, ids: list[int]) -> torch.Tensor:
        """Float32 logits ``[..., len(ids)]`` of the tokens ``ids`` only: one ``[d, k]`` product, not ``[d, V]``."""
        logits = self.norm(resid) @ self.weight[ids].T
        if self.bias is not None:
            logits = logits + self.bias[ids]
        return self.finish(logits).float()

    def logits_into(self, normed: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Logits of already-normed states ``[n, d]`` written into ``out [n, V]`` (no allocation when the dtypes
        agree): the readout's blocked matmul. States of another dtype than the unembedding are cast to it first, as
        the model itself would hold them."""
        weight, bias = self.weight, self.bias
        if weight.dtype == out.dtype == normed.dtype:
            if bias is None:
                return self._finish_(torch.mm(normed, weight.t(), out=out))
            return self._finish_(torch.addmm(bias, normed, weight.t(), out=out))
        return out.copy_(self.unembed_normed(normed.to(weight.dtype)))

    def expected_row(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """For distributions ``p [n, V]``: ``p @ W`` (the expected unembedding vector) and ``p @ b`` (or None), in
        float64, both times :attr:`scale`, so that ``normed @ w + b`` is ``p . logits`` when the logits are
        :attr:`linear_in_normed` (the readout's KL shortcut; soft-capped logits need their own pass).

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
        if self.scale != 1.0:
            w *= self.scale
            b = None if b is None else b * self.scale
        return w, b

    # --- attribution ----------------------------------------------------------------------------------------

    def frozen_direction(self, final_resid: torch.Tensor, target_id: int, distractor_id: int) -> FrozenDirection:
        """``logit(target) - logit(distractor)`` linearised at ``final_resid [d]`` (the norm's scale frozen there),
        the unembedding bias included in the constant, all times :attr:`scale`. Soft-capped logits are refused: a
        ``tanh`` of the sum is not a sum of per-component terms."""
        if self.softcap is not None:
            raise LensError(
                f"direct logit attribution needs logits linear in the residual, but this model soft-caps them "
                f"(c * tanh(z / c), c = {self.softcap:g}): the parts would not add up to the logit difference"
            )
        direction = self.weight[target_id] - self.weight[distractor_id]
        v, constant, scale = frozen_norm_direction(self.norm, final_resid, direction, self.norm_kind)
        if self.bias is not None:
            constant += float(self.bias[target_id].double() - self.bias[distractor_id].double())
        return FrozenDirection(v=v * self.scale, constant=constant * self.scale, scale=scale)
