"""nnsight: a ``LanguageModel`` (or ``TransformersModel``) read on the transformers model it wraps.

nnsight's envoys wrap a ``torch.nn.Module`` (``envoy._module``) without changing it; lensref hooks that module's
own blocks, so the states it reads are those of ``model.model.layers[l].input`` in an nnsight trace.
"""

from __future__ import annotations

from typing import Any

from ..errors import LensError
from ..models import LoadedModel
from .transformers import find_tokenizer, wrap


def from_nnsight(model: Any, tokenizer: Any = None) -> LoadedModel:
    """An nnsight ``LanguageModel`` as a :class:`~lensref.models.LoadedModel` on the same weights."""
    name = type(model).__name__
    try:
        hf_model = object.__getattribute__(model, "_module")  # an envoy forwards unknown names to the module
    except AttributeError:
        raise LensError(f"cannot read an nnsight {name}: it wraps no torch module") from None
    if not hasattr(hf_model, "config"):
        raise LensError(f"the nnsight {name} wraps a {type(hf_model).__name__}, not a transformers causal LM")
    found = find_tokenizer(hf_model, tokenizer if tokenizer is not None else getattr(model, "tokenizer", None), name)
    return wrap(hf_model, found)
