"""The lesson's figures and site furniture, as a small Sphinx extension.

- Every figure's ``alt`` is the sentence the page gave ``lensref.plotting.show(fig, alt)``: it travels in the
  PNG's ``Description`` text chunk and is copied onto the image node here (myst-nb would use the file name).
- Every figure is wrapped in a link to its full-size image (class ``lesson-zoom``); ``figure-zoom.js`` opens it
  in a dialog on the page, so a small screen can pan over a large grid.
- ``site-chrome.js`` puts the left sidebar in a navigation landmark and makes the colour-mode button's first
  click change the colours on screen (the theme's first step, "auto", often looked the same).
- ``book/_static`` (``lesson.css``, ``figure-zoom.js``, ``search-snippets.js``, ``site-chrome.js``,
  ``favicon.ico``) is added to the site; the favicon is linked from every page and also copied to the site
  root, where browsers look for ``/favicon.ico``; search results show the prose around the term, not the
  page's print-only title block.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from docutils import nodes

STATIC = Path(__file__).resolve().parent.parent / "_static"
_IMG = re.compile(r'(<img\b[^>]*\bsrc="([^"]*_images/[^"]+\.png)"[^>]*>)')


def _png_description(path: Path) -> str | None:
    try:
        from PIL import Image

        with Image.open(path) as image:
            return getattr(image, "text", {}).get("Description")
    except (OSError, ValueError):
        return None


def _image_file(app, node) -> Path | None:
    uri = node.get("uri", "")
    for candidate in (Path(uri), Path(app.srcdir) / uri, Path(app.srcdir) / Path(node.source or "").parent / uri):
        if candidate.is_file():
            return candidate
    return None


def _set_alt_texts(app, doctree, docname) -> None:
    for node in doctree.findall(nodes.image):
        path = _image_file(app, node)
        if path is not None and path.suffix == ".png":
            alt = _png_description(path)
            if alt:
                node["alt"] = alt


def _zoomable(app, pagename, templatename, context, doctree) -> None:
    body = context.get("body")
    if not body or "_images/" not in body:
        return

    def wrap(match: re.Match) -> str:
        img, src = match.group(1), match.group(2)
        start = match.start()
        if body.rfind("<a ", 0, start) > body.rfind("</a>", 0, start):  # already inside a link
            return img
        return f'<a class="lesson-zoom" href="{html.escape(src, quote=True)}">{img}</a>'

    context["body"] = _IMG.sub(wrap, body)


def _configure(app, config) -> None:
    config.html_static_path = list(config.html_static_path or []) + [str(STATIC)]
    config.html_extra_path = list(config.html_extra_path or []) + [str(STATIC / "favicon.ico")]
    if not config.html_favicon:
        config.html_favicon = str(STATIC / "favicon.ico")


def setup(app):
    app.connect("config-inited", _configure)
    app.connect("doctree-resolved", _set_alt_texts)
    app.connect("html-page-context", _zoomable)
    app.add_css_file("lesson.css")
    app.add_js_file("figure-zoom.js", defer="defer")
    app.add_js_file("search-snippets.js", defer="defer")
    app.add_js_file("site-chrome.js", defer="defer")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
