"""Values that cross the sandbox wall: JSON plus one safetensors file, never pickle, checked on the way in.

``save(stem, value)`` writes ``stem.json`` and ``stem.safetensors``; ``load(stem)`` reads them back, refusing
anything that is not plain data: None, bools, numbers, strings, lists, tuples, string-keyed dicts and tensors.
The reader treats both files as hostile: sizes are capped, every marker is checked, unknown shapes are errors.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

MAX_JSON_BYTES = 16 * 2**20
MAX_TENSOR_BYTES = 1024 * 2**20
MAX_DEPTH = 20


class WireError(ValueError):
    """The data is not a plain value this format can carry (one line)."""


def encode(value: Any, tensors: dict[str, torch.Tensor], depth: int = 0) -> Any:
    """``value`` as a JSON tree, its tensors moved into ``tensors`` by key (a view copied); :class:`WireError` for
    anything that is not plain data."""
    import torch

    if depth > MAX_DEPTH:
        raise WireError("nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else {"__float__": repr(float(value))}
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        tensor = value.detach().to("cpu")
        storage = tensor.untyped_storage()
        whole = tensor.is_contiguous() and tensor.storage_offset() == 0 and tensor.nbytes == storage.nbytes()
        shared = any(t.untyped_storage().data_ptr() == storage.data_ptr() for t in tensors.values())
        tensors[key] = tensor if whole and not shared else tensor.clone().contiguous()  # copy views only
        return {"__tensor__": key}
    if type(value).__module__ == "numpy":
        import numpy as np

        if isinstance(value, np.ndarray):
            return encode(torch.from_numpy(value.copy()), tensors, depth + 1)
        return encode(value.item(), tensors, depth + 1)
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, tensors, depth + 1) for v in value]}
    if isinstance(value, list):
        return [encode(v, tensors, depth + 1) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise WireError("a dict with non-string keys")
        return {"__dict__": {k: encode(v, tensors, depth + 1) for k, v in value.items()}}
    raise WireError(f"a {type(value).__name__}, which is not plain data")


def decode(tree: Any, tensors: dict[str, torch.Tensor], depth: int = 0) -> Any:
    """The value a JSON tree stands for, its tensors taken from ``tensors``; :class:`WireError` for an unknown shape
    or marker."""
    if depth > MAX_DEPTH:
        raise WireError("nested too deeply")
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if isinstance(tree, list):
        return [decode(v, tensors, depth + 1) for v in tree]
    if isinstance(tree, dict) and len(tree) == 1:
        ((marker, inner),) = tree.items()
        if marker == "__tensor__" and isinstance(inner, str) and inner in tensors:
            return tensors[inner]
        if marker == "__tuple__" and isinstance(inner, list):
            return tuple(decode(v, tensors, depth + 1) for v in inner)
        if marker == "__dict__" and isinstance(inner, dict):
            return {str(k): decode(v, tensors, depth + 1) for k, v in inner.items()}
        if marker == "__float__" and isinstance(inner, str) and _is_number(inner):
            return float(inner)
    raise WireError("unexpected data")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _write(path: Path, data: bytes) -> None:
    from ...files import replacing

    with replacing(path) as tmp:
        tmp.write_bytes(data)


def save(stem: Path, value: Any) -> None:
    """Write ``value`` as ``stem.json`` (+ ``stem.safetensors`` when it holds tensors), each atomically."""
    from safetensors.torch import save_file

    from ...files import replacing

    tensors: dict[str, torch.Tensor] = {}
    tree = encode(value, tensors)
    stem = Path(stem)
    if tensors:
        with replacing(stem.with_suffix(".safetensors")) as tmp:
            save_file(tensors, str(tmp))  # streamed to the file: no second copy in memory
    _write(stem.with_suffix(".json"), json.dumps({"value": tree}).encode())


def load(stem: Path) -> Any:
    """Read what :func:`save` wrote; raise :class:`WireError` (one line) for anything else."""
    stem = Path(stem)
    text_path, tensor_path = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
    if not text_path.is_file() or text_path.is_symlink():
        raise WireError("no result was written")
    if text_path.stat().st_size > MAX_JSON_BYTES:
        raise WireError("the result is too large")
    tensor_bytes = None
    if tensor_path.is_file() and not tensor_path.is_symlink():
        if tensor_path.stat().st_size > MAX_TENSOR_BYTES:
            raise WireError("the returned tensors are too large")
        tensor_bytes = tensor_path.read_bytes()
    return loads(text_path.read_bytes(), tensor_bytes)


def loads(text: bytes | None, tensor_bytes: bytes | None = None) -> Any:
    """:func:`load` from the two files' bytes (None: that file is missing), as a run's result carries them."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_tensors

    if text is None:
        raise WireError("no result was written")
    if len(text) > MAX_JSON_BYTES:
        raise WireError("the result is too large")
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise WireError("the result is not valid JSON") from None
    tensors: dict[str, torch.Tensor] = {}
    if tensor_bytes is not None:
        if len(tensor_bytes) > MAX_TENSOR_BYTES:
            raise WireError("the returned tensors are too large")
        try:
            tensors = load_tensors(tensor_bytes)
        except (SafetensorError, ValueError, OSError) as exc:
            raise WireError(f"the tensor file is not valid safetensors ({str(exc)[:80]})") from None
    if not isinstance(doc, dict) or "value" not in doc:
        raise WireError("unexpected data")
    return decode(doc["value"], tensors)
