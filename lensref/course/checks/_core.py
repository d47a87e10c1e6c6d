"""What every check shares: the failure type, naming a model as data, calling the learner's function,
the :class:`Exercise` contract (cases as data, inputs rebuilt from them, a judge of returned values) and the
visible check that runs them all in one process.

The split lets grading run the learner's code in a sandbox and judge elsewhere: ``cases()`` are typed records
(:class:`Case`) that travel as plain data, ``inputs(case)`` rebuilds the arguments deterministically on either
side, and ``judge(case, got)`` sees only the returned value (after a JSON/safetensors round trip) and computes its
own reference. The visible check, :func:`run_check`, does the same steps in the learner's kernel.
"""

from __future__ import annotations

import functools
import inspect
import math
import random
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Generic, Literal, TypeVar, Union

import numpy as np
import torch

from ...errors import LensError
from ...models import TINY_FAMILIES, LoadedModel, load_model, tiny_model
from ...residual import capture_residuals
from ...tokens import encode_prompt

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
    """A check failed: one line saying what is wrong, and a hint.

    In a notebook it shows as that one line (no traceback through the checking code); in a graded
    test cell it is an ordinary error, so the cell scores 0.
    """

    def __init__(self, name: str, what: str, hint: str = ""):
        self.name, self.what, self.hint = name, what, hint
        message = f"{name}: {what}" + (f" Hint: {hint}" if hint else "")
        super().__init__(" ".join(message.split("\n")))

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of the traceback
        return [f"\x1b[0;31m✗ {self}\x1b[0m"]


def passed(name: str, detail: str) -> None:
    print(f"✓ {name}: {detail}")


# --- naming a model as data -----------------------------------------------------------------------------

_MODELS: dict[ModelRef, LoadedModel] = {}


