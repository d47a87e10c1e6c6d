"""Helpers the check tests share, and the tests of the checks' common machinery.

The helpers: the grading data round trip, a hidden verdict as grading runs it (cases -> inputs -> the learner's
function -> data -> judge), and the notebooks' own solutions. The tests: one-line failures and learner errors,
``close``, the visible check's seed, model naming and hook detection, ``as_returned``, ``as_tensor`` and
``expect_shape``."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from lensref.course.checks import CheckFailed, Exercise, Outcome, _core, run_learner, unwrap
from lensref.errors import LensError

ROOT = Path(__file__).resolve().parents[1]


def roundtrip(value):
    """``value`` after the trip grading makes it take: structure as JSON, tensors through safetensors (never
    pickle). Tensors come back as CPU tensors with their dtype, numpy arrays as tensors, tuples stay tuples."""
    tensors: dict[str, torch.Tensor] = {}

    def encode(v):
        if isinstance(v, torch.Tensor):
            key = f"t{len(tensors)}"
            tensors[key] = v.detach().cpu().contiguous()
            return {"$tensor": key}
        if isinstance(v, np.ndarray):
            return encode(torch.from_numpy(np.ascontiguousarray(v)))
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, tuple):
            return {"$tuple": [encode(x) for x in v]}
        if isinstance(v, list):
            return [encode(x) for x in v]
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        raise TypeError(f"cannot send a {type(v).__name__} as data")

    text = json.dumps(encode(value))
    loaded = load_tensors(save_tensors(tensors)) if tensors else {}

    def decode(v):
        if isinstance(v, dict) and "$tensor" in v:
            return loaded[v["$tensor"]]
        if isinstance(v, dict) and "$tuple" in v:
            return tuple(decode(x) for x in v["$tuple"])
        if isinstance(v, list):
            return [decode(x) for x in v]
        return v

    return decode(json.loads(text))


_JUDGE_MODELS: dict = {}


@contextmanager
def trusted_side():
    """Models as the grader's own process has them: loaded there, never handed to learner code (a hook or an
    edit the learner left on the sandbox's model object cannot reach the judge's reference)."""
    saved = dict(_core._MODELS)
    _core._MODELS.clear()
    _core._MODELS.update(_JUDGE_MODELS)
    _core._captured.cache_clear()
    try:
        yield
    finally:
        _JUDGE_MODELS.update(_core._MODELS)
        _core._MODELS.clear()
        _core._MODELS.update(saved)
        _core._captured.cache_clear()


def hidden_verdict(ex: Exercise, fn, seed: int = 0, **options) -> list[str]:
    """Grade ``fn`` as the trusted grader does: cases as JSON, the learner called on rebuilt inputs, its value sent
    back as data, and the judge (which never sees ``fn``) deciding. Raises :class:`CheckFailed` like the check."""
    cases = [ex.case_from_data(d) for d in json.loads(json.dumps([c.to_data() for c in ex.cases(seed, **options)]))]
    sent = []
    for case in cases:  # the sandbox side
        outcome = run_learner(fn, *ex.inputs(case))
        error = json.loads(json.dumps(outcome.error))
        sent.append((error, roundtrip(outcome.value) if error is None else None))
    with trusted_side():  # data only from here on
        return [
            ex.judge(case, unwrap(ex.name, Outcome(value=value, error=error)))
            for case, (error, value) in zip(cases, sent)
        ]


def one_line_failure(run) -> str:
    """The message of the :class:`CheckFailed` that ``run()`` raises, checked to be one line."""
    with pytest.raises(CheckFailed) as info:
        run()
    message = str(info.value)
    assert "\n" not in message and message.strip() == message, "diagnoses are one line"
    assert info.value._render_traceback_() == [f"\x1b[0;31m✗ {message}\x1b[0m"]
    return message


def notebook_solutions() -> dict:
    """The instructor's solution functions, executed from ``solutions/*/*.ipynb`` (the cells marked solution)."""
    import lensref
    from lensref.patchscope import IDENTITY_PROMPT

    namespace = {"torch": torch, "lensref": lensref, "IDENTITY_PROMPT": IDENTITY_PROMPT}
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                exec("".join(cell["source"]), namespace)  # noqa: S102 - the course's own solutions
    return namespace


def graded_statements() -> list[tuple[str, str, str]]:
    """``(assignment, grade_id, statement)`` for every statement of every graded test cell."""
    import ast

    out = []
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if not meta.get("grade"):
                continue
            source = "".join(cell["source"])
            for node in ast.parse(source).body:
                out.append((path.parent.name, meta["grade_id"], ast.get_source_segment(source, node)))
    return out


