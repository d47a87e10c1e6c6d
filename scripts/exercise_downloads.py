"""The exercise notebooks as downloads of the site: one zip of every released notebook, made at book-build time.

As a Sphinx extension (``_config.yml``: ``local_extensions: {exercise_downloads: scripts}``) it writes
``_build/exercise-downloads/logit-lens-exercises.zip`` from ``exercises/`` when the build starts, before any
page is read, so ``book/exercises.md`` can offer it with the ``{download}`` role next to the notebooks
themselves (Sphinx copies each download byte for byte into ``_build/html/_downloads/``). Any way of building
the book (``make book``, ``jupyter-book build .``) makes it.

The zip holds ``my-work/<assignment>/<notebook>.ipynb``, byte-identical to ``exercises/``: unzipped in the
course folder it is the work folder ``make lab`` opens. Entries are stored in a fixed order with a fixed
date, so the same notebooks always give the same zip (and the file is rewritten only when they change).

Run by hand: ``python scripts/exercise_downloads.py [OUT.zip]``.
"""

from __future__ import annotations

import io
import os
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZIP_NAME = "logit-lens-exercises.zip"
ZIP_DIR = Path("_build") / "exercise-downloads"  # relative to the book's source folder
TOP = "my-work"  # the folder inside the zip: make lab's work folder
FIXED_DATE = (2026, 1, 1, 0, 0, 0)


def released(exercises: Path) -> list[Path]:
    notebooks = sorted(exercises.glob("*/*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"{exercises}: no released notebooks (exercises/<assignment>/*.ipynb)")
    return notebooks


def zip_bytes(exercises: Path) -> bytes:
    """The zip of every released notebook under ``my-work/<assignment>/``, deterministic."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for path in released(exercises):
            info = zipfile.ZipInfo(f"{TOP}/{path.parent.name}/{path.name}", date_time=FIXED_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, path.read_bytes())
    return buffer.getvalue()


def write_zip(exercises: Path, out: Path) -> bool:
    """Write the zip to ``out`` (temp file + rename) unless it is already up to date; True if written."""
    data = zip_bytes(exercises)
    if out.exists() and out.read_bytes() == data:
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    return True


def _on_builder_inited(app) -> None:
    src = Path(app.srcdir)
    write_zip(src / "exercises", src / ZIP_DIR / ZIP_NAME)


def setup(app):
    app.connect("builder-inited", _on_builder_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ZIP_DIR / ZIP_NAME
    written = write_zip(ROOT / "exercises", target)
    print(f"{'wrote' if written else 'up to date'}: {target}")
