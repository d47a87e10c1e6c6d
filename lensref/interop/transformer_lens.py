"""TransformerLens: a ``TransformerBridge`` (TransformerLens 4) read on the transformers model it wraps.

A bridge keeps the transformers model it was booted with (``bridge.original_model``) and runs it with its own hook
points around the modules; lensref hooks the same modules, so the states it reads are the bridge's
``blocks.{l}.hook_resid_pre`` / ``hook_resid_mid`` / ``hook_resid_post``. Two things are refused in one line:
a bridge in compatibility mode (it runs folded, re-centred weights its original model does not hold) and
TransformerLens 3's ``HookedTransformer`` (its own re-implementation, with weights folded at load time; TransformerLens
4 removed it).
"""

from __future__ import annotations

from typing import Any

from ..errors import LensError
from ..models import LoadedModel
from .transformers import find_tokenizer, wrap


def from_transformer_lens(model: Any, tokenizer: Any = None) -> LoadedModel:
    """A TransformerLens ``HookedTransformer`` or ``TransformerBridge`` as a :class:`~lensref.models.LoadedModel`."""
    name = type(model).__name__
    if name == "HookedTransformer":
        raise LensError(
            "a HookedTransformer (TransformerLens 3) holds re-implemented, folded weights, not a transformers model; "
            "boot the model as a TransformerBridge (TransformerLens 4) or pass the transformers model itself"
        )
    hf_model = getattr(model, "original_model", None)
    if hf_model is None:
        raise LensError(f"cannot read a TransformerLens {name}: only a TransformerBridge wraps a transformers model")
    if getattr(model, "compatibility_mode", False):
        raise LensError(
            "this TransformerBridge is in compatibility mode: it runs folded, re-centred weights that its transformers "
            "model does not hold; read the bridge before enable_compatibility_mode()"
        )
    found = find_tokenizer(hf_model, tokenizer if tokenizer is not None else getattr(model, "tokenizer", None), name)
    return wrap(hf_model, found)
