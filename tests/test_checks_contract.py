"""The contract grading codes against: cases are data, inputs are rebuilt deterministically, the judge sees only
returned values (after a JSON/safetensors round trip) and never calls the learner; every graded statement of the
notebooks has the one form the grader's planner reads; the notebooks' own solutions pass their hidden verdicts."""

from __future__ import annotations

import ast
import inspect
import json
import re
from pathlib import Path

import pytest
import torch
from test_checks_support import graded_statements, hidden_verdict, notebook_solutions, one_line_failure, roundtrip

from lensref import LensError, LoadedModel, tiny_model
from lensref.course import checks
from lensref.course.checks import EXERCISES, ModelRef, Outcome, run_learner, unwrap
from lensref.course.checks._core import make_check
from lensref.course.checks.reading_the_grid import RanksCase
from lensref.models import TINY_FAMILIES

ROOT = Path(__file__).resolve().parents[1]
STATEMENTS = graded_statements()


def parse(statement: str) -> tuple[str, str, dict]:
    """``checks.check_<name>(<fn>, key=<literal>, ..., lm=lensref.tiny_model("<family>", seed=<int>))`` -> the
    exercise, the learner's function name and the options (``lm`` as a :class:`ModelRef`); anything else fails."""
    (node,) = ast.parse(statement).body
    assert isinstance(node, ast.Expr) and isinstance(node.value, ast.Call), statement
    call = node.value
    func = call.func
    assert isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "checks", statement
    assert func.attr.startswith("check_"), statement
    assert len(call.args) == 1 and isinstance(call.args[0], ast.Name), statement
    options = {}
    for kw in call.keywords:
        if kw.arg == "lm":
            lm = kw.value
            assert isinstance(lm, ast.Call) and ast.unparse(lm.func) == "lensref.tiny_model", statement
            (family,) = lm.args
            (seed,) = lm.keywords
            assert seed.arg == "seed", statement
            options["lm"] = ModelRef(ast.literal_eval(family), ast.literal_eval(seed.value))
        else:
            options[kw.arg] = ast.literal_eval(kw.value)  # literals only
    return func.attr.removeprefix("check_"), call.args[0].id, options


def test_every_graded_statement_has_the_planners_form():
    assert len(STATEMENTS) >= 40
    seen = set()
    for assignment, grade_id, statement in STATEMENTS:
        name, function, options = parse(statement)
        assert name == function == grade_id.removeprefix("test_"), (assignment, statement)
        assert set(options) <= set(inspect.signature(getattr(checks, f"check_{name}")).parameters) - {"fn"}
        seen.add(name)
    assert seen == set(EXERCISES)


def test_every_graded_cell_opens_with_the_visible_check_and_hides_the_rest():
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            meta = cell["metadata"].get("nbgrader", {})
            if meta.get("grade"):
                code = [ln for ln in "".join(cell["source"]).splitlines() if ln.strip() and not ln.startswith("#")]
                name = meta["grade_id"].removeprefix("test_")
                assert code[0] == f"checks.check_{name}({name})", code
                assert "assert " not in "".join(cell["source"])


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_cases_are_json_data_and_seeded(name):
    ex = EXERCISES[name]
    option_sets = [{}] + [parse(s)[2] for _, _, s in STATEMENTS if parse(s)[0] == name]
    for options in option_sets:
        cases = ex.cases(7, **options)
        assert cases and all(type(c) is ex.case_type for c in cases)
        assert [ex.case_from_data(json.loads(json.dumps(c.to_data()))) for c in cases] == cases
        assert ex.cases(7, **options) == cases
    assert isinstance(ex.forbidden, tuple) and all(isinstance(f, str) and f for f in ex.forbidden)
    assert ex.name == name


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_judge_takes_a_case_and_a_value_only(name):
    params = list(inspect.signature(EXERCISES[name].judge).parameters)
    assert len(params) == 2 and params[0] == "case", params


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, LoadedModel):
        return ModelRef.of(a) == ModelRef.of(b)
    return type(a) is type(b) and a == b


def _tiny(name: str) -> dict:
    """Options that put a model-facing exercise on the tiny Llama."""
    return {"lm": ModelRef("llama", 0)} if "lm" in inspect.signature(EXERCISES[name].cases).parameters else {}


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_inputs_are_rebuilt_the_same_from_the_data(name):
    ex = EXERCISES[name]
    cases = ex.cases(3, **_tiny(name))
    for case in cases[:6]:
        first, second = ex.inputs(case), ex.inputs(ex.case_from_data(json.loads(json.dumps(case.to_data()))))
        assert len(first) == len(second) and all(_same(a, b) for a, b in zip(first, second)), case
        for arg in first:  # a learner editing its input in place cannot change the next case's inputs
            if isinstance(arg, torch.Tensor) and arg.is_floating_point():
                arg.add_(1.0)
        assert all(_same(a, b) for a, b in zip(ex.inputs(case), second))


