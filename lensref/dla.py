"""Direct logit attribution: which component wrote the logit difference?

The final residual at one position is a sum: the embedding plus every attention block's output plus
every MLP's output. The final norm is not linear, but once its scale is *frozen* at the value it takes on
the actual final residual, the map "residual -> logit(target) - logit(distractor)" is linear:

* RMSNorm:   f(x) = (s * w * x) . u                     with s = 1 / sqrt(mean(x_final^2) + eps)
* LayerNorm: f(x) = (s * w * (x - mean(x))) . u + b . u  with s = 1 / sqrt(var(x_final) + eps)

where ``u = W_U[target] - W_U[distractor]``. So each component ``c`` contributes ``c . v`` with one
effective direction ``v`` (for LayerNorm, ``v`` is centred, because centring is a symmetric projection),
and the constants (the LayerNorm bias, the unembedding bias) go into a separate term. Each attention
block's output splits further into heads: the output projection is linear in the concatenated head
outputs, so head ``h`` contributes ``z_h @ W_O[:, h]`` plus nothing else; the projection's bias is kept
as its own per-layer term. All the parts add up to the model's real logit difference.

Families differ only in where a write is read (:meth:`~lensref.adapters.Adapter.attn_write`): a mixture of
experts is one MLP component; Granite's writes carry its residual multiplier; OLMo 2 and Gemma 2/3 norm
attention's output inside the branch, so each head's vector goes through that norm with its scale frozen at the
attention output (again exact, as the heads sum to that output). Soft-capped logits (Gemma 2) are refused:
``c * tanh(z / c)`` of a sum is not a sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from .errors import LensError, warn_deprecated
from .hooks import capture_block_writes
from .indices import check_position
from .interop import as_loaded_model
from .logitdiff import token_pair
from .models import LoadedModel
from .tokens import encode_prompt, show_token, token_texts
from .unembed import Unembed, freeze_norm


@dataclass
class Contribution:
    """One term of the decomposition: ``kind`` is embed, attn, mlp, head, attn_bias or constant."""

    name: str
    kind: str
    value: float
    layer: int | None = None
    head: int | None = None


@dataclass
class DLAResult:
    """The logit difference at one position split into the components that wrote it.

    ``embed + attn.sum() + mlp.sum() + constant == model_logit_diff`` and, per layer,
    ``heads[l].sum() + attn_bias[l] == attn[l]``.
    """

    model: str
    tokens: list[str]
    position: int  # non-negative index into tokens
    target: str
    distractor: str
    target_id: int
    distractor_id: int
    embed: float
    attn: torch.Tensor  # [L]
    mlp: torch.Tensor  # [L]
    heads: torch.Tensor  # [L, H]
    attn_bias: torch.Tensor  # [L], the output projection's bias (zeros if it has none)
    constant: float  # final-norm bias and unembedding bias
    model_logit_diff: float  # the model's own logit difference at this position
    norm_scale: float  # the frozen 1 / sqrt(mean square or variance + eps) of the final residual
    reconstruction_error: float  # max |embed + sum of components - final residual|, a sanity check

    @property
    def logit_diff(self) -> float:
        """Deprecated name of :attr:`model_logit_diff`."""
        warn_deprecated("DLAResult.logit_diff", "DLAResult.model_logit_diff")
        return self.model_logit_diff

    @property
    def n_layers(self) -> int:
        """The number of blocks."""
        return self.attn.shape[0]

    @property
    def n_heads(self) -> int:
        """The number of attention heads per block."""
        return self.heads.shape[1]

    @property
    def total(self) -> float:
        """The sum of all components (equals ``model_logit_diff`` up to float rounding)."""
        return self.embed + float(self.attn.sum()) + float(self.mlp.sum()) + self.constant

    def components(self) -> list[Contribution]:
        """Embedding, every attention block and MLP, and the constant: these sum to ``model_logit_diff``."""
        parts = [Contribution("embed", "embed", self.embed)]
        for layer in range(self.n_layers):
            parts.append(Contribution(f"attn {layer}", "attn", float(self.attn[layer]), layer))
            parts.append(Contribution(f"mlp {layer}", "mlp", float(self.mlp[layer]), layer))
        parts.append(Contribution("constant", "constant", self.constant))
        return parts

    def head_contributions(self) -> list[Contribution]:
        """One contribution per attention head of every block (the attention bias terms apart)."""
        return [
            Contribution(f"L{layer}H{head}", "head", float(self.heads[layer, head]), layer, head)
            for layer in range(self.n_layers)
            for head in range(self.n_heads)
        ]

    def top(self, k: int = 10, heads: bool = False) -> list[Contribution]:
        """The ``k`` largest contributions by absolute value (blocks, or heads if ``heads``)."""
        parts = self.head_contributions() if heads else self.components()
        return sorted(parts, key=lambda c: abs(c.value), reverse=True)[:k]

    def format_table(self, top: int = 10) -> str:
        """The model's difference, the sum of the parts, and the ``top`` largest components and heads."""
        lines = [
            f"{self.model}: logit {show_token(self.target)} - logit {show_token(self.distractor)} "
            f"after {show_token(self.tokens[self.position])!r}",
            f"model: {self.model_logit_diff:.4f}   sum of components: {self.total:.4f}   "
            f"(embed {self.embed:.3f}, attention {float(self.attn.sum()):.3f}, MLPs {float(self.mlp.sum()):.3f}, "
            f"constant {self.constant:.3f})",
            "largest components:",
        ]
        lines += [f"  {c.name:>10}  {c.value:+8.3f}" for c in self.top(top)]
        lines.append("largest heads:")
        lines += [f"  {c.name:>10}  {c.value:+8.3f}" for c in self.top(top, heads=True)]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON data (tensors as lists)."""
        return {
            "model": self.model,
            "tokens": self.tokens,
            "position": self.position,
            "target": {"text": self.target, "id": self.target_id},
            "distractor": {"text": self.distractor, "id": self.distractor_id},
            "model_logit_diff": self.model_logit_diff,
            "logit_diff": self.model_logit_diff,  # deprecated key (the same number), removed in 0.3
            "sum_of_components": self.total,
            "norm_scale": self.norm_scale,
            "embed": self.embed,
            "attn": [float(v) for v in self.attn],
            "mlp": [float(v) for v in self.mlp],
            "heads": [[float(v) for v in row] for row in self.heads],
            "attn_bias": [float(v) for v in self.attn_bias],
            "constant": self.constant,
            "top": [c.__dict__ for c in self.top(10)],
            "top_heads": [c.__dict__ for c in self.top(10, heads=True)],
        }


def _n_heads(config: Any) -> int:
    for key in ("num_attention_heads", "n_head"):
        value = getattr(config, key, None)
        if value:
            return int(value)
    raise LensError(f"cannot find the number of attention heads in {type(config).__name__}")


def _head_weights(proj: nn.Module, n_heads: int) -> torch.Tensor:
    """The output projection as ``[H, head_dim, d]``: head ``h``'s slice ``z_h`` maps to ``z_h @ W[h]``."""
    weight: torch.Tensor
    proj = getattr(proj, "original_component", None) or proj  # a TransformerLens bridge wraps the model's own Linear
    if isinstance(proj, nn.Linear):
        weight = proj.weight.T  # Linear stores [out, in]
    elif type(proj).__name__ == "Conv1D":
        weight = cast(torch.Tensor, proj.weight)  # GPT-2's Conv1D stores [in, out]
    else:
        raise LensError(f"cannot split the attention output projection {type(proj).__name__} into heads")
    d_in, d_out = weight.shape
    if d_in % n_heads:
        raise LensError(f"the output projection's input width {d_in} does not split into {n_heads} heads")
    return weight.reshape(n_heads, d_in // n_heads, d_out)


@torch.no_grad()
def direct_logit_attribution(
    lm: LoadedModel, prompt: str, target: str, distractor: str, position: int = -1
) -> DLAResult:
    """Split the logit difference ``target - distractor`` at ``position`` into embedding, attention blocks,
    heads, MLPs and a constant, with the final norm's scale frozen at the actual final residual. ``lm`` may be a
    model of another tool (see :mod:`lensref.interop`)."""
    lm = as_loaded_model(lm)
    target_id, distractor_id = token_pair(lm, target, distractor)
    ids = encode_prompt(lm.tokenizer, prompt, lm.max_context)
    position = check_position(position, len(ids))
    adapter = lm.adapter
    writes = capture_block_writes(lm, ids, position)
    unembed = Unembed.of(lm)
    frozen = unembed.frozen_direction(writes.final, target_id, distractor_id)
    v = frozen.v

    attn = writes.attn.double()  # [L, d]
    mlp = writes.mlp.double()
    embed = writes.embed.double()
    n_heads = _n_heads(lm.model.config)
    heads, attn_bias = [], []
    for layer in range(adapter.n_layers):
        proj = adapter.attn_out_proj(layer)
        w_heads = _head_weights(proj, n_heads).double()  # [H, hd, d]
        z = writes.heads[layer].double().reshape(n_heads, -1)  # [H, hd]
        vectors = torch.einsum("hk,hkd->hd", z, w_heads)  # what each head adds to the projection's output
        proj_bias = getattr(proj, "bias", None)
        bias = torch.zeros_like(v) if proj_bias is None else proj_bias.double()
        post_norm = adapter.attn_post_norm(layer)
        if post_norm is not None and writes.attn_raw is not None:  # a norm inside the branch, frozen at its input
            branch = freeze_norm(post_norm, writes.attn_raw[layer], unembed.norm_kind, "attention output norm")
            vectors, bias = branch(vectors), branch(bias)
        vectors, bias = vectors * adapter.write_multiplier, bias * adapter.write_multiplier
        heads.append(vectors @ v)
        attn_bias.append(float(bias @ v))

    rebuilt = writes.components().double().sum(0)
    logits = writes.logits.double()
    return DLAResult(
        model=lm.name,
        tokens=token_texts(lm.tokenizer, ids),
        position=position,
        target=target,
        distractor=distractor,
        target_id=target_id,
        distractor_id=distractor_id,
        embed=float(embed @ v),
        attn=(attn @ v).float(),
        mlp=(mlp @ v).float(),
        heads=torch.stack(heads).float(),
        attn_bias=torch.tensor(attn_bias, dtype=torch.float32),
        constant=frozen.constant,
        model_logit_diff=float(logits[target_id] - logits[distractor_id]),
        norm_scale=frozen.scale,
        reconstruction_error=float((rebuilt - writes.final.double()).abs().max()),
    )