@dataclass(frozen=True)
class ModelRef:
    """Which model a case uses, as data: ``family`` None is the default model (:func:`lensref.load_model`),
    otherwise ``lensref.tiny_model(family, seed=seed)``. Both are deterministic, so the sandbox and the judge
    rebuild the same weights from the same two fields."""

    family: str | None = None
    seed: int = 0

    def load(self) -> LoadedModel:
        """The model, loaded once per process (the object :meth:`of` last saw for this name, if any)."""
        lm = _MODELS.get(self)
        if lm is None:
            lm = load_model() if self.family is None else tiny_model(self.family, seed=self.seed)
            _MODELS[self] = lm
        return lm

    def to_data(self) -> dict[str, Any]:
        return {"family": self.family, "seed": 0 if self.family is None else self.seed}

    @staticmethod
    def from_data(d: Any) -> ModelRef:
        if not isinstance(d, dict) or set(d) != {"family", "seed"}:
            raise LensError(f"a model must be named as {{'family': ..., 'seed': ...}}, got {d!r}")
        family, seed = d["family"], d["seed"]
        if family is not None and family not in TINY_FAMILIES:
            raise LensError(f"unknown tiny model family {family!r}; choose from {', '.join(TINY_FAMILIES)}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise LensError(f"a model seed must be an int, got {seed!r}")
        return ModelRef(family, seed if family is not None else 0)

    @staticmethod
    def of(lm: LoadedModel | ModelRef | dict[str, Any] | None) -> ModelRef:
        """The name of ``lm``: None is the default model; a model made by ``load_model()`` or ``tiny_model()``
        knows its own name (and serves the cases that use that name in this process)."""
        if lm is None:
            return ModelRef()
        if isinstance(lm, ModelRef):
            return lm
        if isinstance(lm, dict):
            return ModelRef.from_data(lm)
        recipe = getattr(lm, "recipe", None)
        if not isinstance(lm, LoadedModel) or recipe is None:
            name = getattr(lm, "name", type(lm).__name__)
            raise LensError(
                f"the checks cannot name the model {name!r}: use lensref.load_model() "
                "or lensref.tiny_model(family, seed=...)"
            )
        ref = ModelRef.from_data(recipe)
        _MODELS[ref] = lm
        return ref


def default_lm() -> LoadedModel:
    """The default model, loaded once per process."""
    return ModelRef().load()


def case_model(lm: LoadedModel | ModelRef | None) -> ModelRef:
    """The name a case records for ``lm``: :meth:`ModelRef.of`, as its data names it (the default model's seed is
    0), so the record survives its JSON round trip unchanged."""
    return ModelRef.from_data(ModelRef.of(lm).to_data())


# --- cases: typed records that travel as plain data ---------------------------------------------------------

CaseT = TypeVar("CaseT", bound="Case")


@dataclass(frozen=True)
class Case:
    """One case of an exercise: a frozen record naming a model, prompts, seeds and sizes (never tensors).

    Records rather than dicts, so that each exercise states its cases' fields and types once, and mypy checks every
    read of them. Grading draws them here, writes :meth:`to_data` (JSON-ready) for the sandbox and the judge
    process, and rebuilds them there with :meth:`from_data`, which refuses a malformed case in one line: the
    sandbox/judge boundary is where a wrong field would otherwise surface as a confusing error deep in a judge.
    Tuples in a record are lists in its data; a model is a :class:`ModelRef`, named as
    ``{"family": ..., "seed": ...}``.
    """

    def to_data(self) -> dict[str, Any]:
        """The record as plain data (``json.dumps`` works)."""
        return {f.name: _to_plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_data(cls: type[CaseT], d: Any) -> CaseT:
        """The record :meth:`to_data` gave ``d``; a :class:`LensError` (one line) names what is wrong."""
        kind = f"a case of type {cls.__name__}"
        if not isinstance(d, dict):
            raise LensError(f"{kind} must be a dict of its fields, got {type(d).__name__}")
        hints = _field_types(cls)
        unknown, missing = sorted(set(d) - set(hints), key=str), [name for name in hints if name not in d]
        if unknown:
            raise LensError(f"{kind} has unknown field(s) {', '.join(map(repr, unknown))}")
        if missing:
            raise LensError(f"{kind} is missing field(s) {', '.join(map(repr, missing))}")
        values = {}
        for name, hint in hints.items():
            try:
                values[name] = _from_plain(hint, d[name])
            except _Mismatch:
                raise LensError(f"{kind}: field {name!r} must be {_describe(hint)}, got {_short(d[name])}") from None
            except LensError as exc:  # a model's own check (an unknown family)
                raise LensError(f"{kind}: field {name!r}: {exc}") from None
        return cls(**values)


class _Mismatch(Exception):
    """A value of the wrong type for its field (:meth:`Case.from_data` says which)."""


def _field_types(cls: type[Case]) -> dict[str, Any]:
    """A record's fields and their types, in order."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _to_plain(value: Any) -> Any:
    if isinstance(value, ModelRef):
        return value.to_data()
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value


def _from_plain(hint: Any, value: Any) -> Any:
    """``value`` (plain data) as a field of type ``hint``, or :class:`_Mismatch`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is ModelRef:
        if not isinstance(value, dict) or set(value) != {"family", "seed"}:
            raise _Mismatch()
        return ModelRef.from_data(value)
    if hint is type(None):
        ok = value is None
    elif hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is str:
        ok = isinstance(value, str)
    elif origin is Literal:
        ok = any(type(value) is type(a) and value == a for a in args)
    elif origin in (Union, types.UnionType):
        for arg in args:
            try:
                return _from_plain(arg, value)
            except _Mismatch:
                pass
        raise _Mismatch()
    elif origin is tuple:  # records hold only tuples of any length, tuple[X, ...]
        if not isinstance(value, (list, tuple)):
            raise _Mismatch()
        return tuple(_from_plain(args[0], v) for v in value)
    else:  # a record declared a field type this function does not know: the record's bug, not the data's
        raise TypeError(f"a case field cannot have the type {hint!r}")
    if not ok:
        raise _Mismatch()
    return value


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is ModelRef:
        return "a model named as {'family': ..., 'seed': ...}"
    if hint is type(None):
        return "None"
    if origin is Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is tuple:
        return f"a list of {args[0].__name__}s"
    return f"{'an' if hint is int else 'a'} {hint.__name__}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class ModelCase(Case):
    """A case run on a model: the records whose prompts :func:`captured` reads."""

    lm: ModelRef


@dataclass(frozen=True)
class PromptCase(ModelCase):
    """A prompt on a model."""

    prompt: str


def model_of(case: ModelCase) -> LoadedModel:
    return case.lm.load()


@functools.lru_cache(maxsize=64)
def _captured(ref: ModelRef, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
    lm = ref.load()
    res = capture_residuals(lm, encode_prompt(lm.tokenizer, prompt))
    assert res.logits is not None
    return res.states[:, 0].detach().cpu(), res.logits[0].detach().cpu()


def captured(case: ModelCase, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(states [L+1, T, d], logits [T, V])`` of ``prompt`` on the case's model: one forward pass per model and
    prompt per process (fresh copies each call, so a learner that edits its input in place changes nothing)."""
    states, logits = _captured(case.lm, prompt)
    return states.clone(), logits.clone()


# --- calling the learner's function ----------------------------------------------------------------------


@dataclass
class Outcome:
    """What happened when the learner's function was called: ``value`` is what it returned, ``error`` None or a
    one-line record (``"not callable: <type>"``, ``"NotImplementedError"`` or ``"<ExcType>: <first line>"``)."""

    value: Any = None
    error: str | None = None


NOT_CALLABLE = "not callable"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else ""
    if len(first) > 200:
        first = first[:197] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def run_learner(fn: Callable[..., Any], *args: Any) -> Outcome:
    """Call ``fn(*args)`` under ``torch.no_grad()``; the learner's errors become ``Outcome.error``, never raised."""
    if not callable(fn):
        return Outcome(error=f"{NOT_CALLABLE}: {type(fn).__name__}")
    try:
        with torch.no_grad():
            return Outcome(value=fn(*args))
    except NotImplementedError:
        return Outcome(error="NotImplementedError")
    except (Exception, SystemExit) as exc:  # the learner's own bug (or exit): record it in one line
        return Outcome(error=_one_line(exc))


def unwrap(name: str, outcome: Outcome) -> Any:
    """``outcome.value``, or the one-line :class:`CheckFailed` that says why there is none."""
    error = outcome.error
    if error is None:
        return outcome.value
    if error.startswith(NOT_CALLABLE):
        kind = error.partition(": ")[2] or "something else"
        raise CheckFailed(
            name, f"expected a function, got {kind}.", "pass the function itself, without calling it (no parentheses)."
        )
    if error == "NotImplementedError":
        raise CheckFailed(
            name,
            "not written yet (it still raises NotImplementedError).",
            "replace `raise NotImplementedError()` with your code.",
        )
    raise CheckFailed(
        name,
        f"raised {error}".rstrip(": ") + ".",
        "run it on the example in the cell above and read the full traceback.",
    )


def as_returned(value: Any) -> Any:
    """``value`` as the judge sees it after the sandbox's data round trip: tensors detached on the CPU, numpy
    arrays as tensors, numpy scalars as Python numbers, tuples and lists kept (recursively)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return tuple(as_returned(v) for v in value)
    if isinstance(value, list):
        return [as_returned(v) for v in value]
    return value


# --- the exercise contract ---------------------------------------------------------------------------------


class Exercise(Generic[CaseT]):
    """One learner function: its cases as records, the inputs rebuilt from a case, and a judge of its return value.

    ``name`` is the learner's function name (and ``check_<name>``); ``forbidden`` lists library names whose use
    inside the learner's function means it only calls the reference it was asked to write; ``case_type`` is the
    record its cases are (what :meth:`case_from_data` rebuilds).
    """

    name: str = ""
    forbidden: tuple[str, ...] = ()
    case_type: type[CaseT]
    # the record fields holding prompts whose forward pass (:func:`captured`) the inputs and the judge reuse
    prompt_fields: tuple[str, ...] = ()

    def cases(self, *args: Any, **options: Any) -> list[CaseT]:
        """``cases(seed, **options)``: records of :attr:`case_type`, deterministic given ``seed``. Each
        exercise declares its options here, typed and with their defaults, once: they are the keyword arguments of
        ``check_<name>`` (:func:`make_check`), with ``lm`` given as a :class:`ModelRef` or None."""
        raise NotImplementedError

    def inputs(self, case: CaseT) -> tuple[Any, ...]:
        """The positional arguments of the learner's function, rebuilt deterministically from ``case``."""
        raise NotImplementedError

    def judge(self, case: CaseT, got: Any) -> str:
        """The ✓ detail line if ``got`` is right for ``case``, else raise :class:`CheckFailed` (one line)."""
        raise NotImplementedError

    def summary(self, cases: list[CaseT], detail: str) -> str:
        """The visible check's ✓ line after every case passed (default: the last case's detail)."""
        return detail

    def case_from_data(self, d: Any) -> CaseT:
        """One case from its plain data (:meth:`Case.to_data`), as the sandbox and the judge process rebuild it."""
        return self.case_type.from_data(d)

    def cases_from_data(self, seed: int, options: dict[str, Any]) -> list[CaseT]:
        """:meth:`cases` for options given as plain data (as a notebook's ``check_<name>`` call states them; a
        model as ``{"family": ..., "seed": ...}``): what grading draws per learner."""
        return self.cases(seed, **options)  # each exercise names its model with case_model, which reads data too

    def warm(self, case: CaseT) -> None:
        """Run ahead of time the forward passes judging ``case`` will reuse (nothing for a case without a model)."""
        for field in self.prompt_fields:  # only exercises whose cases name a model declare prompt fields
            assert isinstance(case, ModelCase), f"{self.name} has prompt fields but its cases name no model"
            captured(case, getattr(case, field))


def _hook_count(lm: LoadedModel) -> int:
    """Forward hooks on the model, not counting those transformers installs for itself (it keeps output-capturing
    hooks on the blocks after the first ``output_hidden_states=True`` call)."""

    def ours(hook: Any) -> bool:
        module = getattr(getattr(hook, "func", hook), "__module__", None)  # None for a function made by exec()
        return not (isinstance(module, str) and module.startswith("transformers."))

    return sum(
        ours(h) for m in lm.model.modules() for d in (m._forward_pre_hooks, m._forward_hooks) for h in d.values()
    )


def run_check(ex: Exercise[Any], fn: Callable[..., Any], seed: int | None = None, **options: Any) -> None:
    """The visible check: every case's inputs, the learner's function, the judge; then one ✓ line.

    In the learner's own kernel it also catches a hook left on the model (the hidden verdict sees that only
    through the wrong values it causes later). Without ``seed``, the cases are drawn from a fresh seed in
    ``[0, 2**31)``, so each run tries other cases.
    """
    seed = random.randrange(2**31) if seed is None else seed
    if "lm" in options:
        options["lm"] = None if options["lm"] is None else ModelRef.of(options["lm"])
    cases = ex.cases(seed, **options)
    if not cases:
        raise LensError(f"check_{ex.name} was given no cases to try")
    for case in cases:
        args = ex.inputs(case)
        models = [a for a in args if isinstance(a, LoadedModel)]
        before = [_hook_count(lm) for lm in models]
        got = as_returned(unwrap(ex.name, run_learner(fn, *args)))
        if [_hook_count(lm) for lm in models] != before:
            raise CheckFailed(
                ex.name,
                "your hook is still attached after the call: every later run of the model is changed.",
                "remove it (handle.remove()) in a finally: block.",
            )
        detail = ex.judge(case, got)
    passed(ex.name, ex.summary(cases, detail))


def make_check(ex: Exercise[Any], doc: str) -> Callable[..., None]:
    """The visible ``check_<name>(fn, ...)`` of ``ex``: its options and their defaults are those of ``ex.cases``
    (declared there once), so the learner's ``help()`` shows them and grading draws the same cases."""
    options = [  # after the seed; the learner passes a model itself, which run_check names as a ModelRef
        p.replace(annotation="LoadedModel | None") if p.name == "lm" else p
        for p in list(inspect.signature(ex.cases).parameters.values())[1:]
    ]
    fn = inspect.Parameter("fn", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    signature = inspect.Signature([fn, *options], return_annotation=None)

    def check(*args: Any, **kwargs: Any) -> None:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        given = dict(bound.arguments)
        run_check(ex, given.pop("fn"), **given)

    check.__name__ = check.__qualname__ = f"check_{ex.name}"
    check.__doc__ = doc
    check.__module__ = type(ex).__module__
    check.__signature__ = signature  # type: ignore[attr-defined]  # what inspect and help() read
    return check


# --- comparing values ------------------------------------------------------------------------------------


def as_tensor(value: Any, name: str, what: str = "a torch.Tensor") -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise CheckFailed(
            name, f"expected {what}, got {type(value).__name__}.", "return a tensor (torch.stack a list of tensors)."
        )
    return value


def expect_shape(
    got: torch.Tensor, want: tuple[int, ...], name: str, hints: dict[tuple[int, ...], str] | None = None
) -> None:
    if tuple(got.shape) == tuple(want):
        return
    hint = (hints or {}).get(tuple(got.shape), "check which dimensions you kept, dropped or swapped.")
    raise CheckFailed(name, f"wrong shape: expected {tuple(want)}, got {tuple(got.shape)}.", hint)


def close(a: Any, b: Any, rtol: float = 1e-3, atol: float | None = None) -> bool:
    """Same shape and equal up to float noise (``atol`` defaults to 1e-4 of ``b``'s largest entry)."""
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.shape != b.shape:
        return False
    if a.is_complex() or b.is_complex():
        return False
    common = torch.promote_types(a.dtype, b.dtype)
    if not common.is_floating_point:
        common = torch.float64  # integer or bool answers are compared as numbers
    elif torch.finfo(common).bits < 32:
        common = torch.float32  # half precision: compare at float32, the tolerances stay meaningful
    # float32 is exact enough for rtol 1e-3, and 4x cheaper than float64 on [L+1, T, V] logits
    a, b = a.detach().to("cpu", common), b.detach().to("cpu", common)
    if atol is None:
        atol = 1e-4 * max(1.0, _largest_finite(b))
    # torch.allclose's test |a - b| <= atol + rtol |b|, a cache-sized chunk at a time (3x faster on [L+1, T, V]
    # logits). The bound is kept finite, so any inf (or nan) fails this quick test and the chunk is asked again
    # of torch.allclose, which knows that inf == inf and that 5 != inf.
    largest = torch.finfo(common).max
    for x, y in zip(a.reshape(-1).split(_CHUNK), b.reshape(-1).split(_CHUNK)):
        gap = torch.sub(x, y).abs_()
        bound = y.abs().mul_(rtol).add_(atol).clamp_max_(largest)
        if not bool((gap <= bound).all()) and not torch.allclose(x, y, rtol=rtol, atol=atol):
            return False
    return True


_CHUNK = 2**16


def _largest_finite(b: torch.Tensor) -> float:
    """``max |b|`` over b's finite entries (0 if none): an inf in the answer must not make ``atol`` infinite."""
    peak = float(b.abs().max()) if b.numel() else 0.0
    if math.isfinite(peak):
        return peak
    finite = b[b.isfinite()]
    return float(finite.abs().max()) if finite.numel() else 0.0


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


def fresh_prompts(n: int, rng: random.Random) -> list[str]:
    if not 1 <= n <= len(FRESH_PROMPTS):
        raise LensError(f"n_prompts must be between 1 and {len(FRESH_PROMPTS)}, got {n}")
    return rng.sample(FRESH_PROMPTS, n)


def random_logits(shape: Sequence[int], seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen) * 3.0
