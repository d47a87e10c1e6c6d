"""The site on a phone (375 px) and on a desktop (1280 px): the ☰ menu and the contents button open and close
their panels, no page is wider than a phone's screen (light and dark), and the colour-mode button changes the
colours at its first click. Fixtures come from ``tests/browser/conftest.py``; the pages from ``site_pages``.
"""

from __future__ import annotations

import pytest
from site_pages import built_pages, toc_pages

PAGE = "book/logit_lens.html"  # a chapter with sections, so the contents panel has entries
PHONE = {"width": 375, "height": 800}
DESKTOP = {"width": 1280, "height": 800}


def _open(page, site_url, viewport, path=PAGE):
    page.set_viewport_size(viewport)
    page.goto(site_url + path, wait_until="load")
    page.wait_for_load_state("networkidle")
    return page


def _visible_button(page, selector):
    buttons = [b for b in page.locator(selector).all() if b.is_visible()]
    assert len(buttons) == 1, f"{len(buttons)} visible {selector} buttons"
    return buttons[0]


def _dialog_open(page, dialog_id) -> bool:
    return page.evaluate(f"() => document.getElementById('{dialog_id}').open")


def test_menu_and_contents_open_and_close_on_a_phone(page, site_url):
    _open(page, site_url, PHONE)
    nav_link = page.locator("nav.bd-docs-nav a", has_text="The tuned lens")
    assert not nav_link.is_visible(), "the site menu shows before it is opened"
    _visible_button(page, ".primary-toggle").click()
    page.wait_for_function("() => document.getElementById('pst-primary-sidebar-modal').open", timeout=5000)
    assert page.locator("#pst-primary-sidebar-modal nav.bd-docs-nav a", has_text="The tuned lens").is_visible()
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.getElementById('pst-primary-sidebar-modal').open")
    nav_link.wait_for(state="hidden", timeout=3000)  # the sidebar slides away (a short transition)
    assert page.locator("#pst-primary-sidebar nav.bd-docs-nav").count() == 1  # its links went back in place

    headings = page.locator("main section > h2").all_inner_texts()
    assert headings, "the page has no sections to list"
    _visible_button(page, ".secondary-toggle").click()
    page.wait_for_function("() => document.getElementById('pst-secondary-sidebar-modal').open", timeout=5000)
    contents = page.locator("#pst-secondary-sidebar-modal nav.page-toc a")
    assert contents.first.is_visible()
    assert headings[0].strip("#¶ \n") in contents.all_inner_texts()[0]
    # a click on the backdrop (outside the panel) closes it too
    box = page.locator("#pst-secondary-sidebar-modal").bounding_box()
    page.mouse.click(5 if box["x"] > 20 else PHONE["width"] - 5, PHONE["height"] - 5)
    page.wait_for_function("() => !document.getElementById('pst-secondary-sidebar-modal').open")
    contents.first.wait_for(state="hidden", timeout=3000)
    assert page.unexpected_errors() == []


def test_menu_hides_and_shows_the_sidebar_on_a_desktop(page, site_url):
    _open(page, site_url, DESKTOP)
    nav_link = page.locator("#pst-primary-sidebar nav.bd-docs-nav a", has_text="The tuned lens")
    assert nav_link.is_visible()
    toggle = _visible_button(page, ".primary-toggle")
    toggle.click()
    page.wait_for_function(
        "() => getComputedStyle(document.getElementById('pst-primary-sidebar')).visibility === 'hidden'",
        timeout=5000,
    )
    nav_link.wait_for(state="hidden", timeout=3000)
    assert not _dialog_open(page, "pst-primary-sidebar-modal")  # wide screens fold the sidebar, no drawer
    toggle.click()
    page.wait_for_function(
        "() => getComputedStyle(document.getElementById('pst-primary-sidebar')).visibility === 'visible'",
        timeout=5000,
    )
    assert nav_link.is_visible()
    # the page's contents are always shown beside the text at this width; the contents button is not needed
    assert page.locator("#pst-secondary-sidebar nav.page-toc a").first.is_visible()
    assert not any(b.is_visible() for b in page.locator(".secondary-toggle").all())
    assert page.unexpected_errors() == []


