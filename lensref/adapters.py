"""Where each supported architecture keeps its parts.

The logit lens needs four things from a causal language model: the token
embedding, the list of transformer blocks, the final norm and the unembedding.
Their attribute paths differ between families, so one table says where they are.
Adding a family is one row.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Generic, TypeVar, cast

import torch
from torch import nn

from .errors import LensError
from .unembed import Unembed

NORM_KINDS = ("rms", "rms1p", "layer")  # x * g / rms(x); the same with gain 1 + w (Gemma); centred, optional bias


@dataclass(frozen=True)
class FamilySpec:
    """Attribute paths (dotted, from the top-level ``*ForCausalLM`` module, or inside one block) and the few numbers
    that make a family's unembedding or residual writes differ from plain ``norm -> lm_head`` and ``x + f(x)``.

    Config keys (``logit_scale``, ``softcap``, ...) name an attribute of the model's config, read when the model is
    loaded, so one row serves every size of a family.
    """

    family: str
    model_types: tuple[str, ...]
    embed: str
    blocks: str
    final_norm: str
    unembed: str
    attn: str  # attention module inside one block
    mlp: str  # MLP module inside one block (a mixture of experts counts as one MLP)
    attn_out_proj: str  # output projection inside the attention module (heads -> d)
    # The input of this module inside a block is the residual after attention, before the MLP (the ``mid`` site);
    # None when attention and the MLP read the same input in parallel.
    mid: str | None = None
    parallel_flags: tuple[str, ...] = ()  # config flags that, when true, make the block parallel (no ``mid``)
    attn_write: str | None = None  # module whose output is what attention adds to the residual (default: attn)
    mlp_write: str | None = None  # module whose output is what the MLP adds (default: mlp)
    attn_post_norm: str | None = None  # a norm applied to attention's output inside the residual branch (OLMo 2)
    mlp_post_norm: str | None = None  # the same for the MLP
    write_multiplier: str | None = None  # config key: each branch's write is multiplied by it (Granite)
    logit_multiplier: str | None = None  # config key: logits = lm_head(norm(x)) * it (Cohere)
    logit_divisor: str | None = None  # config key: logits = lm_head(norm(x)) / it (Granite)
    softcap: str | None = None  # config key: logits = c * tanh(logits / c) when set (Gemma 2, some Gemma 3)
    norm: str = "rms"  # one of NORM_KINDS, for every norm of the family
    notes: str = ""  # what differs, for the README's table


# fmt: off
_LLAMA = FamilySpec("llama", ("llama", "mistral", "qwen2", "qwen3"), embed="model.embed_tokens", blocks="model.layers",
                    final_norm="model.norm", unembed="lm_head", attn="self_attn", mlp="mlp", attn_out_proj="o_proj",
                    mid="post_attention_layernorm")
_GEMMA2 = replace(_LLAMA, family="gemma2", model_types=("gemma2",), mid="pre_feedforward_layernorm",
                  attn_post_norm="post_attention_layernorm", mlp_post_norm="post_feedforward_layernorm",
                  softcap="final_logit_softcapping", norm="rms1p",
                  notes="norms before and after attention and the MLP; final logits soft-capped (tanh)")

# One row per family, laid out as a table (the formatter would put every field on its own line); families that
# share Llama's layout name only what differs.
FAMILIES: tuple[FamilySpec, ...] = (
    _LLAMA,
    FamilySpec("gpt2", ("gpt2",), embed="transformer.wte", blocks="transformer.h",
               final_norm="transformer.ln_f", unembed="lm_head", attn="attn", mlp="mlp", attn_out_proj="c_proj",
               mid="ln_2", norm="layer"),
    FamilySpec("gpt_neox", ("gpt_neox",), embed="gpt_neox.embed_in", blocks="gpt_neox.layers",
               final_norm="gpt_neox.final_layer_norm", unembed="lm_head", attn="attention", mlp="mlp",
               attn_out_proj="dense", mid="post_attention_layernorm", parallel_flags=("use_parallel_residual",),
               norm="layer", notes="attention and MLP in parallel when use_parallel_residual (the default)"),
    replace(_LLAMA, family="gemma", model_types=("gemma",), norm="rms1p",
            notes="embeddings scaled by sqrt(d); RMSNorm gain 1 + w"),
    _GEMMA2,
    replace(_GEMMA2, family="gemma3", model_types=("gemma3_text",),
            notes="as Gemma 2; logits soft-capped only if the config sets final_logit_softcapping"),
    replace(_LLAMA, family="cohere", model_types=("cohere",), mid=None, norm="layer", logit_multiplier="logit_scale",
            notes="attention and MLP in parallel; bias-free LayerNorm; logits times logit_scale"),
    replace(_LLAMA, family="granite", model_types=("granite",), write_multiplier="residual_multiplier",
            logit_divisor="logits_scaling",
            notes="embeddings times embedding_multiplier; writes times residual_multiplier; logits / logits_scaling"),
    replace(_LLAMA, family="phi3", model_types=("phi3",)),
    replace(_LLAMA, family="olmo2", model_types=("olmo2",), mid="mlp", attn_post_norm="post_attention_layernorm",
            mlp_post_norm="post_feedforward_layernorm", notes="norms after attention and the MLP, none before"),
    replace(_LLAMA, family="mixtral", model_types=("mixtral",), notes="MLP = mixture of experts (one DLA component)"),
    replace(_LLAMA, family="qwen2_moe", model_types=("qwen2_moe",),
            notes="MLP = mixture of experts + shared expert (one DLA component)"),
    FamilySpec("falcon", ("falcon",), embed="transformer.word_embeddings", blocks="transformer.h",
               final_norm="transformer.ln_f", unembed="lm_head", attn="self_attention", mlp="mlp",
               attn_out_proj="dense", mid="post_attention_layernorm",
               parallel_flags=("parallel_attn", "new_decoder_architecture"), norm="layer",
               notes="attention and MLP in parallel when parallel_attn (the default) or new_decoder_architecture"),
    FamilySpec("gptj", ("gptj",), embed="transformer.wte", blocks="transformer.h", final_norm="transformer.ln_f",
               unembed="lm_head", attn="attn", mlp="mlp", attn_out_proj="out_proj", norm="layer",
               notes="attention and MLP in parallel; unembedding bias"),
    FamilySpec("opt", ("opt",), embed="model.decoder.embed_tokens", blocks="model.decoder.layers",
               final_norm="model.decoder.final_layer_norm", unembed="lm_head", attn="self_attn", mlp="fc2",
               attn_out_proj="out_proj", mid="final_layer_norm", norm="layer",
               notes="learned positions added before block 0; the MLP's write is fc2's output"),
    FamilySpec("bloom", ("bloom",), embed="transformer.word_embeddings", blocks="transformer.h",
               final_norm="transformer.ln_f", unembed="lm_head", attn="self_attention", mlp="mlp",
               attn_out_proj="dense", mid="post_attention_layernorm", attn_write="self_attention.dense",
               mlp_write="mlp.dense_4h_to_h", norm="layer",
               notes="a norm on the embeddings; attention and MLP add the residual themselves"),
)
# fmt: on


def supported_families() -> list[str]:
    """The model families lensref reads (``llama``, ``gpt2``, ...), in the adapter table's order."""
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
        """The family's name in the adapter table."""
        return self.spec.family

    embed = _Part[nn.Embedding]()
    blocks = _Part[nn.ModuleList]()
    final_norm = _Part[nn.Module]()
    unembed = _Part[nn.Linear]()  # weight [V, d] (GPT-2's and tied models' included), bias [V] or None

    @property
    def n_layers(self) -> int:
        """How many transformer blocks the model has."""
        return len(self.blocks)

    @property
    def d_model(self) -> int:
        """The width of the residual stream."""
        return self.embed.weight.shape[1]

    def attn(self, layer: int) -> nn.Module:
        """Block ``layer``'s attention module."""
        return _get(self.blocks[layer], self.spec.attn)

    def mlp(self, layer: int) -> nn.Module:
        """Block ``layer``'s MLP module."""
        return _get(self.blocks[layer], self.spec.mlp)

    def attn_out_proj(self, layer: int) -> nn.Module:
        """Block ``layer``'s attention output projection (the linear map that writes the heads to the residual)."""
        return _get(self.attn(layer), self.spec.attn_out_proj)

    # --- what each branch adds to the residual, and the point between them --------------------------------------

    def _config(self, key: str | None, default: float | None) -> float | None:
        value = None if key is None else getattr(getattr(self.model, "config", None), key, None)
        return default if value is None else float(value)

    @property
    def write_multiplier(self) -> float:
        """Each branch adds ``multiplier * output`` to the residual (1 except Granite's ``residual_multiplier``)."""
        return cast(float, self._config(self.spec.write_multiplier, 1.0))

    def attn_post_norm(self, layer: int) -> nn.Module | None:
        """The norm applied to attention's output before it is added (OLMo 2, Gemma 2/3), else None."""
        path = self.spec.attn_post_norm
        return None if path is None else _get(self.blocks[layer], path)

    def attn_write(self, layer: int) -> nn.Module:
        """The module whose output, times :attr:`write_multiplier`, is what attention adds to the residual."""
        spec = self.spec
        return _get(self.blocks[layer], spec.attn_post_norm or spec.attn_write or spec.attn)

    def mlp_write(self, layer: int) -> nn.Module:
        """The module whose output, times :attr:`write_multiplier`, is what the MLP adds to the residual."""
        spec = self.spec
        return _get(self.blocks[layer], spec.mlp_post_norm or spec.mlp_write or spec.mlp)

    def mid_refusal(self) -> str | None:
        """Why this model's blocks have no point after attention and before the MLP (None when they have one)."""
        config = getattr(self.model, "config", None)
        flags = [flag for flag in self.spec.parallel_flags if getattr(config, flag, False)]
        if self.spec.mid is None or flags:
            why = f" ({flags[0]}=True)" if flags else ""
            return (
                f"site 'mid' needs a point between attention and the MLP, but {self.family}{why} runs them in "
                "parallel on the same input; use site 'pre' or 'post'"
            )
        return None

    def mid_input(self, layer: int) -> nn.Module:
        """The module inside ``blocks[layer]`` whose input is the residual after attention, before the MLP."""
        reason = self.mid_refusal()
        if reason:
            raise LensError(reason)
        return _get(self.blocks[layer], cast(str, self.spec.mid))

    # --- the unembedding's extra steps ---------------------------------------------------------------------------

    @property
    def logit_scale(self) -> float:
        """``logits = logit_scale * lm_head(norm(x))`` before any soft-cap (1 for most families)."""
        scale = cast(float, self._config(self.spec.logit_multiplier, 1.0))
        return scale / cast(float, self._config(self.spec.logit_divisor, 1.0))

    @property
    def softcap(self) -> float | None:
        """``c`` of the final soft-cap ``c * tanh(logits / c)``, or None."""
        return self._config(self.spec.softcap, None)

    def decode(self, resid: torch.Tensor) -> torch.Tensor:
        """Final norm + unembedding: the logit lens applied to residual states ``[..., d]`` (see :mod:`.unembed`)."""
        return Unembed.of(self)(resid)


