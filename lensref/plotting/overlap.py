"""What covers the data: legends and in-plot labels that lie over a plotted line, area or marker.

Everything is measured in display coordinates (pixels of the drawn figure), the same space matplotlib draws
in, so the answer is the one a reader sees. :func:`covered_data` lists each overlap as a short phrase;
``lensref.plotting.display`` records the list in every lesson figure and refuses a figure that has one.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import Collection, PathCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.path import Path
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

NO_LINE = ("None", "none", "", " ")


def _name(artist: Artist, kind: str) -> str:
    label = str(artist.get_label() or "")
    return f"{kind} {label!r}" if label and not label.startswith("_") else f"a {kind}"


def _line_hits(line: Line2D, box: Bbox) -> bool:
    path = line.get_transform().transform_path(line.get_path())
    if str(line.get_linestyle()) not in NO_LINE and path.intersects_bbox(box, filled=False):
        return True
    if str(line.get_marker()) not in NO_LINE:
        return bool(box.count_contains(path.vertices))
    return False


def _collection_hits(collection: Collection, box: Bbox) -> bool:
    if isinstance(collection, PathCollection):  # scatter: marker shapes placed at offsets
        points = collection.get_offset_transform().transform(collection.get_offsets())
        return bool(len(points)) and bool(box.count_contains(points))
    transform = collection.get_transform()
    faces = np.asarray(collection.get_facecolor(), dtype=float).reshape(-1, 4)
    filled = bool(len(faces)) and float(faces[:, 3].max()) > 0
    return any(transform.transform_path(p).intersects_bbox(box, filled=filled) for p in collection.get_paths())


def _patch_hits(patch: Patch, box: Bbox) -> bool:
    path: Path = patch.get_transform().transform_path(patch.get_path())
    return path.intersects_bbox(box, filled=patch.get_fill())


def data_hits(axes: list[Axes], box: Bbox) -> Iterator[str]:
    """The plotted artists of ``axes`` (lines, areas, bars, markers) that touch ``box`` (display coordinates)."""
    for ax in axes:
        for line in ax.get_lines():
            if line.get_visible() and _line_hits(line, box):
                yield _name(line, "line")
        for collection in ax.collections:
            if collection.get_visible() and _collection_hits(collection, box):
                yield _name(collection, "area")
        for patch in ax.patches:
            if patch.get_visible() and _patch_hits(patch, box):
                yield _name(patch, "patch")


def _labels(ax: Axes) -> Iterator[Text]:
    """Texts placed inside the plot (``ax.text``, ``ax.annotate``), not titles or tick labels."""
    for text in ax.texts:
        if text.get_visible() and text.get_text().strip():
            yield text


def covered_data(fig: Figure, labels_over_images_ok: bool = True) -> list[str]:
    """Each legend or in-plot label that lies over plotted data, as ``"the legend covers line 'x'"``.

    A legend is checked against every axes of the figure (a twin axes draws in the same place); a label
    against the lines, areas and markers of its own axes. Labels drawn on an image (the grid's cell labels)
    are the image's own annotation and are not checked when ``labels_over_images_ok``."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    found: list[str] = []
    legends = [ax.get_legend() for ax in fig.axes] + list(fig.legends)
    for legend in legends:
        if legend is None or not legend.get_visible():
            continue
        box = legend.get_window_extent(renderer)
        found.extend(f"the legend covers {hit}" for hit in dict.fromkeys(data_hits(fig.axes, box)))
    for ax in fig.axes:
        if labels_over_images_ok and ax.images:
            continue
        for text in _labels(ax):
            box = text.get_window_extent(renderer)
            if isinstance(text, Annotation) and text.arrow_patch is not None:
                continue  # an arrow points at the data on purpose
            found.extend(f"the label {text.get_text()!r} covers {hit}" for hit in dict.fromkeys(data_hits([ax], box)))
    return found
