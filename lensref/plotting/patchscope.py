"""Patchscope readouts by source layer, sorted into labelled regimes (one row each)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ..patchscope import PatchscopeResult
from ..tokens import show_token

MARKERS = ["o", "s", "^", "D", "v"]


def _runs(layers: list[int], answers: dict[int, str], step: int) -> list[tuple[int, int, str]]:
    """Consecutive layers (``step`` apart) with the same answer, as ``(first, last, answer)``."""
    runs: list[tuple[int, int, str]] = []
    for layer in sorted(layers):
        if runs and runs[-1][2] == answers[layer] and layer - runs[-1][1] == step:
            runs[-1] = (runs[-1][0], layer, answers[layer])
        else:
            runs.append((layer, layer, answers[layer]))
    return runs


def plot_patchscope_regimes(
    result: PatchscopeResult, regimes: dict[str, list[int]], title: str | None = None, path: str | None = None
) -> Figure:
    """One row per regime (``{label: [source layers]}``), a marker per layer read, and each run of layers that
    gave the same answer labelled once above its middle (so repeated answers never overlap). Returns the figure."""
    answers = result.answers()
    layers_read = sorted(answers)
    step = layers_read[1] - layers_read[0] if len(layers_read) > 1 else 1
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.75 * len(regimes)))
    for row, (xs, marker) in enumerate(zip(regimes.values(), MARKERS)):
        ax.scatter(xs, [row] * len(xs), s=60, marker=marker)
        for first, last, answer in _runs(xs, answers, step):
            text = answer if len(answer) <= 22 else answer[:21] + "…"
            ax.annotate(
                f"“{text}”",
                ((first + last) / 2, row),
                textcoords="offset points",
                xytext=(0, 9),
                ha="center",
                fontsize=9,
            )
    ax.set_yticks(range(len(regimes)))
    ax.set_yticklabels(list(regimes), fontsize=9)
    ax.set_ylim(-0.6, len(regimes) - 0.2)
    ax.set_xlim(min(layers_read) - 2, max(layers_read) + 2)
    ax.set_xticks(layers_read)
    ax.set_xlabel("source layer (patched into the same layer of the target prompt)")
    ax.set_title(title or f"Patchscope readouts of the state at {show_token(result.source_token)!r}", fontsize=10)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig
