"""Models from the tools people already use, read by lensref: one small module per tool.

Every lens function (``logit_lens``, ``logit_diff``, ``direct_logit_attribution``, ``patchscope``, the tuned
lens) takes a :class:`~lensref.models.LoadedModel`; :func:`as_loaded_model` turns what a user already holds into
one, on the same weights (no copy):

- a transformers causal LM (``*ForCausalLM``), with its tokenizer;
- a TransformerLens ``TransformerBridge`` (TransformerLens 4 wraps a transformers model; its older
  ``HookedTransformer`` is refused in one line);
- an nnsight ``LanguageModel`` (or ``TransformersModel``): nnsight also wraps a transformers model.

Each tool's package is imported only by its own module here, and only when such an object is passed.
"""

from __future__ import annotations

from typing import Any

from ..errors import LensError
from ..models import LoadedModel

SUPPORTED = (
    "a lensref LoadedModel, a transformers causal LM, a TransformerLens TransformerBridge or an nnsight LanguageModel"
)


def as_loaded_model(model: Any, tokenizer: Any = None) -> LoadedModel:
    """``model`` as a :class:`LoadedModel` sharing its modules (a ``LoadedModel`` is returned as it is).

    ``tokenizer`` is used when the object carries none (a bare transformers model, a bridge booted without one).
    """
    if isinstance(model, LoadedModel):
        return model
    package = type(model).__module__.split(".")[0]
    if package == "transformer_lens":
        from .transformer_lens import from_transformer_lens

        return from_transformer_lens(model, tokenizer)
    if package == "nnsight":
        from .nnsight import from_nnsight

        return from_nnsight(model, tokenizer)
    if hasattr(model, "config") and hasattr(model, "forward"):
        from .transformers import from_transformers

        return from_transformers(model, tokenizer)
    raise LensError(f"cannot read a {type(model).__name__}: pass {SUPPORTED}")


__all__ = ["SUPPORTED", "as_loaded_model"]
