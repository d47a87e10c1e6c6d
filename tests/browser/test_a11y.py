"""Accessibility of every page of the built site, in the light and the dark theme: axe-core (the copy bundled
by the PyPI package ``axe-playwright-python``, injected into the page by playwright) must report no violation
of any impact (minor, moderate, serious or critical). The pages are those of ``_toc.yml`` (``site_pages``), so
a new page is audited without editing this file.

Left to the theme or to other work, each named with its reason (``EXCLUDED``): nothing is excluded unless it
is listed there, and a listed selector that no longer fails should be removed.
"""

from __future__ import annotations

import pytest
from site_pages import toc_pages

THEMES = ("light", "dark")

# selector -> why it is not the lesson's to fix here (checked to still exist, so stale entries show up).
EXCLUDED: dict[str, str] = {}


def open_in_theme(page, url: str, theme: str) -> None:
    """Load ``url`` with the theme's saved mode set first, as a returning reader who chose it would."""
    page.add_init_script(f"localStorage.setItem('mode', '{theme}'); localStorage.setItem('theme', '{theme}');")
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("() => document.documentElement.dataset.theme") == theme


def violations(page) -> list[str]:
    from axe_playwright_python.base import AXE_SCRIPT  # axe-core's own axe.min.js, shipped in the package

    page.evaluate(AXE_SCRIPT)
    context = {"include": [["html"]], "exclude": [[selector] for selector in EXCLUDED]}
    response = page.evaluate(
        "([context, options]) => axe.run(context, options)", [context, {"resultTypes": ["violations"]}]
    )
    found = []
    for violation in response["violations"]:
        for node in violation["nodes"]:
            target = " ".join(map(str, node.get("target", [])))
            found.append(f"{violation['id']} ({violation['impact']}): {target}: {node.get('failureSummary', '')[:160]}")
    return found


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("chapter", toc_pages())
def test_no_accessibility_violation(page, site_url, chapter, theme):
    open_in_theme(page, site_url + chapter + ".html", theme)
    found = violations(page)
    assert found == [], f"{chapter} ({theme}): {len(found)} axe violations:\n" + "\n".join(found[:25])


def test_axe_finds_a_planted_violation(page, site_url):
    """The audit can fail: an image without alt text, light grey text on white, and (a moderate one) a
    paragraph outside every landmark are caught."""
    open_in_theme(page, site_url + "book/intro.html", "light")
    page.evaluate("""() => {
        const main = document.querySelector('main');
        const img = document.createElement('img'); img.src = '../_static/favicon.ico'; main.prepend(img);
        const p = document.createElement('p'); p.textContent = 'faint words'; p.style.color = '#c8c8c8';
        p.style.background = '#ffffff'; main.prepend(p);
        const stray = document.createElement('p'); stray.textContent = 'outside every landmark';
        document.body.append(stray);
    }""")
    found = violations(page)
    assert any(f.startswith("image-alt") for f in found), found
    assert any(f.startswith("color-contrast") for f in found), found
    assert any(f.startswith("region (moderate)") for f in found), found


@pytest.mark.parametrize("panel", ["primary", "secondary"])
def test_open_panels_on_a_phone_have_no_violation(page, site_url, panel):
    """The ☰ menu and the contents panel, opened at 375 px, pass the same audit."""
    page.set_viewport_size({"width": 375, "height": 800})
    open_in_theme(page, site_url + "book/logit_lens.html", "light")
    page.locator(f".bd-header-article .{panel}-toggle").click()
    page.wait_for_function(f"() => document.getElementById('pst-{panel}-sidebar-modal').open", timeout=5000)
    found = violations(page)
    assert found == [], f"{panel} panel open: {len(found)} axe violations:\n" + "\n".join(found[:25])