def test_model_refs_are_data():
    for family in TINY_FAMILIES:
        lm = tiny_model(family, seed=4)
        ref = ModelRef.of(lm)
        assert ref == ModelRef(family, 4) == ModelRef.from_data(json.loads(json.dumps(ref.to_data())))
        assert ref.load() is lm  # the object the learner passed serves the cases that name it
    assert ModelRef.of(None) == ModelRef() and ModelRef().to_data() == {"family": None, "seed": 0}
    assert ModelRef("gpt2", 9).load() is ModelRef("gpt2", 9).load()
    with pytest.raises(LensError, match="cannot name the model"):
        ModelRef.of(tiny_model("llama", n_layers=2))
    with pytest.raises(LensError, match="unknown tiny model family 'bert'"):
        ModelRef.from_data({"family": "bert", "seed": 0})
    with pytest.raises(LensError, match="seed must be an int"):
        ModelRef.from_data({"family": "gpt2", "seed": "0"})


def test_run_learner_records_every_failure_in_one_line_and_unwrap_says_it_as_before():
    def stub(*args):
        raise NotImplementedError("write me")

    def crash(x):
        raise RuntimeError("first\nsecond")

    def quits(x):
        raise SystemExit(3)

    def grads(x):
        assert not torch.is_grad_enabled()
        return x * 2

    cases = [
        (torch.zeros(2), Outcome(error="not callable: Tensor"), "expected a function, got Tensor."),
        (stub, Outcome(error="NotImplementedError"), "not written yet (it still raises NotImplementedError)."),
        (crash, Outcome(error="RuntimeError: first"), "raised RuntimeError: first."),
        (
            lambda x: 1 / 0,
            Outcome(error="ZeroDivisionError: division by zero"),
            "raised ZeroDivisionError: division by zero.",
        ),
        (quits, Outcome(error="SystemExit: 3"), "raised SystemExit: 3."),
        (lambda x: (_ for _ in ()).throw(ValueError()), Outcome(error="ValueError"), "raised ValueError."),
    ]
    for fn, want, message in cases:
        assert run_learner(fn, 1) == want
        assert message in one_line_failure(lambda o=want: unwrap("entropy", o))
    assert run_learner(grads, torch.ones(2, requires_grad=True)).value.tolist() == [2.0, 2.0]
    assert unwrap("x", Outcome(value=(1, 2))) == (1, 2)
    assert json.loads(json.dumps(run_learner(crash, 1).__dict__ | {"value": None}))["error"] == "RuntimeError: first"


@pytest.fixture(scope="module")
def solutions():
    return notebook_solutions()


def _hidden_statements(real: bool) -> list:
    out = []
    for _, grade_id, statement in STATEMENTS:
        name, function, options = parse(statement)
        uses_default = "lm" not in options and "lm" in inspect.signature(EXERCISES[name].cases).parameters
        if uses_default == real:
            out.append(pytest.param(name, function, options, id=f"{grade_id}:{statement[len('checks.') : 60]}"))
    return out


@pytest.mark.parametrize("name, function, options", _hidden_statements(real=False))
def test_solutions_pass_their_hidden_verdicts(solutions, name, function, options):
    details = hidden_verdict(EXERCISES[name], solutions[function], 12345, **options)
    assert details and all(isinstance(d, str) and "\n" not in d for d in details)


@pytest.mark.real_model
@pytest.mark.parametrize("name, function, options", _hidden_statements(real=True))
def test_solutions_pass_their_hidden_verdicts_on_the_default_model(solutions, name, function, options, real_lm):
    details = hidden_verdict(EXERCISES[name], solutions[function], 12345, **options)
    assert details and all(isinstance(d, str) for d in details)


def test_the_judge_never_calls_the_learner(solutions):
    calls = []

    def spy(fn):
        def learner(*args):
            calls.append(1)
            return fn(*args)

        return learner

    for name in EXERCISES:
        options = _tiny(name)
        if name == "attribute":
            options["lm"] = ModelRef("qwen2", 0)
        ex = EXERCISES[name]
        cases = ex.cases(5, **options)
        start = len(calls)
        answers = [roundtrip(run_learner(spy(solutions[name]), *ex.inputs(c)).value) for c in cases]
        before = len(calls)
        assert before - start == len(cases)
        for case, got in zip(cases, answers):
            ex.judge(case, got)
        assert len(calls) == before, name


