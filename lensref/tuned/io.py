"""Saving and loading a tuned lens: ``translators.safetensors`` (weights) + ``config.json`` naming the model.

A lens trained for one model is meaningless for another, so loading checks the model's name, number of layers
and width against the config (and the weights' shapes against both) and refuses a mismatch in one line.
The folder is written next to its final place and renamed in, so a crash never leaves half a lens.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import LensError
from ..files import new_folder
from ..models import LoadedModel, cache_dir
from ..unembed import Unembed
from .translator import TunedLens

FORMAT = "lensref-tuned-lens"
VERSION = 1
WEIGHTS = "translators.safetensors"
CONFIG = "config.json"


def default_lens_dir(model_name: str) -> Path:
    """Where a trained lens for ``model_name`` is kept by default: ``<cache>/tuned/<model name>``."""
    safe = model_name.replace("/", "--")
    return cache_dir() / "tuned" / safe


def save_tuned_lens(
    lens: TunedLens, lm: LoadedModel, folder: str | os.PathLike[str], extra: dict[str, Any] | None = None
) -> Path:
    """Write ``lens`` for ``lm`` into ``folder`` (replaced whole if it exists); ``extra`` goes into the config."""
    from safetensors.torch import save_file

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise LensError(f"cannot save the tuned lens: {folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / CONFIG).exists():
        raise LensError(f"cannot save the tuned lens: {folder} is a non-empty folder that holds no tuned lens")
    config = {
        "format": FORMAT,
        "version": VERSION,
        "model": lm.name,
        "family": lm.adapter.family,
        "n_layers": lens.n_layers,
        "d_model": lens.d_model,
        "vocab_size": Unembed.of(lm).vocab_size,
        **(extra or {}),
    }
    with new_folder(folder, replace=True) as tmp:
        tensors = {
            "weight": lens.weight.detach().float().cpu().contiguous(),
            "bias": lens.bias.detach().float().cpu().contiguous(),
        }
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": FORMAT, "model": lm.name})
        (tmp / CONFIG).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    return folder


def read_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The config of the lens in ``folder``, or a one-line error saying why there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LensError(f"no tuned lens at {folder}: not a folder (train one with: lensref tuned train --out {folder})")
    path = folder / CONFIG
    if not path.is_file() or not (folder / WEIGHTS).is_file():
        raise LensError(f"{folder} is not a tuned lens: it needs {CONFIG} and {WEIGHTS}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LensError(f"{path} is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise LensError(f"{path} is not a lensref tuned-lens config (its format is not {FORMAT!r})")
    for key in ("model", "n_layers", "d_model"):
        if key not in config:
            raise LensError(f"{path} has no {key!r}")
    return config


def check_matches(config: dict[str, Any], lm: LoadedModel, where: str) -> None:
    """One-line error if the lens described by ``config`` was trained for another model than ``lm``."""
    have = {"model": lm.name, "n_layers": lm.n_layers, "d_model": lm.adapter.d_model}
    for key, value in have.items():
        if config[key] != value:
            raise LensError(
                f"the tuned lens at {where} is for {key.replace('_', ' ')} {config[key]!r} "
                f"({config['model']}, {config['n_layers']} layers, d_model {config['d_model']}), "
                f"but the model is {lm.name} ({lm.n_layers} layers, d_model {lm.adapter.d_model})"
            )


def load_tuned_lens(folder: str | os.PathLike[str], lm: LoadedModel) -> TunedLens:
    """Load the tuned lens in ``folder`` for ``lm`` (on ``lm``'s device, frozen). The result is a
    :data:`lensref.lens.Translator`: pass it as ``logit_lens(..., translator=lens)``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    config = read_config(folder)
    check_matches(config, lm, str(folder))
    try:
        tensors = load_file(str(Path(folder) / WEIGHTS))
    except (SafetensorError, OSError) as exc:
        raise LensError(f"{Path(folder) / WEIGHTS} is not a readable safetensors file ({exc})") from None
    L, d = lm.n_layers, lm.adapter.d_model
    expected = {"weight": (L, d, d), "bias": (L, d)}
    for name, shape in expected.items():
        got = tuple(tensors[name].shape) if name in tensors else None
        if got != shape:
            raise LensError(f"{Path(folder) / WEIGHTS}: {name} has shape {got}, expected {shape} for {lm.name}")
    lens = TunedLens(L, d)
    with torch.no_grad():
        lens.weight.copy_(tensors["weight"])
        lens.bias.copy_(tensors["bias"])
    lens.requires_grad_(False)
    lens.eval()
    return lens.to(lm.device)
