"""A transformers causal LM (``*ForCausalLM``) as a :class:`~lensref.models.LoadedModel`, on its own modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..adapters import adapter_for
from ..errors import LensError
from ..models import LoadedModel


def find_tokenizer(model: Any, tokenizer: Any, what: str) -> Any:
    """``tokenizer`` if given, else the one saved beside the model's local folder, else a one-line error."""
    if tokenizer is not None:
        return tokenizer
    folder = getattr(getattr(model, "config", None), "_name_or_path", "") or ""
    if folder and Path(folder).is_dir():
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(folder)
        except (OSError, ValueError):
            pass
    raise LensError(f"{what} carries no tokenizer; pass one: lensref.interop.as_loaded_model(model, tokenizer)")


def wrap(model: Any, tokenizer: Any, name: str | None = None) -> LoadedModel:
    """A :class:`LoadedModel` over ``model``'s own modules (nothing copied, nothing moved, its mode kept)."""
    adapter = adapter_for(model)
    if name is None:
        name = str(getattr(model.config, "_name_or_path", "") or type(model).__name__).rstrip("/").split("/")[-1]
    return LoadedModel(name=name, model=model, tokenizer=tokenizer, adapter=adapter)


def from_transformers(model: Any, tokenizer: Any = None) -> LoadedModel:
    """A transformers causal LM (and its tokenizer, found if not given) as a :class:`~lensref.models.LoadedModel`."""
    return wrap(model, find_tokenizer(model, tokenizer, type(model).__name__))
