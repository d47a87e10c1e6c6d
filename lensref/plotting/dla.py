"""Direct logit attribution: a bar chart of the largest contributors and a per-head heatmap."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..dla import DLAResult
from ..tokens import show_token

KIND_COLOURS = {"embed": "tab:grey", "attn": "tab:orange", "mlp": "tab:green", "constant": "black"}
# Bars differ by hatching too, so attention and MLP stay apart without colour.
KIND_HATCHES = {"embed": "", "attn": "//", "mlp": "..", "constant": "xx"}


def plot_dla(result: DLAResult, top: int = 15, title: str | None = None, path: str | None = None) -> Figure:
    """Top: the ``top`` components by size (attention blocks orange and hatched, MLPs green and dotted),
    signed. Bottom: every head's contribution, heads across, layers up. Returns the figure.

    The title counts the embedding, attention blocks and MLPs; the constant term (the final norm's and the
    unembedding's biases) is named separately, since it is not a component of the residual stream."""
    parts = result.top(top)[::-1]
    n_heads = result.n_heads
    fig, (bars, heat) = plt.subplots(
        2,
        1,
        figsize=(7.5, 4.2 + 0.24 * len(parts) + 0.14 * result.heads.shape[0]),
        gridspec_kw={"height_ratios": [0.24 * len(parts) + 0.8, 0.14 * result.heads.shape[0] + 0.8]},
    )
    values = [p.value for p in parts]
    bars.barh(
        range(len(parts)),
        values,
        color=[KIND_COLOURS.get(p.kind, "tab:blue") for p in parts],
        hatch=None,
        edgecolor="black",
        linewidth=0.5,
    )
    for patch, p in zip(bars.patches, parts):
        patch.set_hatch(KIND_HATCHES.get(p.kind, ""))
    bars.set_yticks(range(len(parts)))
    bars.set_yticklabels([p.name for p in parts], fontsize=9)
    bars.axvline(0, color="grey", lw=0.8)
    bars.set_xlabel("contribution to the logit difference")
    n_components = len(result.components()) - 1  # embedding + attention blocks + MLPs, not the constant
    bars.set_title(
        f"largest {len(parts)} of {n_components} components (+ constant {result.constant:.2f}); "
        f"sum {result.total:.2f} = model {result.model_logit_diff:.2f}",
        fontsize=10,
    )

    heads = result.heads.numpy()
    limit = float(np.abs(heads).max()) or 1.0
    image = heat.imshow(heads, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit)
    heat.set_xlabel("head")
    heat.set_ylabel("layer")
    heat.set_xticks(range(n_heads))
    heat.tick_params(labelsize=9)
    heat.set_title("per-head contributions (red: for the target, blue: for the distractor)", fontsize=10)
    bar = fig.colorbar(image, ax=heat, fraction=0.04, pad=0.02)
    bar.ax.tick_params(labelsize=9)
    fig.suptitle(
        title
        or (
            f"{result.model}: direct logit attribution of {show_token(result.target)} − "
            f"{show_token(result.distractor)} after {show_token(result.tokens[result.position])!r}"
        ),
        fontsize=10,
    )
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig
