"""matplotlib figures for the lens and its variants (each saved as PNG when given a path)."""
from .grid import plot_grid
from .trajectory import plot_trajectory

__all__ = ["plot_grid", "plot_trajectory"]
