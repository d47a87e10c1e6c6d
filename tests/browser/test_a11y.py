"""Accessibility of every page of the built site, in the light and the dark theme: axe-core (the copy bundled
by the PyPI package ``axe-playwright-python``, injected into the page by playwright) must report no serious
or critical violation caused by the course's own content.

Left to the theme or to other work, each named with its reason (``EXCLUDED``): nothing is excluded unless it
is listed there, and a listed selector that no longer fails should be removed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
THEMES = ("light", "dark")
SERIOUS = {"serious", "critical"}

# selector -> why it is not the lesson's to fix here (checked to still exist, so stale entries show up).
EXCLUDED: dict[str, str] = {}


def pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [entry["file"] for entry in toc["chapters"]]


def open_in_theme(page, url: str, theme: str) -> None:
    """Load ``url`` with the theme's saved mode set first, as a returning reader who chose it would."""
    page.add_init_script(f"localStorage.setItem('mode', '{theme}'); localStorage.setItem('theme', '{theme}');")
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("() => document.documentElement.dataset.theme") == theme


def serious_violations(page) -> list[str]:
    from axe_playwright_python.base import AXE_SCRIPT  # axe-core's own axe.min.js, shipped in the package

    page.evaluate(AXE_SCRIPT)
    context = {"include": [["html"]], "exclude": [[selector] for selector in EXCLUDED]}
    response = page.evaluate(
        "([context, options]) => axe.run(context, options)", [context, {"resultTypes": ["violations"]}]
    )
    found = []
    for violation in response["violations"]:
        if violation.get("impact") not in SERIOUS:
            continue
        for node in violation["nodes"]:
            target = " ".join(map(str, node.get("target", [])))
            found.append(f"{violation['id']} ({violation['impact']}): {target}: {node.get('failureSummary', '')[:160]}")
    return found


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("chapter", pages())
def test_no_serious_accessibility_violation(page, site_url, chapter, theme):
    open_in_theme(page, site_url + chapter + ".html", theme)
    found = serious_violations(page)
    assert found == [], f"{chapter} ({theme}): {len(found)} serious or critical axe violations:\n" + "\n".join(
        found[:25]
    )


def test_axe_finds_a_planted_violation(page, site_url):
    """The audit can fail: an image without alt text and light grey text on white are caught."""
    open_in_theme(page, site_url + "book/intro.html", "light")
    page.evaluate("""() => {
        const main = document.querySelector('main');
        const img = document.createElement('img'); img.src = '../_static/favicon.ico'; main.prepend(img);
        const p = document.createElement('p'); p.textContent = 'faint words'; p.style.color = '#c8c8c8';
        p.style.background = '#ffffff'; main.prepend(p);
    }""")
    found = serious_violations(page)
    assert any(f.startswith("image-alt") for f in found), found
    assert any(f.startswith("color-contrast") for f in found), found
