"""Every figure of the built site is legible where the page shows it, and can be enlarged.

Each figure is a PNG written by ``lensref.plotting.show``, which records in the file its width in inches
and the size of its smallest text in points (``lensref.plotting.display``). At the width the page renders the
image, that text is ``pt / 72 * rendered_px / width_in`` pixels tall: it must be at least 9 px at 1280 px.
On a 375 px phone the figures shrink with the column; clicking one opens it at full size in a dialog, where
the same text must be at least 9 px. The PNG also records any glyph the labels' font lacks and any lines
that differ only by colour, and any legend or in-plot label over the data: all must be empty.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from lensref.plotting.display import (
    COLUMN_PX,
    META_COVERED,
    META_FONT,
    META_GLYPHS,
    META_LINES,
    META_WIDTH,
    read_png_info,
)

ROOT = Path(__file__).resolve().parents[2]
MIN_PX = 9.0


def chapters_with_figures() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = [toc["root"]] + [entry["file"] for entry in toc["chapters"]]
    return [n for n in names if "show(fig" in (ROOT / f"{n}.md").read_text()]


def figures(page, site_dir: Path) -> list[dict]:
    rows = page.evaluate("""() => Array.from(document.querySelectorAll('main img')).map(i => ({
        src: i.currentSrc || i.src, natural: i.naturalWidth, shown: i.getBoundingClientRect().width,
        link: i.closest('a.lesson-zoom') ? i.closest('a.lesson-zoom').href : null}))""")
    for row in rows:
        path = site_dir / urlsplit(row["src"]).path.lstrip("/")
        row["info"] = read_png_info(path.read_bytes())
    return rows


def text_px(info: dict, shown_px: float) -> float:
    return float(info[META_FONT]) / 72 * shown_px / float(info[META_WIDTH])


def test_text_size_formula():
    # 8 pt text on an 8-inch figure shown 688 px wide: 8/72 * 86 px per inch = 9.56 px
    assert abs(text_px({META_FONT: "8", META_WIDTH: "8"}, 688) - 9.555) < 0.01


@pytest.mark.parametrize("chapter", chapters_with_figures())
def test_figures_are_legible_at_1280_px(browser, site_url, site_dir, chapter):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(site_url + chapter + ".html", wait_until="load")
        page.wait_for_load_state("networkidle")
        rows = figures(page, site_dir)
    finally:
        context.close()
    assert rows, f"{chapter}: no figures"
    for row in rows:
        info, name = row["info"], Path(row["src"]).name[:12]
        assert META_FONT in info, f"{chapter}: {name} was not drawn by lensref.plotting.show"
        px = text_px(info, row["shown"])
        assert px >= MIN_PX, f"{chapter}: {name}: smallest text {px:.1f} px tall as shown ({row['shown']:.0f} px wide)"
        assert info[META_GLYPHS] == "", f"{chapter}: {name}: the font has no glyph for {info[META_GLYPHS]!r}"
        assert info[META_LINES] == "", f"{chapter}: {name}: lines differ only by colour: {info[META_LINES]}"
        assert info.get(META_COVERED) == "", f"{chapter}: {name}: text over the data: {info.get(META_COVERED)}"
        # the unit tests (tests/test_plotting.py) size the grid's cell labels for a column this wide at most
        assert row["shown"] <= COLUMN_PX + 0.5, f"{chapter}: {name} shown {row['shown']:.0f} px wide"
        assert row["link"] and urlsplit(row["link"]).path == urlsplit(row["src"]).path, (
            f"{chapter}: {name} does not enlarge"
        )


def test_a_figure_enlarges_on_click_at_375_px(browser, site_url, site_dir):
    context = browser.new_context(viewport={"width": 375, "height": 740})
    try:
        page = context.new_page()
        page.goto(site_url + "book/logit_lens.html", wait_until="load")
        page.wait_for_load_state("networkidle")
        first = figures(page, site_dir)[0]
        assert text_px(first["info"], first["shown"]) < MIN_PX  # too small in the column on a phone...
        page.locator("main a.lesson-zoom").first.click()
        dialog = page.locator("dialog.lesson-zoom-dialog[open]")
        dialog.wait_for(timeout=5000)
        big = page.evaluate("""() => { const i = document.querySelector('dialog.lesson-zoom-dialog img');
            return {natural: i.naturalWidth, shown: i.getBoundingClientRect().width, alt: i.alt}; }""")
        assert big["natural"] > 0 and abs(big["shown"] - big["natural"]) < 2  # full size, panned by scrolling
        assert text_px(first["info"], big["shown"]) >= MIN_PX  # ...legible once enlarged
        assert big["alt"]
        page.keyboard.press("Escape")
        page.wait_for_function("() => !document.querySelector('dialog.lesson-zoom-dialog')")
    finally:
        context.close()
