"""The logit difference across layers: a line for one position and a layers x positions heatmap."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..indices import check_position
from ..logitdiff import LogitDiffResult
from ..tokens import show_token


def plot_logit_diff(result: LogitDiffResult, position: int = -1, title: str | None = None, path: str | None = None):
    """Left: ``logit(target) - logit(distractor)`` per layer at ``position`` (and both logits, thin).
    Right: the difference at every layer and position, red where the target leads. Returns the figure."""
    position = check_position(position, result.n_positions)
    layers = np.arange(result.n_layers + 1)
    diff = result.diff.numpy()
    # stacked, not side by side: each panel gets the full width of the lesson's column
    fig, (line, grid) = plt.subplots(2, 1, figsize=(7.5, 8.4), gridspec_kw={"height_ratios": [1, 1.15]})

    line.axhline(0, color="grey", lw=0.8)
    line.plot(layers, diff[:, position], marker="o", ms=4, color="black", label="difference")
    for logit, token, style, mark, colour in (
        (result.target_logit, result.target, "--", "^", "tab:red"),
        (result.distractor_logit, result.distractor, ":", "v", "tab:blue"),
    ):
        line.plot(
            layers,
            logit[:, position].numpy(),
            lw=1.2,
            ls=style,
            marker=mark,
            ms=3,
            color=colour,
            label=f"logit {show_token(token)}",
        )
    first = result.first_positive_layer(position)
    if first is not None:
        line.axvline(first, color="tab:red", ls=":", lw=1)
        line.annotate(
            f"positive from layer {first}",
            (first, 0),
            textcoords="offset points",
            xytext=(4, 6),
            fontsize=9,
            color="tab:red",
        )
    line.set_xlabel("layer (0 = embeddings)")
    line.set_ylabel("lens logit")
    line.set_title(f"at the last position (after {show_token(result.tokens[position])!r}), layer by layer", fontsize=10)
    line.legend(fontsize=9)

    limit = float(np.abs(diff).max()) or 1.0
    image = grid.imshow(diff, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit)
    grid.set_xticks(range(result.n_positions))
    grid.set_xticklabels([show_token(t)[:12] for t in result.tokens], rotation=40, ha="right", fontsize=9)
    grid.set_ylabel("layer")
    grid.set_xlabel("input token (␣ = a space)")
    grid.set_title("at every position: red where the target leads, blue where the distractor does", fontsize=10)
    fig.colorbar(image, ax=grid, fraction=0.04, pad=0.02).set_label("logit difference")
    fig.suptitle(
        title or f"{result.model}: logit {show_token(result.target)} − logit {show_token(result.distractor)}",
        fontsize=10,
    )
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig
