"""What every visible check shares: the failure type, calling the learner's function, comparing tensors."""
from __future__ import annotations

import random
from typing import Callable

import torch

from ...models import LoadedModel, load_model

# Fresh inputs for the checks: never the prompts the notebooks show.
FRESH_PROMPTS = (
    "The river that flows through Vienna is the",
    "A baker makes bread, and a carpenter makes",
    "On a cold winter morning the children built a",
    "The opposite of up is",
    "My favourite colour is blue because the sky is",
    "In chess, the piece that moves in an L shape is the",
    "She opened the door and the dog ran into the",
    "The sum of three and four is",
)


class CheckFailed(AssertionError):
    """A visible check failed: one line saying what is wrong, and a hint.

    In a notebook it shows as that one line (no traceback through the checking code); in a graded
    test cell it is an ordinary error, so the cell scores 0.
    """

    def __init__(self, name: str, what: str, hint: str = ""):
        self.name, self.what, self.hint = name, what, hint
        message = f"{name}: {what}" + (f" Hint: {hint}" if hint else "")
        super().__init__(message)

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of the traceback
        return [f"\x1b[0;31m✗ {self}\x1b[0m"]


def passed(name: str, detail: str) -> None:
    print(f"✓ {name}: {detail}")


_DEFAULT_LM: dict[str, LoadedModel] = {}


def default_lm() -> LoadedModel:
    """The default model, loaded once per process."""
    if "lm" not in _DEFAULT_LM:
        _DEFAULT_LM["lm"] = load_model()
    return _DEFAULT_LM["lm"]


def fresh_prompts(n: int, rng: random.Random | None = None) -> list[str]:
    rng = rng or random.Random()
    return rng.sample(FRESH_PROMPTS, n)


def fn_name(fn: Callable) -> str:
    return getattr(fn, "__name__", "your function")


def call(fn: Callable, *args, name: str | None = None, **kwargs):
    """Call the learner's function; turn 'not written yet' and crashes into one-line failures."""
    name = name or fn_name(fn)
    if not callable(fn):
        raise CheckFailed(name, f"expected a function, got {type(fn).__name__}.",
                          "pass the function itself, without calling it (no parentheses).")
    try:
        with torch.no_grad():
            return fn(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailed(name, "not written yet (it still raises NotImplementedError).",
                          "replace `raise NotImplementedError()` with your code.") from None
    except CheckFailed:
        raise
    except Exception as exc:  # the learner's own bug: say where, in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckFailed(name, f"raised {type(exc).__name__}: {first}".rstrip(": ") + ".",
                          "run it on the example in the cell above and read the full traceback.") from None


def as_tensor(value, name: str, what: str = "a torch.Tensor") -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise CheckFailed(name, f"expected {what}, got {type(value).__name__}.",
                          "return a tensor (torch.stack a list of tensors).")
    return value


def expect_shape(got: torch.Tensor, want: tuple[int, ...], name: str, hints: dict | None = None) -> None:
    if tuple(got.shape) == tuple(want):
        return
    hint = (hints or {}).get(tuple(got.shape), "check which dimensions you kept, dropped or swapped.")
    raise CheckFailed(name, f"wrong shape: expected {tuple(want)}, got {tuple(got.shape)}.", hint)


def close(a, b, rtol: float = 1e-3, atol: float | None = None) -> bool:
    """Same shape and equal up to float noise (``atol`` defaults to 1e-4 of ``b``'s largest entry)."""
    if not isinstance(a, torch.Tensor) or a.shape != b.shape:
        return False
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    if atol is None:
        atol = 1e-4 * max(1.0, float(b.abs().max()) if b.numel() else 1.0)
    return bool(torch.allclose(a, b, rtol=rtol, atol=atol))


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())
