"""The Exercises page in a real browser: in the table of contents after the lesson, reached from the end of
every chapter an exercise belongs to, its downloads byte-identical to exercises/, the course's wheel (with the two
commands) and source archive, and the commands to run them; the intro page's first screen points to them."""

from __future__ import annotations

import io
import json
import re
import tarfile
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PAGE = "book/exercises.html"
RELEASE = sorted((ROOT / "exercises").glob("*/*.ipynb"))
VERSION = version("lensref")  # pyproject.toml's, through the installed package
WHEEL = f"lensref-{VERSION}-py3-none-any.whl"
SDIST = f"lensref-{VERSION}.tar.gz"
# the chapters whose end links to an assignment
CHAPTER_EXERCISE = {
    "residual_stream": "exercise-01-logit-lens",
    "logit_lens": "exercise-01-logit-lens",
    "what_you_see": "exercise-02-reading-the-grid",
    "reading_honestly": "exercise-02-reading-the-grid",
    "tuned_lens": "exercise-03-variants",
    "logit_difference": "exercise-03-variants",
    "dla": "exercise-03-variants",
    "patchscopes": "exercise-03-variants",
}


def test_toc_puts_exercises_after_the_lesson_chapters():
    files = [entry["file"] for entry in yaml.safe_load((ROOT / "_toc.yml").read_text())["chapters"]]
    assert files.index("book/exercises") == files.index("book/patchscopes") + 1
    assert files.index("book/exercises") < files.index("book/quiz")


def test_every_notebook_and_the_zip_download_byte_identical(page, site_url):
    page.goto(site_url + PAGE)
    assert page.locator("main article h1").inner_text().startswith("Exercises")
    assert len(RELEASE) == 3
    for path in RELEASE:
        link = page.locator("main a.download", has_text=path.name)
        assert link.count() == 1, path.name
        with page.expect_download() as info:
            link.click()
        download = info.value
        assert download.suggested_filename == path.name
        assert Path(download.path()).read_bytes() == path.read_bytes(), f"{path.name} differs from {path}"

    with page.expect_download() as info:
        page.locator("main a.download", has_text="logit-lens-exercises.zip").click()
    assert info.value.suggested_filename == "logit-lens-exercises.zip"
    with zipfile.ZipFile(io.BytesIO(Path(info.value.path()).read_bytes())) as z:
        assert z.testzip() is None
        assert sorted(z.namelist()) == [f"my-work/{p.parent.name}/{p.name}" for p in RELEASE]
        for p in RELEASE:
            assert z.read(f"my-work/{p.parent.name}/{p.name}") == p.read_bytes()
    assert page.unexpected_errors() == [] and page.external_requests == []


def test_page_gives_points_and_the_commands_in_order(page, site_url):
    page.goto(site_url + PAGE)
    rows = page.locator("main table tbody tr").all()
    points = {}
    for path in RELEASE:
        cells = json.loads(path.read_text())["cells"]
        points[path.parent.name] = sum(
            c["metadata"].get("nbgrader", {}).get("points", 0)
            for c in cells
            if c["metadata"].get("nbgrader", {}).get("grade")
        )
    shown = [int(row.locator("td").nth(1).inner_text()) for row in rows]
    assert shown == [points[a] for a in sorted(points)] == [10, 5, 8]
    for assignment, total in points.items():
        assert f"{assignment}, {total} points" in page.inner_text("main")
    code = page.locator("main pre").all_inner_texts()
    commands = [line.strip() for block in code for line in block.splitlines()]
    order = [
        next(i for i, c in enumerate(commands) if c.startswith(start))
        for start in (
            f"pip install {WHEEL}",
            "lensref lab",
            "make lab",
            "lensref check lensref-course/",
            "lensref submit lensref-course/",
        )
    ]
    assert order == sorted(order), commands
    assert page.unexpected_errors() == [] and page.external_requests == []


@pytest.mark.parametrize("chapter", sorted(CHAPTER_EXERCISE))
def test_chapter_ends_with_a_link_to_its_exercise(page, site_url, chapter):
    page.goto(site_url + f"book/{chapter}.html")
    last = page.locator("main article p").last
    link = last.locator(f"a[href='exercises.html#{CHAPTER_EXERCISE[chapter]}']")
    assert link.count() == 1, f"{chapter}: its last paragraph does not link to {CHAPTER_EXERCISE[chapter]}"
    link.click()
    page.wait_for_url(f"**/{PAGE}#{CHAPTER_EXERCISE[chapter]}")
    heading = page.locator(f"[id='{CHAPTER_EXERCISE[chapter]}'] + h2")
    assert heading.inner_text().startswith("Assignment")
    assert heading.is_visible() and 0 <= heading.bounding_box()["y"] < page.viewport_size["height"]
    assert page.external_requests == []


def _download(page, text: str) -> tuple[str, bytes]:
    links = page.locator("main a.download", has_text=text)
    assert links.count() >= 1, text
    with page.expect_download() as info:
        links.first.click()
    return info.value.suggested_filename, Path(info.value.path()).read_bytes()


def test_two_commands_and_the_wheel_holding_the_notebooks(page, site_url):
    page.goto(site_url + PAGE)
    blocks = [block.strip().splitlines() for block in page.locator("main pre").all_inner_texts()]
    assert [f"pip install {WHEEL}", "lensref lab"] in [[line.strip() for line in b] for b in blocks], blocks
    name, data = _download(page, WHEEL)
    assert name == WHEEL
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        for path in RELEASE:
            assert z.read(f"lensref/course/notebooks/{path.parent.name}/{path.name}") == path.read_bytes()
        assert any(n.endswith(".dist-info/entry_points.txt") and b"lensref" in z.read(n) for n in z.namelist())
        assert not [n for n in z.namelist() if "solutions" in n]
    name, data = _download(page, SDIST)
    assert name == SDIST
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        members = {m.name.split("/", 1)[1] for m in t.getmembers() if m.isfile()}
    assert {"Makefile", "README.md", "solutions/01-logit-lens/logit_lens.ipynb"} <= members
    assert page.unexpected_errors() == [] and page.external_requests == []


def test_intro_first_screen_says_where_to_get_the_course(page, site_url):
    page.goto(site_url + "book/intro.html")
    box = page.locator("main .admonition", has_text="Get the course")
    assert box.count() == 1
    top = box.bounding_box()
    assert top is not None and top["y"] + top["height"] <= page.viewport_size["height"], top  # the first screen
    text = " ".join(box.inner_text().split())
    assert re.search(rf"pip install {re.escape(WHEEL)},? then lensref lab", text), text
    assert "README" in text and "make book" in text
    assert _download(page, WHEEL)[0] == WHEEL
    assert box.locator("a.download", has_text=SDIST).count() == 1
    link = box.locator("a[href*='exercises-install']")
    assert link.count() == 1
    link.click()
    page.wait_for_url("**/book/exercises.html#exercises-install")
    assert page.unexpected_errors() == [] and page.external_requests == []