def adapter_for(model: nn.Module) -> Adapter:
    """Find the row of :data:`FAMILIES` for ``model`` or fail in one line."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    for spec in FAMILIES:
        if model_type in spec.model_types:
            adapter = Adapter(spec=spec, model=model)
            if not isinstance(adapter.final_norm, nn.Module):
                raise LensError(
                    f"{type(model).__name__} has no final norm (a post-norm {spec.family} model, e.g. OPT-350m); "
                    "the lens needs the norm before the unembedding"
                )
            return adapter
    raise LensError(
        f"unsupported model {type(model).__name__} (model_type={model_type!r}); "
        f"supported families: {', '.join(supported_families())}"
    )


# --- what each family supports, for the README ----------------------------------------------------------------

FEATURES = ("lens", "tuned", "logit diff", "DLA", "patchscope", "`mid`")


def family_features(spec: FamilySpec) -> dict[str, str]:
    """What each feature does on ``spec``'s models, derived from the row alone: "yes", or when it is refused."""
    dla = "yes"
    if spec.softcap is not None:
        dla = f"refused if `{spec.softcap}` is set (a tanh of a sum is not a sum)"
    if spec.mid is None:
        mid = "no: attention and MLP in parallel"
    elif spec.parallel_flags:
        mid = "no when " + " or ".join(f"`{flag}`" for flag in spec.parallel_flags) + " (parallel)"
    else:
        mid = "yes"
    return dict(zip(FEATURES, ("yes", "yes", "yes", dla, "yes", mid), strict=True))


def families_table() -> str:
    """The README's table of families x features, one row per :data:`FAMILIES` entry (tests/test_readme_families.py
    checks the README holds exactly this)."""
    head = ["family", "transformers `model_type`", *FEATURES, "what differs"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for spec in FAMILIES:
        cells = [spec.family, ", ".join(f"`{t}`" for t in spec.model_types), *family_features(spec).values()]
        lines.append("| " + " | ".join([*cells, spec.notes or "plain pre-norm blocks"]) + " |")
    return "\n".join(lines)