@pytest.mark.parametrize("length,kept", [(199, True), (200, True), (201, False), (202, False)])
def test_a_learner_error_is_one_line_cut_after_200_characters(length, kept):
    def boom():
        raise ValueError("x" * length + "\nsecond line")

    error = run_learner(boom).error
    assert "\n" not in error and "second line" not in error
    if kept:
        assert error == "ValueError: " + "x" * length
    else:
        assert error == "ValueError: " + "x" * 197 + "..."


# --- close(): the comparison every check uses, against its definition |a - b| <= atol + rtol |b| -------------------


def t(*values, dtype=torch.float32):
    return torch.tensor(values, dtype=dtype)


@pytest.mark.parametrize(
    "a, b, expected",
    [
        (t(1.0, 2.0), t(1.0, 2.0, 3.0), False),  # another shape
        ([1.0, 2.0], t(1.0, 2.0), False),  # not a tensor
        (torch.tensor([1 + 0j]), t(1.0), False),  # a complex answer to a real question
        (torch.tensor([1 + 1j]), torch.tensor([1 + 2j]), False),
        (t(1, 2, dtype=torch.int64), t(1, 2, dtype=torch.int64), True),  # integers compare as numbers
        (t(1, 3, dtype=torch.int64), t(1, 2, dtype=torch.int64), False),
        (t(True, False, dtype=torch.bool), t(1.0, 0.0), True),
        (t(dtype=torch.float32), t(dtype=torch.float32), True),  # empty
        (t(0.0, 1.5e-4), t(0.0, 0.0), False),  # atol is 1e-4 when |b| <= 1
        (t(0.0, 0.9e-4), t(0.0, 0.0), True),
        (t(1000.0, 0.05), t(1000.0, 0.0), True),  # ... and 1e-4 of b's largest entry: 0.1 here
        (t(1000.0, 0.15), t(1000.0, 0.0), False),
        (t(2.0019), t(2.0), True),  # rtol 1e-3 of |b|
        (t(2.0025), t(2.0), False),
        (t(float("inf"), float("-inf")), t(float("inf"), float("-inf")), True),  # inf equals inf
        (t(float("inf"), 1.0005), t(float("inf"), 1.0), True),  # ... and the rest keeps rtol 1e-3
        (t(float("inf"), 1.0021), t(float("inf"), 1.0), False),
        (t(float("-inf"), 5.0), t(float("-inf"), 0.0), False),  # an inf in b does not make atol infinite
        (t(float("-inf"), 5e-5), t(float("-inf"), 0.0), True),
        (t(float("-inf"), 1000.0, 0.05), t(float("-inf"), 1000.0, 0.0), True),  # atol from the finite 1000
        (t(float("inf")), t(float("-inf")), False),
        (t(5.0), t(float("inf")), False),  # a finite answer is not close to inf
        (t(float("-inf")), t(-3.0e38), False),
        (t(float("nan")), t(float("nan")), False),
        (t(1e-4, dtype=torch.float16), t(0.0, dtype=torch.float16), False),  # half: the tolerance is not rounded
    ],
)
def test_close_follows_its_definition(a, b, expected):
    assert _core.close(a, b) is expected


def test_close_is_chunked_without_changing_the_answer():
    """The chunks of 2^16 elements: a wrong entry in the last chunk, or an inf in a chunk of its own, is seen."""
    b = torch.randn(3 * 2**16 + 5, generator=torch.Generator().manual_seed(0))
    a = b.clone()
    assert _core.close(a, b)
    a[-1] += 0.01
    assert not _core.close(a, b)
    a[-1], a[2**16 + 3], b[2**16 + 3] = b[-1], float("inf"), float("inf")
    assert _core.close(a, b)


@pytest.mark.parametrize(
    "what, hint, message",
    [
        ("wrong", "", "f: wrong"),
        ("wrong", "look again", "f: wrong Hint: look again"),
        ("line one\nline  two", "", "f: line one line  two"),  # one line; the learner's spacing is kept
    ],
)
def test_check_failed_is_one_line(what, hint, message):
    error = CheckFailed("f", what, hint) if hint else CheckFailed("f", what)
    assert str(error) == message
    assert (error.name, error.what, error.hint) == ("f", what, hint)


# --- run_check and its helpers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class XCase(_core.Case):
    x: int


class Recording(Exercise):
    """An exercise with one case that records the seeds and options run_check gives it."""

    name = "identity"
    case_type = XCase

    def __init__(self):
        self.calls: list[tuple[int, dict]] = []

    def cases(self, seed, **options):
        self.calls.append((seed, options))
        return [XCase(1)]

    def inputs(self, case):
        return (case.x,)

    def judge(self, case, got):
        if got != case.x:
            raise CheckFailed(self.name, f"expected {case.x}, got {got}.")
        return "ok"


