"""The pages the built site has, for the browser tests that visit every one of them.

``toc_pages()`` reads ``_toc.yml`` (the root, then every ``file`` at any depth: chapters, parts, sections), so
a page added to the table of contents is visited without editing a test. ``built_pages(site_dir)`` lists the
HTML pages a build wrote (the toc's pages plus Sphinx's own search and index pages), for checks that hold for
every page a reader can open.
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
NOT_PAGES = {"_static", "_sources", "_images", "exercise-downloads", "downloads"}


def _files(entries) -> list[str]:
    found = []
    for entry in entries or []:
        if "file" in entry:
            found.append(str(entry["file"]))
        for key in ("chapters", "sections", "parts"):
            found.extend(_files(entry.get(key)))
    return found


def toc_pages(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """Every page of the table of contents, in reading order, as paths without a suffix (``book/intro``)."""
    data = yaml.safe_load(toc.read_text())
    pages = [str(data["root"])] + _files(data.get("parts")) + _files(data.get("chapters"))
    return [page.removesuffix(".md").removesuffix(".ipynb") for page in pages]


def built_pages(site_dir: Path) -> list[str]:
    """Every HTML page of a built site, relative to it (``book/intro.html``), ``index.html`` (a redirect) left out."""
    pages = []
    for path in sorted(site_dir.rglob("*.html")):
        relative = path.relative_to(site_dir)
        if relative.parts[0] in NOT_PAGES or relative.as_posix() == "index.html":
            continue
        pages.append(relative.as_posix())
    return pages