def test_contents_button_opens_its_panel_on_a_laptop(page, site_url):
    """Between 992 and 1199 px the left sidebar is shown but the page's contents are behind their button."""
    _open(page, site_url, {"width": 1024, "height": 800})
    assert page.locator("#pst-primary-sidebar nav.bd-docs-nav a", has_text="The tuned lens").is_visible()
    _visible_button(page, ".secondary-toggle").click()
    page.wait_for_function("() => document.getElementById('pst-secondary-sidebar-modal').open", timeout=5000)
    contents = page.locator("#pst-secondary-sidebar-modal nav.page-toc a")
    assert contents.first.is_visible()
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.getElementById('pst-secondary-sidebar-modal').open", timeout=5000)
    contents.first.wait_for(state="hidden", timeout=3000)
    assert page.unexpected_errors() == []


# --- no page wider than a phone ---------------------------------------------------------------------------

WIDER_JS = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.right <= width + 1) continue;
    // not the culprit: inside a box that scrolls or clips within the screen (a table, an equation), or in a
    // fixed panel parked off-screen (the closed contents panel), which never widens the page
    let clipped = getComputedStyle(el).position === 'fixed';
    for (let p = el.parentElement; p && p !== document.body && !clipped; p = p.parentElement) {
      const style = getComputedStyle(p);
      clipped = style.position === 'fixed' ||
                (['auto', 'scroll', 'hidden', 'clip'].includes(style.overflowX) &&
                 p.getBoundingClientRect().right <= width + 1);
    }
    if (!clipped) wide.push(el.tagName.toLowerCase() + '.' + String(el.className).split(' ')[0] + ' to ' +
                           Math.round(box.right) + ' px: ' + (el.innerText || '').trim().slice(0, 50));
  }
  return {scroll: document.documentElement.scrollWidth, width: width, wide: wide.slice(0, 5)};
}"""


def _widths(page):
    page.evaluate(
        "() => Promise.all([document.fonts.ready, window.MathJax && MathJax.startup && MathJax.startup.promise])"
    )
    return page.evaluate(WIDER_JS)


def test_no_page_is_wider_than_a_phone_in_light_or_dark(page, site_url, site_dir):
    paths = built_pages(site_dir)
    assert {f"{name}.html" for name in toc_pages()} <= set(paths), "a page of the toc was not built"
    page.set_viewport_size(PHONE)
    too_wide = []
    for mode in ("light", "dark"):
        page.goto(site_url + "search.html", wait_until="load")
        page.evaluate(f"() => localStorage.setItem('mode', '{mode}')")
        for path in paths:
            page.goto(site_url + path, wait_until="load")
            assert page.evaluate("() => document.documentElement.dataset.theme") == mode, path
            found = _widths(page)
            if found["scroll"] > PHONE["width"]:
                too_wide.append(f"{path} ({mode}): {found['scroll']} px wide; {found['wide']}")
    assert page.unexpected_errors() == []
    assert too_wide == [], "pages wider than 375 px:\n" + "\n".join(too_wide)


def test_the_width_check_catches_a_wide_element(page, site_url):
    _open(page, site_url, PHONE, "book/instructors.html")
    page.evaluate("""() => { const c = document.createElement('code'); c.style.whiteSpace = 'nowrap';
        c.textContent = 'submitted/a-very-long-student-name/01-logit-lens/logit_lens.ipynb';
        document.querySelector('main p').append(c); }""")
    found = _widths(page)
    assert found["scroll"] > PHONE["width"]
    assert any("submitted/a-very-long" in line for line in found["wide"]), found


# --- the colour-mode button -------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_click_on_the_colour_button_changes_the_colours(page, site_url, scheme):
    """A first visit shows the light mode (the site's default); in a light or a dark browser alike, the first
    click and each one after it switch what is on screen (the theme's "auto" step looked the same)."""
    page.emulate_media(color_scheme=scheme)
    _open(page, site_url, DESKTOP)
    theme = lambda: page.evaluate("() => document.documentElement.dataset.theme")  # noqa: E731
    background = lambda: page.evaluate("() => getComputedStyle(document.body).backgroundColor")  # noqa: E731
    assert theme() == "light"
    button = _visible_button(page, ".theme-switch-button")
    seen = [(theme(), background())]
    for _ in range(3):
        button.click()
        seen.append((theme(), background()))
    themes = [t for t, _ in seen]
    assert themes == ["light", "dark", "light", "dark"], seen
    assert all(seen[i][1] != seen[i + 1][1] for i in range(3)), seen  # the colours really changed
    page.reload(wait_until="load")
    assert theme() == "dark"  # the choice is kept
    assert page.unexpected_errors() == []
