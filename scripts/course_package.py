"""The course as two downloads of the site: the wheel (learners) and the source archive (instructors).

As a Sphinx extension (``_config.yml``: ``local_extensions: {course_package: scripts}``) it builds both when the
book build starts, before any page is read, with ``python -m build --no-isolation`` (the source archive first,
then the wheel from it, so a wheel that installs proves the archive complete) into
``_build/course-package/``. Any way of building the book (``make book``, ``jupyter-book build .``) makes them.

- The wheel, ``lensref-<version>-py3-none-any.whl``: the ``lensref`` package with the released notebooks
  (``setup.py`` copies ``exercises/`` in); ``pip install`` it, then ``lensref lab``.
- The source archive, ``lensref-<version>.tar.gz``: the whole course folder (``MANIFEST.in``), for ``make book``
  and ``make test``.

Pages name them through two tokens replaced before a page is parsed, so that the version is written only in
``pyproject.toml``: ``{{ course_wheel }}`` and ``{{ course_sdist }}`` (the file names). A page that uses them is
read again on every build (they are plain Markdown pages: cheap). A token left unreplaced would reach MyST as
an undefined substitution, which ``-W`` turns into a failed build.

Run by hand: ``python scripts/course_package.py [OUT_DIR]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = Path("_build") / "course-package"  # relative to the book's source folder
TOKENS = {"wheel": "{{ course_wheel }}", "sdist": "{{ course_sdist }}"}
SOURCE_DATE_EPOCH = "1767225600"  # 2026-01-01: the wheel's entries get this date, not the build's


def build(src: Path, out: Path) -> dict[str, Path]:
    """Build the source archive and the wheel of ``src`` into ``out``; returns {"wheel": path, "sdist": path}.

    They are made in a scratch folder and moved in by rename, so ``out`` never holds a half-written file;
    other versions' files in ``out`` are removed.
    """
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".course-package-", dir=out) as scratch:
        proc = subprocess.run(
            [sys.executable, "-m", "build", "--no-isolation", "--outdir", scratch, str(src)],
            capture_output=True,
            text=True,
            env={**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
        )
        if proc.returncode != 0:
            tail = " | ".join(line for line in (proc.stdout + proc.stderr).splitlines()[-8:] if line.strip())
            raise RuntimeError(f"building the course's wheel and source archive failed (python -m build): {tail}")
        made = {
            "wheel": _one(Path(scratch).glob("*.whl"), "wheel"),
            "sdist": _one(Path(scratch).glob("*.tar.gz"), "source archive"),
        }
        for path in made.values():
            os.replace(path, out / path.name)
    names = {path.name for path in made.values()}
    for old in [*out.glob("*.whl"), *out.glob("*.tar.gz")]:
        if old.name not in names:
            old.unlink(missing_ok=True)
    return {kind: out / path.name for kind, path in made.items()}


def _one(paths, what: str) -> Path:
    found = sorted(paths)
    if len(found) != 1:
        raise RuntimeError(f"python -m build made {len(found)} {what} files, expected one")
    return found[0]


def _on_builder_inited(app) -> None:
    from sphinx.errors import ExtensionError

    src = Path(app.srcdir)
    try:
        made = build(src, src / OUT_DIR)
    except RuntimeError as exc:
        raise ExtensionError(str(exc)) from None
    app.env.course_package_names = {kind: path.name for kind, path in made.items()}


def _on_source_read(app, docname: str, source: list[str]) -> None:
    names = getattr(app.env, "course_package_names", {})
    text = source[0]
    if not any(token in text for token in TOKENS.values()):
        return
    for kind, token in TOKENS.items():
        if kind in names:
            text = text.replace(token, names[kind])
    source[0] = text
    users = getattr(app.env, "course_package_docs", set())
    users.add(docname)
    app.env.course_package_docs = users


def _outdated(app, env, added, changed, removed):
    """The pages that name the files: read again, the version may have changed."""
    users = getattr(env, "course_package_docs", set())
    return [doc for doc in sorted(users) if doc in env.found_docs and doc not in added | changed]


def _merge(app, env, docnames, other) -> None:
    """Parallel reading: the pages a worker found using the tokens."""
    env.course_package_docs = getattr(env, "course_package_docs", set()) | getattr(other, "course_package_docs", set())


def setup(app):
    app.connect("builder-inited", _on_builder_inited)
    app.connect("source-read", _on_source_read)
    app.connect("env-get-outdated", _outdated)
    app.connect("env-merge-info", _merge)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / OUT_DIR
    for kind, path in build(ROOT, target).items():
        print(f"{kind}: {path} ({path.stat().st_size // 1024} KB)")