def test_run_check_draws_a_fresh_31_bit_seed_each_time(capsys):
    import random

    ex = Recording()
    random.seed(1)
    for _ in range(64):
        _core.run_check(ex, lambda x: x)
    seeds = [seed for seed, _ in ex.calls]
    assert len(set(seeds)) == 64 and all(0 <= s < 2**31 for s in seeds)
    assert max(seeds) >= 2**30  # the whole range, not a corner of it
    _core.run_check(ex, lambda x: x, seed=7)
    assert ex.calls[-1][0] == 7
    assert capsys.readouterr().out.count("✓ identity: ok") == 65


def test_run_check_names_the_model_it_is_given():
    from lensref import tiny_model

    ex = Recording()
    lm = tiny_model("gpt2", seed=3)
    _core.run_check(ex, lambda x: x, seed=0, lm=lm)
    _core.run_check(ex, lambda x: x, seed=0, lm=None)
    _core.run_check(ex, lambda x: x, seed=0)
    assert [options for _, options in ex.calls] == [{"lm": _core.ModelRef("gpt2", 3)}, {"lm": None}, {}]


def test_hooks_that_transformers_installs_are_not_the_learners():
    import functools

    from lensref import tiny_model

    lm = tiny_model("llama")
    block = lm.adapter.blocks[0]
    before = _core._hook_count(lm)

    def library_hook(module, args, output):
        return None

    library_hook.__module__ = "transformers.utils.generic"
    made_by_exec: dict = {}
    exec("def hook(module, args, output):\n    return None", made_by_exec)  # its __module__ is None
    assert made_by_exec["hook"].__module__ is None
    handles = [
        block.register_forward_hook(functools.partial(library_hook)),
        block.register_forward_hook(library_hook),
    ]
    assert _core._hook_count(lm) == before
    handles.append(block.register_forward_hook(made_by_exec["hook"]))
    handles.append(block.register_forward_pre_hook(functools.partial(made_by_exec["hook"])))
    handles.append(block.register_forward_hook(functools.partial(str.upper)))  # has no __module__ at all
    assert _core._hook_count(lm) == before + 3
    for handle in handles:
        handle.remove()


def test_as_returned_is_what_the_judge_sees():
    value = _core.as_returned((np.array([1.5, 2.5]), [np.float32(0.5), torch.ones(2, requires_grad=True)], "s"))
    assert isinstance(value, tuple) and isinstance(value[1], list)
    assert torch.equal(value[0], torch.tensor([1.5, 2.5], dtype=torch.float64))
    assert value[1][0] == 0.5 and type(value[1][0]) is float
    assert not value[1][1].requires_grad and value[2] == "s"


def test_as_tensor_and_expect_shape_say_what_is_wrong_in_one_line():
    with pytest.raises(CheckFailed) as info:
        _core.as_tensor([1.0], "f")
    assert (
        str(info.value)
        == "f: expected a torch.Tensor, got list. Hint: return a tensor (torch.stack a list of tensors)."
    )
    with pytest.raises(CheckFailed) as info:
        _core.as_tensor(None, "g", "a [T] tensor")
    assert str(info.value).startswith("g: expected a [T] tensor, got NoneType.")
    x = torch.zeros(2, 3)
    assert _core.as_tensor(x, "f") is x
    _core.expect_shape(x, (2, 3), "f")
    with pytest.raises(CheckFailed) as info:
        _core.expect_shape(x, (3, 2), "f")
    assert str(info.value) == (
        "f: wrong shape: expected (3, 2), got (2, 3). Hint: check which dimensions you kept, dropped or swapped."
    )
    with pytest.raises(CheckFailed) as info:
        _core.expect_shape(x, (3, 2), "f", hints={(2, 3): "transpose it."})
    assert str(info.value) == "f: wrong shape: expected (3, 2), got (2, 3). Hint: transpose it."


def test_model_ref_names_models_as_data():
    from lensref import tiny_model

    assert _core.ModelRef.of({"family": "gpt2", "seed": 2}) == _core.ModelRef("gpt2", 2)
    assert _core.ModelRef.of(None) == _core.ModelRef() and _core.ModelRef(None, 5).to_data() == {
        "family": None,
        "seed": 0,
    }
    assert _core.ModelRef("llama", 4).to_data() == {"family": "llama", "seed": 4}
    lm = tiny_model("llama", seed=4)
    assert _core.ModelRef.of(lm) == _core.ModelRef("llama", 4) and _core.ModelRef("llama", 4).load() is lm

    class Named:
        name = "my-model"

    for thing, shown in ((Named(), "'my-model'"), (object(), "'object'")):
        with pytest.raises(LensError) as info:
            _core.ModelRef.of(thing)
        assert str(info.value) == (
            f"the checks cannot name the model {shown}: use lensref.load_model() or lensref.tiny_model(family, seed=...)"
        )


