"""The plain-text tables results print (``format_table()``): a title, a header, then one line per layer."""

from __future__ import annotations

from collections.abc import Callable


def layer_table(title: str, header: str, n_layers: int, row: Callable[[int], str]) -> list[str]:
    """The lines ``[title, header, row(0), ..., row(n_layers)]`` of a table over layers 0..L."""
    return [title, header, *(row(layer) for layer in range(n_layers + 1))]
