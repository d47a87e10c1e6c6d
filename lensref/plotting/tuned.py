"""Held-out KL(final || lens) and next-token cross-entropy per layer: logit lens vs tuned lens."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ..tuned.evaluate import LensComparison


def plot_tuned_comparison(result: LensComparison, path: str | None = None, title: str | None = None) -> Figure:
    """Two panels over layers 0..L: KL to the model's output (log scale, layers 0..L-1) and cross-entropy."""
    L = result.n_layers
    layers = list(range(L))
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.8))
    left.plot(layers, result.kl_logit[:L], marker="o", ms=3, ls="-", label="logit lens")
    left.plot(layers, result.kl_tuned[:L], marker="s", ms=3, ls="--", label="tuned lens")
    left.set_yscale("log")
    left.set_xlabel("layer (0 = embeddings)")
    left.set_ylabel("KL(final ‖ lens), nats")
    left.set_title("distance to the model's own prediction", fontsize=10)
    left.legend(fontsize=9)
    all_layers = list(range(L + 1))
    right.plot(all_layers, result.ce_logit, marker="o", ms=3, ls="-", label="logit lens")
    right.plot(all_layers, result.ce_tuned, marker="s", ms=3, ls="--", label="tuned lens")
    right.axhline(result.model_ce, color="grey", ls="--", lw=1, label=f"model output ({result.model_ce:.2f})")
    right.set_xlabel("layer (0 = embeddings)")
    right.set_ylabel("cross-entropy, nats")
    right.set_title("next-token loss of each layer's reading", fontsize=10)
    right.legend(fontsize=9)
    fig.suptitle(title or f"{result.model}: held-out text, {result.n_tokens} tokens", fontsize=11)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig
