"""Logit difference through the lens: the target's logit minus a distractor's, at every layer and position.

A logit difference is the cleanest single number for "which of two answers does the model prefer":
it ignores everything else in the vocabulary and, unlike a probability, is linear in the unembedding.
We decode only the two rows of the unembedding we need (not the whole vocabulary), so the cost is
one final norm per state plus a ``[d, 2]`` product. At the last layer it is the model's own logit
difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .errors import LensError, warn_deprecated
from .indices import check_position, first_layer_holding
from .interop import as_loaded_model
from .models import LoadedModel
from .residual import capture_residuals
from .tables import layer_table
from .tokens import encode_prompt, show_token, single_token_id, token_texts
from .unembed import Unembed


@dataclass
class LogitDiffResult:
    """Lens logits of two tokens, indexed ``[layer, position]``; layer 0 = embeddings, layer L = output."""

    model: str
    tokens: list[str]
    token_ids: list[int]
    target: str
    distractor: str
    target_id: int
    distractor_id: int
    target_logit: torch.Tensor  # [L+1, T]
    distractor_logit: torch.Tensor  # [L+1, T]
    model_logit_diff: torch.Tensor  # [T], from the model's own logits (the JSON's "model_logit_diff")
    site: str = "pre"  # where inside block l row l was read (see lensref.hooks)

    @property
    def model_diff(self) -> torch.Tensor:
        """Deprecated name of :attr:`model_logit_diff`."""
        warn_deprecated("LogitDiffResult.model_diff", "LogitDiffResult.model_logit_diff")
        return self.model_logit_diff

    @property
    def diff(self) -> torch.Tensor:
        """``target_logit - distractor_logit``, ``[L+1, T]``."""
        return self.target_logit - self.distractor_logit

    @property
    def n_layers(self) -> int:
        """How many blocks the model has (rows are layers 0..n_layers)."""
        return self.target_logit.shape[0] - 1

    @property
    def n_positions(self) -> int:
        """How many tokens the prompt has."""
        return len(self.tokens)

    def at(self, position: int = -1) -> list[float]:
        """The logit difference at one position, one value per layer."""
        return self.diff[:, check_position(position, self.n_positions)].tolist()

    def first_positive_layer(self, position: int = -1) -> int | None:
        """The first layer from which the difference stays above zero through the last layer (None if never)."""
        return first_layer_holding([value > 0 for value in self.at(position)])

    def format_table(self, position: int = -1) -> str:
        """One line per layer at ``position``: the difference and both logits, then where it turns positive."""
        position = check_position(position, self.n_positions)
        target, distractor = show_token(self.target), show_token(self.distractor)
        title = f"{self.model}: logit {target} - logit {distractor} after {show_token(self.tokens[position])!r}"
        if self.site != "pre":
            title += f" (site {self.site})"
        header = f"{'layer':>5}  {'diff':>8}  {target:>10}  {distractor:>10}"
        diff, ours, theirs = (x[:, position].tolist() for x in (self.diff, self.target_logit, self.distractor_logit))
        lines = layer_table(
            title, header, self.n_layers, lambda l: f"{l:>5}  {diff[l]:8.3f}  {ours[l]:10.3f}  {theirs[l]:10.3f}"
        )
        first = self.first_positive_layer(position)
        lines.append(f"positive from layer {first} on" if first is not None else "not positive at the last layer")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``lensref logitdiff --json`` writes."""
        diff = self.diff
        layers = [
            {
                "layer": layer,
                "logit_diff": [float(v) for v in diff[layer]],
                "target_logit": [float(v) for v in self.target_logit[layer]],
                "distractor_logit": [float(v) for v in self.distractor_logit[layer]],
            }
            for layer in range(self.n_layers + 1)
        ]
        data = {
            "model": self.model,
            "tokens": self.tokens,
            "target": {"text": self.target, "id": self.target_id},
            "distractor": {"text": self.distractor, "id": self.distractor_id},
            "model_logit_diff": [float(v) for v in self.model_logit_diff],
            "first_positive_layer_last_position": self.first_positive_layer(-1),
            "layers": layers,
        }
        if self.site != "pre":  # the default's JSON stays as it was
            data["site"] = self.site
        return data


def token_pair(lm: LoadedModel, target: str, distractor: str) -> tuple[int, int]:
    """Ids of the target and distractor, each checked to be one token and different from the other."""
    target_id = single_token_id(lm.tokenizer, target, role="target")
    distractor_id = single_token_id(lm.tokenizer, distractor, role="distractor")
    if target_id == distractor_id:
        raise LensError(f"the target and distractor are the same token ({target!r}); pick two different tokens")
    return target_id, distractor_id


@torch.no_grad()
def logit_diff(lm: LoadedModel, prompt: str, target: str, distractor: str, site: str = "pre") -> LogitDiffResult:
    """The lens logit of ``target`` minus that of ``distractor`` at every layer and position of ``prompt``, each
    block read at ``site`` (``pre``, ``mid`` or ``post``: see :mod:`lensref.hooks`)."""
    lm = as_loaded_model(lm)
    target_id, distractor_id = token_pair(lm, target, distractor)
    ids = encode_prompt(lm.tokenizer, prompt, lm.max_context)
    res = capture_residuals(lm, ids, site=site)
    assert res.logits is not None  # captured with the logits
    pair = Unembed.of(lm).token_logits(res.states[:, 0], [target_id, distractor_id]).cpu()  # [L+1, T, 2]
    final = res.logits[0].float().cpu()
    return LogitDiffResult(
        model=lm.name,
        tokens=token_texts(lm.tokenizer, ids),
        token_ids=ids.tolist(),
        target=target,
        distractor=distractor,
        target_id=target_id,
        distractor_id=distractor_id,
        target_logit=pair[..., 0],
        distractor_logit=pair[..., 1],
        model_logit_diff=final[:, target_id] - final[:, distractor_id],
        site=site,
    )
