"""Where each supported architecture keeps its parts.

The logit lens needs four things from a causal language model: the token
embedding, the list of transformer blocks, the final norm and the unembedding.
Their attribute paths differ between families, so one table says where they are.
Adding a family is one row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar, cast

import torch
from torch import nn

from .errors import LensError
from .unembed import Unembed


@dataclass(frozen=True)
class FamilySpec:
    """Attribute paths (dotted, from the top-level ``*ForCausalLM`` module)."""

    family: str
    model_types: tuple[str, ...]
    embed: str
    blocks: str
    final_norm: str
    unembed: str
    attn: str  # attention module inside one block
    mlp: str  # MLP module inside one block
    attn_out_proj: str  # output projection inside the attention module (heads -> d)


# One row per family, laid out as a table (the formatter would put every field on its own line).
# fmt: off
FAMILIES: tuple[FamilySpec, ...] = (
    FamilySpec("llama", ("llama", "mistral", "qwen2", "qwen3"), embed="model.embed_tokens", blocks="model.layers",
               final_norm="model.norm", unembed="lm_head", attn="self_attn", mlp="mlp", attn_out_proj="o_proj"),
    FamilySpec("gpt2", ("gpt2",), embed="transformer.wte", blocks="transformer.h",
               final_norm="transformer.ln_f", unembed="lm_head", attn="attn", mlp="mlp", attn_out_proj="c_proj"),
    FamilySpec("gpt_neox", ("gpt_neox",), embed="gpt_neox.embed_in", blocks="gpt_neox.layers",
               final_norm="gpt_neox.final_layer_norm", unembed="lm_head", attn="attention", mlp="mlp",
               attn_out_proj="dense"),
)
# fmt: on


def supported_families() -> list[str]:
    return [f.family for f in FAMILIES]


def _get(module: nn.Module, path: str) -> nn.Module:
    for part in path.split("."):
        module = getattr(module, part)
    return module


M = TypeVar("M", bound=nn.Module)


class _Part(Generic[M]):
    """A model part at the path its family's spec gives under the same name (``adapter.embed`` is the module at
    ``adapter.spec.embed``), looked up on every access so it always is the model's own module."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, adapter: Adapter | None, owner: type | None = None) -> M:
        if adapter is None:
            return self  # type: ignore[return-value]  # the descriptor itself, on the class
        return cast(M, _get(adapter.model, getattr(adapter.spec, self.name)))


@dataclass(frozen=True)
class Adapter:
    """The parts of one loaded model that the lens and its variants use."""

    spec: FamilySpec
    model: nn.Module

    @property
    def family(self) -> str:
        return self.spec.family

    embed = _Part[nn.Embedding]()
    blocks = _Part[nn.ModuleList]()
    final_norm = _Part[nn.Module]()
    unembed = _Part[nn.Linear]()  # weight [V, d] (GPT-2's and tied models' included), bias [V] or None

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @property
    def d_model(self) -> int:
        return self.embed.weight.shape[1]

    def attn(self, layer: int) -> nn.Module:
        return _get(self.blocks[layer], self.spec.attn)

    def mlp(self, layer: int) -> nn.Module:
        return _get(self.blocks[layer], self.spec.mlp)

    def attn_out_proj(self, layer: int) -> nn.Module:
        return _get(self.attn(layer), self.spec.attn_out_proj)

    def decode(self, resid: torch.Tensor) -> torch.Tensor:
        """Final norm + unembedding: the logit lens applied to residual states ``[..., d]`` (see :mod:`.unembed`)."""
        return Unembed.of(self)(resid)


def adapter_for(model: nn.Module) -> Adapter:
    """Find the row of :data:`FAMILIES` for ``model`` or fail in one line."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    for spec in FAMILIES:
        if model_type in spec.model_types:
            return Adapter(spec=spec, model=model)
    raise LensError(
        f"unsupported model {type(model).__name__} (model_type={model_type!r}); "
        f"supported families: {', '.join(supported_families())}"
    )
