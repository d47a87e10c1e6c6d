"""The logit difference across layers: a line for one position and a layers x positions heatmap."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..indices import check_position
from ..logitdiff import LogitDiffResult
from ..tokens import show_token
from .overlap import data_hits

# Where the "positive from layer l" label may go, beside the vertical line at l: (side, height in axes
# fraction, vertical alignment), tried in order until one covers no line and not the legend.
_SPOTS = [(side, y, va) for y, va in ((0.03, "bottom"), (0.97, "top"), (0.5, "center")) for side in (1, -1)]


def _label_clear_of_lines(ax: Axes, text: str, layer: int) -> None:
    """Write ``text`` beside the vertical line at ``layer``, at the first of :data:`_SPOTS` where it covers no
    plotted line and not the legend (at the bottom right if none is clear)."""
    fig = ax.figure
    legend = ax.get_legend()
    for side, height, va in _SPOTS:
        label = ax.annotate(
            text,
            (layer, height),
            xycoords=("data", "axes fraction"),
            textcoords="offset points",
            xytext=(5 * side, 0),
            ha="left" if side > 0 else "right",
            va=va,
            fontsize=9,
            color="tab:red",
        )
        fig.canvas.draw()
        box = label.get_window_extent()
        inside = ax.get_window_extent().contains(box.x0, box.y0) and ax.get_window_extent().contains(box.x1, box.y1)
        clear = inside and not any(data_hits([ax], box))
        if clear and legend is not None:
            clear = not box.overlaps(legend.get_window_extent())
        if clear:
            return
        label.remove()
    ax.annotate(
        text,
        (layer, 0.03),
        xycoords=("data", "axes fraction"),
        textcoords="offset points",
        xytext=(5, 0),
        va="bottom",
        fontsize=9,
        color="tab:red",
    )


def plot_logit_diff(
    result: LogitDiffResult, position: int = -1, title: str | None = None, path: str | None = None
) -> Figure:
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
    line.set_xlabel("layer (0 = embeddings)")
    line.set_ylabel("lens logit")
    line.set_title(f"at the last position (after {show_token(result.tokens[position])!r}), layer by layer", fontsize=10)
    # below the axis label, not inside: on some prompts the lines fill every corner of the panel
    line.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
    first = result.first_positive_layer(position)
    if first is not None:
        line.axvline(first, color="tab:red", ls=":", lw=1)

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
    if first is not None:  # placed once the layout is final: it is checked against where the lines are drawn
        _label_clear_of_lines(line, f"positive from layer {first}", first)
    if path:
        fig.savefig(path, dpi=120)
    return fig
