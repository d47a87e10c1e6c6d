"""The plain-text tables results print (``format_table()``): a title, a header, then one line per layer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class Tabled(Protocol):
    """A result that prints itself as a table: :class:`~lensref.lens.LensResult`, ``LogitDiffResult``, ..."""

    def format_table(self, *args: Any, **kwargs: Any) -> str:
        """The result as lines of text."""
        ...


def format_table(result: Tabled, *args: Any, **kwargs: Any) -> str:
    """``result``'s own table, e.g. one line per layer at the last position of a :class:`~lensref.lens.LensResult`.

    The arguments after ``result`` go to its ``format_table()`` method (a position for the lens's table).
    """
    return result.format_table(*args, **kwargs)


def layer_table(title: str, header: str, n_layers: int, row: Callable[[int], str]) -> list[str]:
    """The lines ``[title, header, row(0), ..., row(n_layers)]`` of a table over layers 0..L."""
    return [title, header, *(row(layer) for layer in range(n_layers + 1))]
