"""Tokenizing prompts and single tokens, and showing tokens readably."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .errors import LensError

if TYPE_CHECKING:
    import torch  # only for annotations: showing tokens must not import torch

VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥"}


def show_token(text: str) -> str:
    """A token's text with spaces, newlines and tabs made visible (``" Paris"`` -> ``"␣Paris"``)."""
    return "".join(VISIBLE.get(ch, ch) for ch in text) if text else "∅"


def encode_prompt(tokenizer: Any, prompt: str, max_context: int | None = None) -> torch.Tensor:
    """Token ids ``[T]`` as the tokenizer makes them by default (SmolLM2 adds no BOS)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise LensError("the prompt is empty; give some text to read")
    ids: torch.Tensor = tokenizer(prompt, return_tensors="pt")["input_ids"][0]
    if max_context is not None and len(ids) > max_context:
        raise LensError(f"the prompt is {len(ids)} tokens long; this model reads at most {max_context}")
    return ids


def token_texts(tokenizer: Any, ids: Iterable[int] | torch.Tensor) -> list[str]:
    """Each id decoded on its own (so leading spaces show)."""
    return [tokenizer.decode([int(i)]) for i in ids]


def single_token_id(tokenizer: Any, text: str, role: str = "target") -> int:
    """The id of ``text`` if it is exactly one token, else a one-line error showing how it splits."""
    if not text:
        raise LensError(f"the {role} is empty; give one token, e.g. ' Paris' with its leading space")
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        pieces = " + ".join(repr(tokenizer.decode([i])) for i in ids)
        hint = ""
        if not text.startswith(" ") and len(tokenizer.encode(" " + text, add_special_tokens=False)) == 1:
            hint = f"; did you mean {' ' + text!r} with a leading space?"
        raise LensError(f"the {role} {text!r} is {len(ids)} tokens ({pieces}), not one{hint}")
    return int(ids[0])
