"""The browser's copy of the default model: the lens graph, the tokenizer and a manifest, cached on disk.

:func:`default_bundle` exports :func:`lensref.load_model`'s default model once into
``<cache>/onnx/<model>-<key>/`` (``lens.onnx``, ``tokenizer.json``, ``tokenizer_config.json``, ``manifest.json``),
where ``key`` hashes the model's weights and config and this package's source: a rebuild of the site reuses it, and
a new exporter or new weights make a new one. The book's "Try the lens" page copies the folder into the site.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LensError
from ..files import new_folder, write_json
from ..models import DEFAULT_MODEL, cache_dir, default_model_folder, load_model
from .onnx_lens import build_lens_graph

MODEL_FILE = "lens.onnx"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
MAX_TOKENS = 64  # the page's longest prompt
CHUNK_POSITIONS = 16  # positions per run: the [L+1, 16, V] float32 tensors of one run are ~100 MB each in WASM
SOURCE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Bundle:
    """A finished export: its folder and what its manifest says."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def files(self) -> list[Path]:
        """The bundle's files: the ONNX model, the tokenizer's files and the manifest."""
        return [self.folder / name for name in (MODEL_FILE, *TOKENIZER_FILES, "manifest.json")]


def _digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def bundle_key(model_folder: Path) -> str:
    """A short hash of the model's weights and config and of the exporter's source files."""
    weights = sorted(model_folder.glob("*.safetensors")) + [model_folder / "config.json"]
    source = sorted(SOURCE.glob("*.py"))
    return _digest(weights)[:12] + "-" + _digest(source)[:8]


def default_bundle(cache: Path | None = None) -> Bundle:
    """The default model's export, made on first use (about 10 s) and read from the cache afterwards."""
    model_folder = default_model_folder()
    folder = (cache or cache_dir()) / "onnx" / f"{DEFAULT_MODEL}-{bundle_key(model_folder)}"
    if not (folder / "manifest.json").exists():
        export_bundle(folder, model_folder)
    return Bundle(folder, json.loads((folder / "manifest.json").read_text(encoding="utf-8")))


def export_bundle(folder: Path, model_folder: Path) -> None:
    """Export the model in ``model_folder`` (a transformers folder with its tokenizer) into ``folder``, atomically."""
    for name in TOKENIZER_FILES:
        if not (model_folder / name).exists():
            raise LensError(f"cannot export {model_folder}: it has no {name}")
    lm = load_model(str(model_folder)) if model_folder != default_model_folder() else load_model()
    proto, summary = build_lens_graph(lm)
    with new_folder(folder, replace=True) as tmp:
        (tmp / MODEL_FILE).write_bytes(proto.SerializeToString())
        for name in TOKENIZER_FILES:
            shutil.copyfile(model_folder / name, tmp / name)
        manifest = {
            "model": lm.name,
            "model_file": MODEL_FILE,
            "model_bytes": (tmp / MODEL_FILE).stat().st_size,
            "max_tokens": MAX_TOKENS,
            "chunk_positions": CHUNK_POSITIONS,
            "key": folder.name,
            "weights": "blocks 4-bit (32-weight blocks, float16 scale and minimum), embedding 8-bit (32-weight "
            "blocks, float16 scale), shared by the lookup and the tied unembedding; float32 arithmetic",
            **summary,
        }
        write_json(tmp / "manifest.json", manifest)
        for path in tmp.iterdir():
            path.chmod(0o644)  # served by a web server: readable by all
