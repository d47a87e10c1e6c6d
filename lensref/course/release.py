"""Where the released exercise notebooks are: ``exercises/`` in a course folder, or the copies a wheel carries.

In a checkout (or an unpacked source archive) the notebooks live once, in ``exercises/`` (nbgrader's release,
generated from ``solutions/``). A wheel of ``lensref`` carries the same files as package data,
``lensref/course/notebooks/<assignment>/<notebook>.ipynb``, copied there by the build (``setup.py``), so that
``pip install`` then ``lensref lab`` works with no course folder at all.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import LensError

COURSE_ROOT = Path(__file__).resolve().parents[2]  # the course folder, when lensref runs from one
PACKAGED = Path(__file__).resolve().parent / "notebooks"  # the wheel's copies (absent in a checkout)


def in_checkout(root: Path = COURSE_ROOT) -> bool:
    """True when lensref runs from a course folder (its ``exercises/`` and ``solutions/`` beside the package)."""
    return (root / "exercises").is_dir() and (root / "solutions").is_dir()


def release_folder(root: Path = COURSE_ROOT) -> Path:
    """The folder of ``<assignment>/<notebook>.ipynb`` learners start from."""
    if in_checkout(root):
        return root / "exercises"
    if PACKAGED.is_dir():
        return PACKAGED
    raise LensError(
        f"no released notebooks: neither {root / 'exercises'} (a course folder) nor {PACKAGED} (an installed "
        f"wheel) exists; reinstall the course's wheel, or run from the course folder"
    )


def released_notebooks(release: Path | None = None) -> list[Path]:
    """The released notebooks (``<assignment>/<notebook>.ipynb`` under ``release``, or the release folder),
    sorted; an error if there are none."""
    folder = release_folder() if release is None else release
    notebooks = sorted(folder.glob("*/*.ipynb"))
    if not notebooks:
        raise LensError(f"{folder}: no released notebooks (<assignment>/<notebook>.ipynb)")
    return notebooks
