"""lensref: the reference implementation behind the Logit Lens course.

``import lensref`` is cheap: it imports neither torch nor transformers. The names below are loaded from their
modules on first use (``lensref.logit_lens`` imports :mod:`lensref.lens`, and torch with it), so the parts of
the course that need no model (the quiz, its web page and exports) start in a fraction of a second.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import LensError

# public name -> the module that defines it
_EXPORTS = {
    "Adapter": "adapters",
    "adapter_for": "adapters",
    "supported_families": "adapters",
    "LensResult": "lens",
    "logit_lens": "lens",
    "read_states": "readout",
    "DEFAULT_MODEL": "models",
    "LoadedModel": "models",
    "load_model": "models",
    "tiny_model": "models",
    "Residuals": "residual",
    "capture_residuals": "residual",
    "Unembed": "unembed",
    "BlockWrites": "hooks",
    "capture_block_writes": "hooks",
    "as_loaded_model": "interop",
    "format_table": "tables",
}

__all__ = [
    "LensError",
    "__version__",
    "Adapter",
    "adapter_for",
    "supported_families",
    "LensResult",
    "logit_lens",
    "read_states",
    "DEFAULT_MODEL",
    "LoadedModel",
    "load_model",
    "tiny_model",
    "Residuals",
    "capture_residuals",
    "Unembed",
    "BlockWrites",
    "capture_block_writes",
    "as_loaded_model",
    "format_table",
]

if TYPE_CHECKING:
    __version__: str
    from .adapters import Adapter, adapter_for, supported_families
    from .hooks import BlockWrites, capture_block_writes
    from .interop import as_loaded_model
    from .lens import LensResult, logit_lens
    from .models import DEFAULT_MODEL, LoadedModel, load_model, tiny_model
    from .readout import read_states
    from .residual import Residuals, capture_residuals
    from .tables import format_table
    from .unembed import Unembed


def _version() -> str:
    """The installed distribution's version: pyproject.toml is the one place it is written."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lensref")
    except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
        globals()[name] = value
        return value
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lensref' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
