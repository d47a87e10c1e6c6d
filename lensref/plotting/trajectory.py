"""How one target token's probability and rank change across layers at one position."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ..lens import LensResult
from ..tokens import show_token

# Extra probability lines (e.g. the tuned lens): each its own colour, line style and marker, so the lines
# stay apart in greyscale and for readers who do not see colour.
OTHER_STYLES = [("tab:orange", "-.", "s"), ("tab:green", ":", "^"), ("tab:purple", (0, (5, 1)), "D")]


def plot_trajectory(
    result: LensResult,
    position: int = -1,
    title: str | None = None,
    path: str | None = None,
    others: dict[str, LensResult] | None = None,
) -> Figure:
    """Target probability (left axis) and rank (right axis, log scale) per layer. ``others`` adds
    more results (e.g. ``{"tuned lens": tuned_result}``) as extra probability lines."""
    if result.target_prob is None or result.target_rank is None:
        raise ValueError("plot_trajectory needs a result computed with a target")
    layers = list(range(result.n_layers + 1))
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    ax.plot(
        layers,
        result.target_prob[:, position].numpy(),
        marker="o",
        ms=4,
        ls="-",
        color="tab:blue",
        label="probability (logit lens)",
    )
    for (name, other), (colour, style, marker) in zip((others or {}).items(), OTHER_STYLES):
        if other.target_prob is None:
            raise ValueError(f"plot_trajectory: the {name!r} result has no target")
        ax.plot(
            layers,
            other.target_prob[:, position].numpy(),
            marker=marker,
            ms=4,
            ls=style,
            color=colour,
            label=f"probability ({name})",
        )
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    right = ax.twinx()
    right.plot(
        layers,
        result.target_rank[:, position].numpy(),
        color="tab:red",
        ls="--",
        marker="x",
        ms=4,
        label="rank (logit lens, right axis)",
    )
    right.set_yscale("log")
    right.invert_yaxis()
    right.set_ylabel("rank (1 = top)")
    lines = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    ax.legend(lines, labels, loc="upper left", fontsize=9)
    token = show_token(result.tokens[position])
    ax.set_title(
        title or f"{show_token(result.target or '')!s} after {token!s}: probability and rank by layer", fontsize=10
    )
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig
