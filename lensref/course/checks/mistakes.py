"""The named decoding mistakes, one table for every judge that tests for them.

A judge that receives something decoded from residual states (lens logits, a logit difference) rebuilds what each
mistake would have produced and, when the learner's answer matches one, names it in one line. The diagnosis is
the same wherever the mistake is found; the hint says what to do in that exercise's own terms.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from ...models import LoadedModel
from ._core import CheckFailed


@dataclass(frozen=True)
class DecodeMistake:
    """A wrong way to decode residual states: its one-line diagnosis and the logits it gives."""

    diagnosis: str
    logits: Callable[[LoadedModel, torch.Tensor], torch.Tensor]


FORGOT_FINAL_NORM = DecodeMistake("you forgot the final norm.", lambda lm, states: lm.adapter.unembed(states))
NORMALIZED_TWICE = DecodeMistake(
    "you normalized twice.",
    lambda lm, states: lm.adapter.unembed(lm.adapter.final_norm(lm.adapter.final_norm(states))),
)
DECODE_MISTAKES = (FORGOT_FINAL_NORM, NORMALIZED_TWICE)  # tried in this order


@torch.no_grad()
def raise_decode_mistake(
    name: str,
    lm: LoadedModel,
    states: torch.Tensor,
    matches: Callable[[torch.Tensor], bool],
    hints: Mapping[DecodeMistake, str],
) -> None:
    """Raise :class:`CheckFailed` naming the first mistake whose logits ``matches`` accepts, with its hint."""
    for mistake in DECODE_MISTAKES:
        if matches(mistake.logits(lm, states)):
            raise CheckFailed(name, mistake.diagnosis, hints[mistake])
