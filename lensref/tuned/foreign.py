"""Tuned lenses in the format of the ``tuned-lens`` package (Belrose et al.): a folder with ``config.json`` and
``params.pt``.

Its ``params.pt`` is a torch pickle of the translators' state dict (``"{l}.weight" [d, d]``, ``"{l}.bias" [d]`` for
``l < L``); it is read with ``weights_only=True``, so a file that holds anything but tensors is refused instead of
run. That package adds its translator residually, ``h + (h @ A.T + b)``, where lensref's maps are
``h @ W.T + b``: so ``W = I + A``, and the two lenses give the same logits. The model the lens was trained for is
named by ``base_model_name_or_path``; the width and depth are checked against the model it is loaded for.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import torch

from ..errors import LensError
from ..files import new_folder
from ..models import LoadedModel
from .translator import TunedLens

CONFIG = "config.json"
PARAMS = "params.pt"
LENS_TYPE = "linear_tuned_lens"


def read_package_lens(folder: str | os.PathLike[str], lm: LoadedModel) -> TunedLens:
    """The lens the ``tuned-lens`` package saved in ``folder``, as lensref's :class:`TunedLens` for ``lm``."""
    folder = Path(folder)
    config_path, params_path = folder / CONFIG, folder / PARAMS
    if not config_path.is_file() or not params_path.is_file():
        raise LensError(f"{folder} is not a tuned-lens package lens: it needs {CONFIG} and {PARAMS}")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LensError(f"{config_path} is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(config, dict) or config.get("lens_type", LENS_TYPE) != LENS_TYPE:
        raise LensError(f"{config_path} is not a linear tuned lens of the tuned-lens package")
    L, d = lm.n_layers, lm.adapter.d_model
    got = (config.get("num_hidden_layers"), config.get("d_model"))
    if got != (L, d):
        raise LensError(
            f"the lens at {folder} is for {got[0]} layers of width {got[1]} "
            f"({config.get('base_model_name_or_path')}), but {lm.name} has {L} layers of width {d}"
        )
    try:
        state = torch.load(params_path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LensError(f"{params_path} is not a tensors-only torch file ({first})") from None
    lens = TunedLens(L, d)
    eye = torch.eye(d)
    with torch.no_grad():
        for layer in range(L):
            weight = state.get(f"{layer}.weight") if isinstance(state, dict) else None
            if not isinstance(weight, torch.Tensor) or tuple(weight.shape) != (d, d):
                raise LensError(f"{params_path}: no [{d}, {d}] translator weight for layer {layer}")
            bias = state.get(f"{layer}.bias")
            lens.weight[layer] = eye + weight.float()
            lens.bias[layer] = torch.zeros(d) if bias is None else bias.float()
    lens.requires_grad_(False)
    lens.eval()
    return lens.to(lm.device)


def write_package_lens(lens: TunedLens, lm: LoadedModel, folder: str | os.PathLike[str]) -> Path:
    """Write ``lens`` into ``folder`` in the ``tuned-lens`` package's format (replacing a lens already there)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise LensError(f"cannot export the tuned lens: {folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / CONFIG).exists():
        raise LensError(f"cannot export the tuned lens: {folder} is a non-empty folder that holds no lens")
    eye = torch.eye(lens.d_model)
    state = {}
    for layer in range(lens.n_layers):
        state[f"{layer}.weight"] = (lens.weight[layer].detach().float().cpu() - eye).contiguous()
        state[f"{layer}.bias"] = lens.bias[layer].detach().float().cpu().contiguous()
    config = {
        "base_model_name_or_path": lm.name,
        "d_model": lens.d_model,
        "num_hidden_layers": lens.n_layers,
        "bias": True,
        "base_model_revision": None,
        "unembed_hash": None,  # the package then skips its check that the unembedding matches
        "lens_type": LENS_TYPE,
    }
    with new_folder(folder, replace=True) as tmp:
        torch.save(state, tmp / PARAMS)
        (tmp / CONFIG).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    return folder
