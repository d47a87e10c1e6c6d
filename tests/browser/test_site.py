"""Every chapter of the built site in a real browser (Debian chromium through playwright), served on 127.0.0.1.

Fails on a console error from our pages, on any failed request, on any request to another host (the
``page`` fixture blocks and records those), on maths that MathJax did not render, and on a figure that did
not load. Fixtures come from ``tests/browser/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from site_pages import toc_pages

ROOT = Path(__file__).resolve().parents[2]


def chapters() -> list[str]:
    return toc_pages()


def has_maths(chapter: str) -> bool:
    source = (ROOT / f"{chapter}.md").read_text()
    return "$$" in source or "\\(" in source or " $" in source


@pytest.mark.parametrize("chapter", chapters())
def test_chapter_loads_offline_with_maths_and_figures(page, site_url, chapter):
    failed, bad_status = [], []
    page.on("requestfailed", lambda request: failed.append(f"{request.url} ({request.failure})"))
    page.on(
        "response",
        lambda response: bad_status.append(f"{response.url} ({response.status})") if response.status >= 400 else None,
    )
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
        "() => Array.from(document.querySelectorAll('main img')).map(i => [i.currentSrc || i.src, i.complete, i.naturalWidth])"
    )
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


# --- what a learner can read: nothing wider than its column, every figure described -----------------------

WIDTHS = (1280, 375)
# Elements that must fit their column. Display maths may instead scroll inside the column on a narrow screen
# (lesson.css gives it overflow-x: auto, a visible scrollbar by design); so may the theme's table wrappers.
OVERFLOW_JS = """(width) => {
  const column = document.querySelector('main article') || document.querySelector('main');
  const right = column.getBoundingClientRect().right;
  const bad = [];
  const describe = (el) => (el.tagName.toLowerCase() + '.' + (el.className || '').toString().split(' ')[0] + ': ' +
                            (el.innerText || '').trim().slice(0, 60));
  for (const el of column.querySelectorAll('div.cell_output, div.cell_output pre, table, mjx-container[display="true"]')) {
    if (el.offsetParent === null) continue;  // hidden (a folded cell)
    const overflowX = getComputedStyle(el).overflowX;
    const scrolls = el.scrollWidth > el.clientWidth + 1;
    const isMaths = el.tagName.toLowerCase() === 'mjx-container';
    const inScroller = !!el.closest('.pst-scrollable-table-container, .table-wrapper');
    if (scrolls && !(isMaths && width < 700 && ['auto', 'scroll'].includes(overflowX)) && !(el.tagName === 'TABLE' && inScroller)) {
      bad.push('hidden overflow ' + describe(el) + ' (' + el.scrollWidth + ' > ' + el.clientWidth + ')');
    }
    if (el.getBoundingClientRect().right > right + 1 && !inScroller) {
      bad.push('past the column ' + describe(el));
    }
  }
  return bad;
}"""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("chapter", chapters())
def test_nothing_runs_past_the_column(browser, site_url, chapter, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        pg = context.new_page()
        pg.goto(site_url + chapter + ".html", wait_until="load")
        pg.wait_for_load_state("networkidle")
        if has_maths(chapter):
            pg.wait_for_selector("mjx-container", timeout=20000)
        bad = pg.evaluate(OVERFLOW_JS, width)
    finally:
        context.close()
    assert bad == [], f"{chapter} at {width} px: " + "; ".join(bad)


def is_sentence(alt: str) -> bool:
    words = alt.split()
    return (
        len(words) >= 6
        and alt[:1].isupper()
        and alt.rstrip().endswith((".", "!", "?"))
        and ".png" not in alt
        and "_images" not in alt
    )


def test_sentence_check_rejects_file_names():
    assert not is_sentence("../_images/bca6430e122df9a410b8a00b18743dac20652b99424d46e13f6fc62c5206d918.png")
    assert not is_sentence("grid")
    assert is_sentence("A grid with one row per layer and one column per token.")


@pytest.mark.parametrize("chapter", chapters())
def test_every_figure_has_a_sentence_for_alt_text(page, site_url, chapter):
    page.goto(site_url + chapter + ".html", wait_until="load")
    alts = page.evaluate(
        "() => Array.from(document.querySelectorAll('main img')).map(i => i.getAttribute('alt') || '')"
    )
    bad = [alt for alt in alts if not is_sentence(alt)]
    assert bad == [], f"{chapter}: alt texts that are not sentences: {bad}"


def test_favicon_is_served_and_linked(page, site_url):
    failed = []
    page.on("response", lambda r: failed.append(f"{r.url} ({r.status})") if r.status >= 400 else None)
    page.goto(site_url + "book/logit_lens.html", wait_until="load")
    icon = page.evaluate("() => { const l = document.querySelector('link[rel~=icon]'); return l && l.href; }")
    assert icon, "no <link rel=icon>"
    assert page.request.get(icon).status == 200
    assert page.request.get(site_url + "favicon.ico").status == 200  # where browsers look without a link
    assert failed == []


def test_search_snippets_show_the_prose_around_the_term(page, site_url):
    page.goto(site_url + "search.html?q=translator", wait_until="load")
    page.wait_for_selector("#search-results li p.context", timeout=20000)
    page.wait_for_timeout(1000)  # snippets arrive one page fetch at a time
    results = page.evaluate("""() => Array.from(document.querySelectorAll('#search-results li')).map(li =>
        [li.querySelector('a').innerText, (li.querySelector('p.context') || {}).innerText || ''])""")
    snippets = dict(results)
    assert "translator" in snippets["The tuned lens"].lower(), results  # the term in its context, not the title
    for title, text in results:
        assert len(text) > 80 and "Contents" not in text and "  " not in text, (title, text)
