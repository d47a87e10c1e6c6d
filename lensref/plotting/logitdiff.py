"""The logit difference across layers: a line for one position and a layers x positions heatmap."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..logitdiff import LogitDiffResult, check_position
from ..tokens import show_token


def plot_logit_diff(result: LogitDiffResult, position: int = -1, title: str | None = None, path: str | None = None):
    """Left: ``logit(target) - logit(distractor)`` per layer at ``position`` (and both logits, thin).
    Right: the difference at every layer and position, red where the target leads. Returns the figure."""
    position = check_position(position, result.n_positions)
    layers = np.arange(result.n_layers + 1)
    diff = result.diff.numpy()
    fig, (line, grid) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1.1, 1]})

    line.axhline(0, color="grey", lw=0.8)
    line.plot(layers, diff[:, position], marker="o", ms=3, color="black", label="difference")
    line.plot(layers, result.target_logit[:, position].numpy(), lw=1, color="tab:red",
              label=f"logit {show_token(result.target)}")
    line.plot(layers, result.distractor_logit[:, position].numpy(), lw=1, color="tab:blue",
              label=f"logit {show_token(result.distractor)}")
    first = result.first_positive_layer(position)
    if first is not None:
        line.axvline(first, color="tab:red", ls=":", lw=1)
        line.annotate(f"positive from layer {first}", (first, 0), textcoords="offset points", xytext=(4, 6),
                      fontsize=8, color="tab:red")
    line.set_xlabel("layer (0 = embeddings)")
    line.set_ylabel("lens logit")
    line.set_title(f"after {show_token(result.tokens[position])!r}", fontsize=9)
    line.legend(fontsize=8)

    limit = float(np.abs(diff).max()) or 1.0
    image = grid.imshow(diff, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit)
    grid.set_xticks(range(result.n_positions))
    grid.set_xticklabels([show_token(t)[:12] for t in result.tokens], rotation=40, ha="right", fontsize=8)
    grid.set_ylabel("layer")
    grid.set_xlabel("input token")
    fig.colorbar(image, ax=grid, fraction=0.04, pad=0.02).set_label("logit difference")
    fig.suptitle(title or f"{result.model}: logit {show_token(result.target)} − logit {show_token(result.distractor)}",
                 fontsize=10)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig
