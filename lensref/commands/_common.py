"""Options and output helpers shared by several subcommands."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..errors import LensError


def add_model_options(parser) -> None:
    parser.add_argument("--model", default=None, help="model: default SmolLM2-135M-Instruct; a local folder or hub id")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")


def add_pair_options(parser) -> None:
    """``--target`` and ``--distractor``: the two single tokens a logit difference compares."""
    parser.add_argument("--target", required=True, help="one token, e.g. ' Paris' (leading space matters)")
    parser.add_argument("--distractor", required=True, help="one token to compare with, e.g. ' London'")


def write_atomically(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and rename: never a half-written file."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise LensError(f"cannot write {path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, data) -> None:
    write_atomically(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
