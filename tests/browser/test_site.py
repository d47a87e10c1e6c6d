"""Every chapter of the built site in a real browser (Debian chromium through playwright), served on 127.0.0.1.

Fails on a console error from our pages, on any failed request, on any request to another host (the
``page`` fixture blocks and records those), on maths that MathJax did not render, and on a figure that did
not load. Fixtures come from ``tests/browser/conftest.py``.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def chapters() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [entry["file"] for entry in toc["chapters"]]


def has_maths(chapter: str) -> bool:
    source = (ROOT / f"{chapter}.md").read_text()
    return "$$" in source or "\\(" in source or " $" in source


@pytest.mark.parametrize("chapter", chapters())
def test_chapter_loads_offline_with_maths_and_figures(page, site_url, chapter):
    failed, bad_status = [], []
    page.on("requestfailed", lambda request: failed.append(f"{request.url} ({request.failure})"))
    page.on("response", lambda response: bad_status.append(f"{response.url} ({response.status})")
            if response.status >= 400 else None)
    page.goto(site_url + chapter + ".html", wait_until="load")
    page.wait_for_load_state("networkidle")

    assert page.locator("main h1").count() >= 1, f"{chapter}: no title"
    if has_maths(chapter):
        page.wait_for_selector("mjx-container", timeout=20000)
        rendered = page.locator("mjx-container").count()
        raw_left = page.evaluate("() => document.querySelector('main').innerText.includes('$$')")
        assert rendered > 0 and not raw_left, f"{chapter}: maths not rendered by MathJax"
        assert page.evaluate("() => !!(window.MathJax && window.MathJax.startup)"), "MathJax did not start"

    images = page.evaluate(
        "() => Array.from(document.querySelectorAll('main img')).map(i => [i.currentSrc || i.src, i.complete, i.naturalWidth])")
    for src, complete, width in images:
        assert complete and width > 0, f"{chapter}: figure {src} did not load"
    source = (ROOT / f"{chapter}.md").read_text()
    if "plt.show()" in source:
        assert any("/_images/" in src for src, _, _ in images), f"{chapter}: its figures are missing"

    external = [url for url in failed if "127.0.0.1" not in url]
    assert failed == [] or external, f"{chapter}: failed requests {failed}"
    assert failed == [], f"{chapter}: failed requests {failed}"
    assert bad_status == [], f"{chapter}: HTTP errors {bad_status}"
    assert page.external_requests == [], f"{chapter}: requests to other hosts {page.external_requests}"
    assert page.unexpected_errors() == [], f"{chapter}: console errors {page.unexpected_errors()}"


def test_mathjax_is_served_locally(site_dir):
    assert (site_dir / "_static" / "mathjax" / "tex-chtml.js").is_file()
    html = (site_dir / "book" / "logit_lens.html").read_text()
    assert "_static/mathjax/tex-chtml.js" in html
