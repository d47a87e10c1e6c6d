"""The classic logit-lens grid: layers down, positions across, each cell its top token."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..lens import SITE_WORDS, LensResult
from ..tokens import show_token

COLOURINGS = {
    "prob": ("top-1 probability", "Blues", False),
    "entropy": ("entropy (nats)", "magma_r", False),
    "kl": ("KL(final ‖ layer) (nats)", "viridis_r", False),
    "rank": ("target rank (log scale)", "RdYlGn_r", True),
}


def _cell_values(result: LensResult, colour_by: str) -> np.ndarray:
    if colour_by == "prob":
        return result.top_probs[..., 0].numpy()
    if colour_by == "entropy":
        return result.entropy.numpy()
    if colour_by == "kl":
        return result.kl_to_final.numpy()
    if colour_by == "rank":
        if result.target_rank is None:
            raise ValueError("colour_by='rank' needs a result with a target")
        log_rank: np.ndarray = np.log10(result.target_rank.numpy().astype(float))
        return log_rank
    raise ValueError(f"colour_by must be one of {', '.join(COLOURINGS)}, not {colour_by!r}")


# The cell labels' size: 11 pt on a figure at most 8 inches wide, shown in the lesson's 688 px column, has
# capitals at least 9 px tall (8 pt had 7 px); six characters still fit a cell of 0.64 inch.
CELL_PT = 11.0
TICK_PT = 9.0


def _short(token: str, width: int = 6) -> str:
    text = show_token(token)
    return text if len(text) <= width else text[: width - 1] + "…"


def plot_grid(
    result: LensResult,
    colour_by: str = "prob",
    layers: list[int] | None = None,
    positions: list[int] | None = None,
    title: str | None = None,
    path: str | None = None,
) -> Figure:
    """Draw the grid (optionally a subset of layers/positions); save to ``path`` as PNG if given. Returns the figure."""
    label, cmap, log_rank = COLOURINGS.get(colour_by, (colour_by, "Blues", False))
    values = _cell_values(result, colour_by)
    layers = list(range(result.n_layers + 1)) if layers is None else list(layers)
    positions = list(range(result.n_positions)) if positions is None else [p % result.n_positions for p in positions]
    values = values[np.ix_(layers, positions)]
    # 0.64 inch per position: up to 10 positions keep the figure within 8 inches (the lesson's column width).
    fig, ax = plt.subplots(figsize=(1.6 + 0.64 * len(positions), 1.4 + 0.26 * len(layers)))
    vmin, vmax = (0.0, 1.0) if colour_by == "prob" else (float(values.min()), float(values.max()) or 1.0)
    image = ax.imshow(values, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, origin="lower")
    for i, layer in enumerate(layers):
        for j, pos in enumerate(positions):
            shade = (values[i, j] - vmin) / ((vmax - vmin) or 1.0)
            dark = shade > 0.55 if cmap in ("Blues", "viridis_r") else shade > 0.5
            ax.text(
                j,
                i,
                _short(result.top1(layer, pos)),
                ha="center",
                va="center",
                fontsize=CELL_PT,
                color="white" if dark else "black",
            )
    ax.set_xticks(range(len(positions)))
    ax.set_xticklabels([_short(result.tokens[p], 10) for p in positions], rotation=40, ha="right", fontsize=TICK_PT)
    ax.set_yticks(range(len(layers)))
    ax.set_yticklabels([str(layer) for layer in layers], fontsize=TICK_PT)
    ax.set_xlabel("input token (each cell: the lens's guess for the next token; ␣ = a space)", fontsize=9)
    ax.set_ylabel("layer (0 = embeddings)", fontsize=9)
    bar = fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02)
    bar.set_label(label + (" = log10(rank)" if log_rank else ""), fontsize=9)
    bar.ax.tick_params(labelsize=TICK_PT)
    site = "" if result.site == "pre" else f" (site {result.site}: row l = inside block l, {SITE_WORDS[result.site]})"
    ax.set_title(title or f"Logit lens on {result.model}: top token per layer and position{site}", fontsize=10)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig
