"""The "Try the lens" page's files, made by every build of the site (a small Sphinx extension).

At the end of an HTML build this copies into ``_static/try-lens/``:

- ``model/``: the default model's lens as ONNX, its tokenizer and a manifest (:func:`lensref.export.default_bundle`,
  exported once and cached under the model cache, keyed by the weights and the exporter's source);
- ``vendor/``: onnxruntime-web's WASM build and the tokenizer library, from ``node_modules/``, which ``npm ci``
  installs from the committed ``package-lock.json`` when it is missing or older than the lock file.

Nothing is downloaded from a model hub, and the page asks no other host for anything. The page's own script, worker
and stylesheet live in ``book/_static/try-lens/`` (copied with the rest of ``book/_static``); this extension adds
them to that one page.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from sphinx.errors import ExtensionError

ROOT = Path(__file__).resolve().parents[2]
PAGE = "book/try_lens"
NODE_MODULES = ROOT / "node_modules"
STAMP = NODE_MODULES / ".lensref-lock.sha256"
# What the page loads from the npm packages: the WASM build of onnxruntime-web (ES module, its loader and the
# SIMD binary, which also runs single-threaded) and the tokenizer library.
VENDOR = {
    "ort/ort.wasm.min.mjs": "onnxruntime-web/dist/ort.wasm.min.mjs",
    "ort/ort-wasm-simd-threaded.mjs": "onnxruntime-web/dist/ort-wasm-simd-threaded.mjs",
    "ort/ort-wasm-simd-threaded.wasm": "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
    "tokenizers.min.mjs": "@huggingface/tokenizers/dist/tokenizers.min.mjs",
    "tokenizers-LICENSE": "@huggingface/tokenizers/LICENSE",
}


def _lock_digest() -> str:
    return hashlib.sha256((ROOT / "package-lock.json").read_bytes()).hexdigest()


def install_runtime() -> None:
    """``npm ci`` unless ``node_modules`` already holds what ``package-lock.json`` pins."""
    digest = _lock_digest()
    if (
        STAMP.exists()
        and STAMP.read_text().strip() == digest
        and all((NODE_MODULES / p).exists() for p in VENDOR.values())
    ):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise ExtensionError(
            "npm is not installed: the Try the lens page installs onnxruntime-web with it (apt install npm)"
        )
    proc = subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=ROOT, capture_output=True, text=True
    )
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
        raise ExtensionError(f"npm ci failed for the Try the lens page's runtime: {lines[-1]}")
    STAMP.write_text(digest + "\n")


def _copy(source: Path, target: Path) -> None:
    """Copy unless ``target`` already is the same file (same size and modification time): rebuilds stay quick."""
    if target.exists():
        a, b = source.stat(), target.stat()
        if a.st_size == b.st_size and int(a.st_mtime) == int(b.st_mtime):
            return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def _write_site_files(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    from lensref.errors import LensError
    from lensref.export import default_bundle

    install_runtime()
    try:
        bundle = default_bundle()
    except LensError as exc:
        raise ExtensionError(f"could not export the model for the Try the lens page: {exc}") from None
    out = Path(app.outdir) / "_static" / "try-lens"
    for name, source in VENDOR.items():
        _copy(NODE_MODULES / source, out / "vendor" / name)
    for path in bundle.files:
        _copy(path, out / "model" / path.name)


def _page_assets(app, pagename, templatename, context, doctree) -> None:
    if pagename == PAGE:
        app.add_css_file("try-lens/try-lens.css")
        app.add_js_file("try-lens/try-lens.js", type="module")


def setup(app):
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app.connect("html-page-context", _page_assets)
    app.connect("build-finished", _write_site_files)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
