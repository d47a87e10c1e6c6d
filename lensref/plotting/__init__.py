"""matplotlib figures for the lens and its variants (each saved as PNG when given a path), and ``show``: a
figure on a lesson page, checked for legibility and described by its alt text."""

from .display import show
from .grid import plot_grid
from .trajectory import plot_trajectory

__all__ = ["plot_grid", "plot_trajectory", "show"]
