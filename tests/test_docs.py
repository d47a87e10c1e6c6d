"""The repository's own guides stay true to the tree: every module has its line in docs/modules.md, and no guide
points outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES_DOC = ROOT / "docs" / "modules.md"
GUIDES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


def library_modules() -> list[str]:
    """Dotted names of lensref's modules and packages, private ones (``_x``) left out."""
    names = []
    for path in sorted((ROOT / "lensref").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(part.startswith("_") for part in parts):
            continue
        names.append(".".join(parts))
    return names


def test_every_module_is_named_in_docs_modules():
    """Each module is named by its dotted path, or by its last part (`x` or `.x`) in the row of its package."""
    text = MODULES_DOC.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    missing = []
    for name in library_modules():
        package, _, leaf = name.rpartition(".")
        in_package_row = any(
            f"`{package}" in row.split("|")[1] and (f"`{leaf}`" in row or f"`.{leaf}`" in row) for row in rows
        )
        if f"`{name}`" not in text and not in_package_row:
            missing.append(name)
    assert not missing, f"docs/modules.md names no row for: {', '.join(missing)}"


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: str(p.relative_to(ROOT)))
def test_guides_point_nowhere_outside_the_repository(guide):
    text = guide.read_text(encoding="utf-8")
    assert "../" not in re.sub(r"`[^`]*`", "", text) or "../shared" not in text
    assert "shared/seed" not in text, f"{guide.name} points outside the repository"
    assert not re.search(r"\b[Ii]ssues? #?\d+\b", text), f"{guide.name} cites a tracker number"
