"""Affine maps between two models' residual spaces, fitted by least squares on text both models read.

A patchscope whose source and target models differ in width writes a source state into the target model
through such a map (:func:`lensref.patchscope.patchscope`'s ``maps``); the translator exercise fits the same
kind of map on cached states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .errors import LensError
from .indices import check_layer
from .models import LoadedModel
from .residual import capture_residuals
from .tokens import encode_prompt

__all__ = [
    "ResidualMap",
    "fit_affine",
    "aligned_positions",
    "paired_states",
    "fit_residual_maps",
    "fit_residual_map",
]


@dataclass
class ResidualMap:
    """An affine map ``x @ weight + bias`` from a source model's layer to a target model's layer.

    ``fit_error`` is the squared error on the fitting data relative to the trivial baseline that
    predicts the mean target state (so the baseline scores 1.0 and a perfect map 0.0).
    """

    weight: torch.Tensor  # [d_source, d_target]
    bias: torch.Tensor  # [d_target]
    source_layer: int
    target_layer: int
    n_fit: int
    fit_error: float

    def __call__(self, states: torch.Tensor) -> torch.Tensor:
        """Map source states ``[..., d_source]`` to target states ``[..., d_target]`` (computed in float64)."""
        return (states.double() @ self.weight.double() + self.bias.double()).to(states.dtype)

    def to_dict(self) -> dict[str, Any]:
        """The map's layers, fit size, fit error and shape as JSON data (not its weights)."""
        fields = ("source_layer", "target_layer", "n_fit", "fit_error")
        return {**{name: getattr(self, name) for name in fields}, "shape": list(self.weight.shape)}


def fit_affine(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Least-squares ``y ~ x @ W + b`` for ``x [N, d_in]``, ``y [N, d_out]``; returns ``(W, b, relative error)``."""
    n, d_in = x.shape
    if n < d_in + 1:
        raise LensError(
            f"fitting a residual map needs at least {d_in + 1} aligned tokens (the source width + 1); "
            f"got {n}: give more shared text"
        )
    x, y = x.double(), y.double()
    x_mean, y_mean = x.mean(0), y.mean(0)
    solution = torch.linalg.lstsq(x - x_mean, y - y_mean, driver="gelsd").solution  # centring fits the bias
    bias = y_mean - x_mean @ solution
    residual = (x @ solution + bias - y).pow(2).sum()
    baseline = (y - y_mean).pow(2).sum()
    return solution, bias, float(residual / baseline) if baseline > 0 else 0.0


def _prefix_ends(tokenizer: Any, ids: list[int]) -> list[str]:
    """The decoded text up to and including each token (used to pair tokens of two tokenizers)."""
    return [tokenizer.decode(ids[: i + 1]) for i in range(len(ids))]


def aligned_positions(
    source_lm: LoadedModel, target_lm: LoadedModel, text: str
) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
    """Token ids of ``text`` for both models and the position pairs where both end at the same character."""
    source_ids = encode_prompt(source_lm.tokenizer, text, source_lm.max_context)
    target_ids = encode_prompt(target_lm.tokenizer, text, target_lm.max_context)
    if source_ids.tolist() == target_ids.tolist():
        return source_ids, target_ids, [(i, i) for i in range(len(source_ids))]
    target_end = {prefix: j for j, prefix in enumerate(_prefix_ends(target_lm.tokenizer, target_ids.tolist()))}
    pairs = [
        (i, target_end[prefix])
        for i, prefix in enumerate(_prefix_ends(source_lm.tokenizer, source_ids.tolist()))
        if prefix in target_end
    ]
    return source_ids, target_ids, pairs


@torch.no_grad()
def paired_states(
    source_lm: LoadedModel, target_lm: LoadedModel, texts: list[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual states of both models at aligned tokens of ``texts``: ``[L_s+1, N, d_s]`` and ``[L_t+1, N, d_t]``."""
    if isinstance(texts, str) or not texts:
        raise LensError("give a list of shared texts to fit the residual map on")
    source_parts, target_parts = [], []
    for text in texts:
        source_ids, target_ids, pairs = aligned_positions(source_lm, target_lm, text)
        if not pairs:
            continue
        source_index = torch.tensor([i for i, _ in pairs])
        target_index = torch.tensor([j for _, j in pairs])
        source_parts.append(capture_residuals(source_lm, source_ids).states[:, 0, source_index].cpu())
        target_parts.append(capture_residuals(target_lm, target_ids).states[:, 0, target_index].cpu())
    if not source_parts:
        raise LensError("the two models' tokenizers share no token boundaries on the given texts")
    return torch.cat(source_parts, dim=1), torch.cat(target_parts, dim=1)


def fit_residual_maps(
    source_lm: LoadedModel, target_lm: LoadedModel, texts: list[str], layer_pairs: dict[int, int]
) -> dict[int, ResidualMap]:
    """One affine map per ``{source_layer: target_layer}`` pair, all fitted on one pass over ``texts``."""
    for source_layer, target_layer in layer_pairs.items():
        check_layer(source_layer, source_lm.n_layers, "source layer")
        check_layer(target_layer, target_lm.n_layers, "target layer")
    source, target = paired_states(source_lm, target_lm, texts)
    maps = {}
    for source_layer, target_layer in layer_pairs.items():
        weight, bias, error = fit_affine(source[source_layer], target[target_layer])
        maps[source_layer] = ResidualMap(
            weight.float(), bias.float(), source_layer, target_layer, source.shape[1], error
        )
    return maps


def fit_residual_map(
    source_lm: LoadedModel, target_lm: LoadedModel, texts: list[str], source_layer: int, target_layer: int
) -> ResidualMap:
    """A least-squares affine map from ``source_lm``'s layer to ``target_lm``'s layer, fitted on ``texts``."""
    return fit_residual_maps(source_lm, target_lm, texts, {source_layer: target_layer})[source_layer]
