"""Direct logit attribution: a bar chart of the largest contributors and a per-head heatmap."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..dla import DLAResult
from ..tokens import show_token

KIND_COLOURS = {"embed": "tab:grey", "attn": "tab:orange", "mlp": "tab:green", "constant": "black"}


def plot_dla(result: DLAResult, top: int = 15, title: str | None = None, path: str | None = None):
    """Left: the ``top`` components by size (attention blocks orange, MLPs green), signed.
    Right: every head's contribution, layers down, heads across. Returns the figure."""
    parts = result.top(top)[::-1]
    fig, (bars, heat) = plt.subplots(1, 2, figsize=(12, max(4.0, 0.26 * len(parts) + 1.2)),
                                     gridspec_kw={"width_ratios": [1, 1]})
    values = [p.value for p in parts]
    bars.barh(range(len(parts)), values, color=[KIND_COLOURS.get(p.kind, "tab:blue") for p in parts])
    bars.set_yticks(range(len(parts)))
    bars.set_yticklabels([p.name for p in parts], fontsize=8)
    bars.axvline(0, color="grey", lw=0.8)
    bars.set_xlabel("contribution to the logit difference")
    bars.set_title(f"largest {len(parts)} of {len(result.components())} components "
                   f"(sum {result.total:.2f} = model {result.logit_diff:.2f})", fontsize=9)

    heads = result.heads.numpy()
    limit = float(np.abs(heads).max()) or 1.0
    image = heat.imshow(heads, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit)
    heat.set_xlabel("head")
    heat.set_ylabel("layer")
    heat.set_xticks(range(result.n_heads))
    heat.tick_params(labelsize=7)
    heat.set_title("per-head contributions", fontsize=9)
    fig.colorbar(image, ax=heat, fraction=0.04, pad=0.02)
    fig.suptitle(title or (f"{result.model}: direct logit attribution of {show_token(result.target)} − "
                           f"{show_token(result.distractor)} after {show_token(result.tokens[result.position])!r}"),
                 fontsize=10)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig
