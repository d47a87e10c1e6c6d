"""Fixtures for driving the built book in a real browser (Debian chromium through playwright).

- ``site_dir``: the built site. ``$LENSREF_SITE_DIR`` if set; else the repository's ``_build/html``, built
  with ``jupyter-book build . -W`` first when it is missing.
- ``site_url``: the site served from 127.0.0.1 by a local ``http.server`` thread (base URL, ending in ``/``).
- ``browser``: one headless chromium for the session (``/usr/bin/chromium``; never ``playwright install``).
- ``page``: a fresh page that records ``page.external_requests`` (every request to a host other than
  127.0.0.1; they are also blocked, so nothing leaves the machine) and ``page.console_errors`` (console
  errors and uncaught exceptions), and ``page.unexpected_errors()``: all of them (the site's configuration keeps the theme silent,
  see book/_ext/offline_site.py). A test
  that ends with an external request fails at teardown.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[2]
LOCAL_HOST = "127.0.0.1"


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def site_dir() -> Path:
    env = os.environ.get("LENSREF_SITE_DIR")
    if env:
        path = Path(env)
        if not (path / "index.html").exists():
            pytest.fail(f"LENSREF_SITE_DIR={env} holds no built site (no index.html)")
        return path
    path = ROOT / "_build" / "html"
    if not (path / "index.html").exists():
        jb = Path(sys.executable).with_name("jupyter-book")
        proc = subprocess.run([str(jb), "build", ".", "-W"], cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0 or not (path / "index.html").exists():
            tail = (proc.stdout + proc.stderr)[-3000:]
            pytest.fail(f"building the book failed (exit {proc.returncode}):\n{tail}")
    return path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep test output clean
        pass


@pytest.fixture(scope="session")
def site_url(site_dir):
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    server = ThreadingHTTPServer((LOCAL_HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOCAL_HOST}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (scripts/install-system-packages.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "javascript"):
        return True
    return parts.hostname == LOCAL_HOST


def open_guarded_page(browser, **context_options):
    """A page in a browser context of its own that records every request's URL (``page.requests``), blocks and
    records requests to other hosts (``page.external_requests``), and records console errors and uncaught
    exceptions (``page.console_errors``; ``page.unexpected_errors()``); ``page.close_guarded()`` closes the context
    and fails the test if the page asked another host for anything. Returns ``(context, page)``."""
    context = browser.new_context(**context_options)
    pg = context.new_page()
    pg.requests = []
    pg.external_requests = []
    pg.console_errors = []

    def guard(route, request):
        pg.requests.append(request.url)
        if is_local(request.url):
            route.continue_()
        else:
            pg.external_requests.append(request.url)
            route.abort()

    context.route("**/*", guard)
    pg.on("console", lambda msg: pg.console_errors.append(msg.text) if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: pg.console_errors.append(f"uncaught: {exc}"))
    pg.unexpected_errors = lambda: list(pg.console_errors)
    pg.close_guarded = functools.partial(close_guarded_page, context, pg)
    return context, pg


def close_guarded_page(context, pg) -> None:
    """Close the page's context; the test fails if the page asked another host for anything."""
    context.close()
    if pg.external_requests:
        pytest.fail(f"requests to other hosts: {pg.external_requests}")


@pytest.fixture(scope="session")
def guarded_page(browser):
    """``open_guarded_page`` on the session's browser, for fixtures of a wider scope than ``page``."""
    return functools.partial(open_guarded_page, browser)


@pytest.fixture
def page(browser):
    context, pg = open_guarded_page(browser)
    try:
        yield pg
    finally:
        close_guarded_page(context, pg)
