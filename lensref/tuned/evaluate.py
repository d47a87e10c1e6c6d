"""Held-out comparison of the logit lens and a tuned lens, layer by layer.

For every held-out token (position 1 .. T-2 of each chunk: the first has no context, the last has no next
token inside its chunk) and every layer, both lenses decode the residual state; we average
``KL(final || lens)`` (how far the lens is from the model's own prediction) and the cross-entropy of the lens's
prediction against the true next token (how good a language model the truncated network is).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from ..lens import Translator
from ..models import LoadedModel
from ..tables import layer_table
from ..unembed import Unembed
from .train import cache_states, kl_final_to_lens


@dataclass
class LensComparison:
    """Per-layer means over ``n_tokens`` held-out tokens; lists are indexed by layer 0..L (L = model output)."""

    model: str
    n_tokens: int
    kl_logit: list[float]
    kl_tuned: list[float]
    ce_logit: list[float]
    ce_tuned: list[float]

    @property
    def n_layers(self) -> int:
        """How many blocks the model has (the lists run over layers 0..n_layers)."""
        return len(self.kl_logit) - 1

    @property
    def model_ce(self) -> float:
        """The model's own cross-entropy on the same tokens (nats)."""
        return self.ce_logit[-1]

    def layers_where_tuned_not_better(self) -> list[int]:
        """Layers 0..L-1 where the tuned lens's held-out KL is not below the logit lens's (the lesson says: none)."""
        return [l for l in range(self.n_layers) if not self.kl_tuned[l] < self.kl_logit[l]]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``lensref tuned eval --json`` writes (with ``model_ce``)."""
        d = asdict(self)
        d["model_ce"] = self.model_ce
        return d

    def format_table(self) -> str:
        """One line per layer: held-out KL and cross-entropy of the logit lens and the tuned lens."""
        title = f"{self.model}: held-out means over {self.n_tokens} tokens (nats); layer {self.n_layers} = the model's output"
        header = f"{'layer':>5}  {'KL logit':>9}  {'KL tuned':>9}  {'CE logit':>9}  {'CE tuned':>9}"
        columns = (self.kl_logit, self.kl_tuned, self.ce_logit, self.ce_tuned)
        return "\n".join(
            layer_table(title, header, self.n_layers, lambda l: f"{l:>5}" + "".join(f"  {c[l]:9.3f}" for c in columns))
        )


@torch.no_grad()
def compare_lenses(
    lm: LoadedModel,
    chunks: torch.Tensor,
    translator: Translator,
    batch: int = 4,
    progress: bool = True,
) -> LensComparison:
    """Per-layer held-out KL(final || lens) and next-token cross-entropy, logit lens vs ``translator``."""
    L = lm.n_layers
    decode = Unembed.of(lm)
    kl = torch.zeros(2, L + 1, dtype=torch.float64)
    ce = torch.zeros(2, L + 1, dtype=torch.float64)
    count = 0
    for first in tqdm(range(0, len(chunks), batch), desc="evaluating", unit="batch", disable=not progress, leave=False):
        ids = chunks[first : first + batch]
        b, T = ids.shape
        states = cache_states(lm, ids, dtype=torch.float32, batch=b, progress=False)  # positions 1..T-1
        states = states.reshape(L + 1, b, T - 1, -1)[:, :, :-1].reshape(L + 1, b * (T - 2), -1).to(lm.device)
        labels = ids[:, 2:].reshape(-1).to(lm.device)
        final_logits = decode(states[L]).float()
        final_logp = torch.log_softmax(final_logits, dim=-1)
        final_ce = torch.nn.functional.cross_entropy(final_logits, labels, reduction="sum").double().cpu()
        ce[:, L] += final_ce
        for layer in range(L):
            for which, h in enumerate((states[layer], translator(layer, states[layer]))):
                logits = decode(h).float()
                kl[which, layer] += kl_final_to_lens(final_logp, logits).clamp_min(0).sum().double().cpu()
                ce[which, layer] += torch.nn.functional.cross_entropy(logits, labels, reduction="sum").double().cpu()
        count += labels.numel()
    kl /= count
    ce /= count
    return LensComparison(
        model=lm.name,
        n_tokens=count,
        kl_logit=kl[0].tolist(),
        kl_tuned=kl[1].tolist(),
        ce_logit=ce[0].tolist(),
        ce_tuned=ce[1].tolist(),
    )