def test_the_judge_reads_numpy_and_lists_as_the_wire_brings_them(solutions):
    ex = EXERCISES["to_probs"]
    (case, _) = ex.cases(1)
    (x,) = ex.inputs(case)
    ex.judge(case, roundtrip(solutions["to_probs"](x).numpy()))
    ex = EXERCISES["answer_ranks"]
    case = ex.cases(0, lm=ModelRef("llama", 0))[0]
    ranks = solutions["answer_ranks"](*ex.inputs(case))
    ex.judge(case, roundtrip(tuple(ranks)))
    ex.judge(case, roundtrip(torch.tensor(ranks)))
    ex = EXERCISES["classify"]
    assert "expected a label, got Tensor" in one_line_failure(lambda: ex.judge(RanksCase((1,)), torch.tensor(1)))
    ex = EXERCISES["settled_layer"]
    assert ex.judge(RanksCase((2, 1)), roundtrip(torch.tensor(1))).startswith("right")


def test_forbidden_names_exist_in_the_library():
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "lensref").rglob("*.py"))
    for ex in EXERCISES.values():
        for name in ex.forbidden:
            assert re.search(rf"(def|class) {re.escape(name)}\b", sources), (ex.name, name)
    assert "decode" in EXERCISES["lens_logits"].forbidden
    assert "capture_residuals" in EXERCISES["capture_states"].forbidden


# The learner-facing signatures, as the notebooks and their help() show them; each comes from the exercise's cases.
CHECK_SIGNATURES = {
    "capture_states": "(fn, lm=None, n_prompts=2)",
    "lens_logits": "(fn, lm=None, n_prompts=1)",
    "to_probs": "(fn, shape=(4, 3, 50))",
    "top_k": "(fn, k=5, shape=(3, 4, 60))",
    "entropy": "(fn, shape=(5, 4, 80))",
    "kl_to_final": "(fn, shape=(6, 3, 70))",
    "target_rank": "(fn, shape=(5, 4, 90))",
    "first_top_k_layer": "(fn, n_random=20, cases=None)",
    "settled_layer": "(fn, n_random=30, cases=None)",
    "classify": "(fn, n_random=40, cases=None)",
    "answer_ranks": "(fn, lm=None, cases=None)",
    "logit_diff_by_layer": "(fn, lm=None, n_prompts=1)",
    "attribute": "(fn, lm=None, n_prompts=1)",
    "patch_readout": "(fn, lm=None, layers=None)",
    "fit_translator": "(fn, n=300, d=12)",
}


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_each_check_takes_its_options_and_defaults_from_the_exercise_cases(name, monkeypatch):
    """Defaults are declared once, on ``cases``: the visible check shows the same names and defaults (typed), and
    passes every option (given by position or keyword, or left out) to ``cases`` as it would be given there.
    The check is made again here (as the checks module made it on import), so that what is tested is
    ``make_check`` itself, run now, and not only the functions it made before the test began."""
    imported = getattr(checks, f"check_{name}")
    check = make_check(EXERCISES[name], imported.__doc__)
    assert inspect.signature(check) == inspect.signature(imported)
    assert (check.__name__, check.__qualname__, check.__module__) == (
        imported.__name__,
        imported.__qualname__,
        imported.__module__,
    )
    assert check.__module__ == type(EXERCISES[name]).__module__ and check.__qualname__ == f"check_{name}"
    signature = inspect.signature(check)
    cases_params = list(inspect.signature(EXERCISES[name].cases).parameters.values())[1:]
    unmodel = [p.replace(annotation="lm") if p.name == "lm" else p for p in cases_params]
    assert [
        p.replace(annotation="lm") if p.name == "lm" else p for p in list(signature.parameters.values())[1:]
    ] == unmodel
    assert all(p.annotation == "LoadedModel | None" for p in signature.parameters.values() if p.name == "lm")
    assert all(p.annotation is not inspect.Parameter.empty for p in cases_params)
    bare = signature.replace(
        parameters=[p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()]
    )
    assert str(bare.replace(return_annotation=inspect.Signature.empty)) == CHECK_SIGNATURES[name]
    assert check.__name__ == f"check_{name}" and check.__doc__ and signature.return_annotation is None
    seen: list[tuple[object, dict]] = []
    monkeypatch.setattr(checks._core, "run_check", lambda ex, fn, **options: seen.append((ex, fn, options)))
    first = cases_params[0]
    check(len, **{first.name: first.default})
    check(len, first.default)
    defaults = {p.name: p.default for p in cases_params}
    assert seen == [(EXERCISES[name], len, defaults)] * 2
    with pytest.raises(TypeError):
        check(len, no_such_option=1)