def test_unwrap_explains_each_way_a_call_can_fail_word_for_word():
    def todo():
        raise NotImplementedError()

    def bad():
        raise ValueError("bad input")

    def quiet():
        raise KeyError()

    call_it = " Hint: pass the function itself, without calling it (no parentheses)."
    write_it = " Hint: replace `raise NotImplementedError()` with your code."
    read_it = " Hint: run it on the example in the cell above and read the full traceback."
    cases = [
        (run_learner(5), "f: expected a function, got int." + call_it),
        (Outcome(error="not callable"), "f: expected a function, got something else." + call_it),
        (Outcome(error="not callable: odd: type"), "f: expected a function, got odd: type." + call_it),
        (run_learner(todo), "f: not written yet (it still raises NotImplementedError)." + write_it),
        (run_learner(bad), "f: raised ValueError: bad input." + read_it),
        (run_learner(quiet), "f: raised KeyError." + read_it),
        (
            Outcome(error="ValueError: size must be at most MAX:"),
            "f: raised ValueError: size must be at most MAX." + read_it,
        ),
    ]
    for outcome, message in cases:
        with pytest.raises(CheckFailed) as info:
            unwrap("f", outcome)
        assert str(info.value) == message and info.value.name == "f"
    assert unwrap("f", Outcome(value=3)) == 3


def test_run_check_refuses_an_empty_list_of_cases():
    class Empty(Recording):
        def cases(self, seed, **options):
            return []

    with pytest.raises(LensError, match="^check_identity was given no cases to try$"):
        _core.run_check(Empty(), lambda x: x, seed=0)


def test_run_check_catches_a_hook_left_on_the_model(capsys):
    from lensref import tiny_model

    lm = tiny_model("llama")

    class OnTheModel(Recording):
        def inputs(self, case):
            return (lm,)

        def judge(self, case, got):
            return "ok"

    def leaves_a_hook(model):
        model.adapter.blocks[0].register_forward_hook(lambda module, args, output: None)
        return 1

    before = _core._hook_count(lm)
    try:
        with pytest.raises(CheckFailed) as info:
            _core.run_check(OnTheModel(), leaves_a_hook, seed=0)
        assert str(info.value) == (
            "identity: your hook is still attached after the call: every later run of the model is changed."
            " Hint: remove it (handle.remove()) in a finally: block."
        )
        assert capsys.readouterr().out == ""
    finally:
        lm.adapter.blocks[0]._forward_hooks.clear()
    assert _core._hook_count(lm) == before


def test_model_ref_reads_only_well_formed_names(monkeypatch):
    from lensref import tiny_model
    from lensref.models import TINY_FAMILIES

    for bad, message in [
        ({"family": "llama"}, "a model must be named as {'family': ..., 'seed': ...}, got {'family': 'llama'}"),
        ("llama", "a model must be named as {'family': ..., 'seed': ...}, got 'llama'"),
        ({"family": "bert", "seed": 0}, f"unknown tiny model family 'bert'; choose from {', '.join(TINY_FAMILIES)}"),
        ({"family": "llama", "seed": True}, "a model seed must be an int, got True"),
    ]:
        with pytest.raises(LensError) as info:
            _core.ModelRef.from_data(bad)
        assert str(info.value) == message
    assert _core.ModelRef.from_data({"family": None, "seed": 5}) == _core.ModelRef(None, 0)
    assert _core.ModelRef.from_data({"family": "gpt2", "seed": 5}) == _core.ModelRef("gpt2", 5)

    monkeypatch.setattr(_core, "_MODELS", {})
    monkeypatch.setattr(_core, "load_model", lambda: "the default model")
    assert _core.ModelRef().load() == "the default model" and _core.default_lm() == "the default model"
    seeded = _core.ModelRef("gpt2", 7).load()
    assert _core.ModelRef("gpt2", 7).load() is seeded  # once per process
    same, other = tiny_model("gpt2", seed=7), tiny_model("gpt2", seed=0)
    weight = lambda lm: lm.adapter.unembed.weight  # noqa: E731
    assert torch.equal(weight(seeded), weight(same)) and not torch.equal(weight(seeded), weight(other))


def test_small_helpers_of_the_checks():
    import random

    n = len(_core.FRESH_PROMPTS)
    assert sorted(_core.fresh_prompts(n, random.Random(0))) == sorted(_core.FRESH_PROMPTS)  # all of them is allowed
    for bad in (0, n + 1):
        with pytest.raises(LensError) as info:
            _core.fresh_prompts(bad, random.Random(0))
        assert str(info.value) == f"n_prompts must be between 1 and {n}, got {bad}"
    assert _core.max_err(torch.tensor([1.0, -2.0]), torch.tensor([3.0, -2.5])) == 2.0
    logits = _core.random_logits((20, 500), seed=3)  # spread like a model's logits: standard deviation 3
    assert 2.9 < float(logits.std()) < 3.1 and torch.equal(logits, _core.random_logits((20, 500), seed=3))
