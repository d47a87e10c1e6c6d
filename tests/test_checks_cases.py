"""Cases are typed records: every case every exercise draws survives its JSON round trip exactly, and a malformed
case's data is refused in one line that names the bad field."""

from __future__ import annotations

import dataclasses
import json

import pytest

from lensref.course.checks import EXERCISES, ModelRef
from lensref.course.checks._core import Case, PromptCase
from lensref.course.checks.logit_lens import LensCase, TopKCase
from lensref.course.checks.reading_the_grid import RanksCase
from lensref.course.checks.variants import AttributionCase, PatchCase
from lensref.errors import LensError


@pytest.mark.parametrize("name", sorted(EXERCISES))
@pytest.mark.parametrize("seed", [0, 12345])
def test_every_drawn_case_survives_its_json_round_trip(name, seed):
    ex = EXERCISES[name]
    cases = ex.cases(seed)
    assert cases
    for case in cases:
        assert type(case) is ex.case_type and isinstance(case, Case)
        data = json.loads(json.dumps(case.to_data()))
        assert type(case).from_data(data) == case
        assert ex.case_from_data(data) == case


def test_the_data_keeps_its_shape():
    """Lists for tuples, a model as {'family': ..., 'seed': ...}: the JSON the sandbox reads, as before."""
    assert TopKCase((3, 4, 60), 7, 5).to_data() == {"shape": [3, 4, 60], "seed": 7, "k": 5}
    assert RanksCase((2, 1)).to_data() == {"ranks": [2, 1], "k": None}
    lens = LensCase(ModelRef("llama", 2), "abc", "last")
    assert lens.to_data() == {"lm": {"family": "llama", "seed": 2}, "prompt": "abc", "rows": "last"}
    patch = PatchCase(ModelRef(), layer="middle", source="x", prompt="? ->")
    assert PatchCase.from_data(json.loads(json.dumps(patch.to_data()))) == patch


@pytest.mark.parametrize(
    "cls, data, message",
    [
        (
            TopKCase,
            {"shape": [3, 60], "seed": 7, "k": "5"},
            "a case of type TopKCase: field 'k' must be an int, got '5'",
        ),
        (TopKCase, {"shape": [3, 60], "seed": 7, "k": True}, "field 'k' must be an int, got True"),
        (TopKCase, {"shape": [3, "60"], "seed": 7, "k": 5}, "field 'shape' must be a list of ints, got [3, '60']"),
        (TopKCase, {"shape": [3, 60], "seed": 7}, "a case of type TopKCase is missing field(s) 'k'"),
        (TopKCase, {"shape": [3, 60], "seed": 7, "k": 5, "kk": 1}, "a case of type TopKCase has unknown field(s) 'kk'"),
        (LensCase, {"lm": {"family": None, "seed": 0}, "prompt": "a", "rows": "first"}, "field 'rows' must be one of"),
        (PromptCase, {"lm": "llama", "prompt": "a"}, "a case of type PromptCase: field 'lm' must be a model named as"),
        (PromptCase, {"lm": {"family": "bert", "seed": 0}, "prompt": "a"}, "unknown tiny model family 'bert'"),
        (RanksCase, {"ranks": [1, 2], "k": 1.5}, "field 'k' must be an int or None, got 1.5"),
        (AttributionCase, [1, 2], "a case of type AttributionCase must be a dict of its fields, got list"),
    ],
)
def test_a_malformed_case_is_refused_in_one_line_naming_the_field(cls, data, message):
    with pytest.raises(LensError) as info:
        cls.from_data(data)
    text = str(info.value)
    assert message in text and "\n" not in text, text


DEFAULT_LM = {"family": None, "seed": 0}


@pytest.mark.parametrize(
    "cls, data, message",
    [
        (
            PatchCase,
            {"lm": DEFAULT_LM, "layer": 1.5, "source": "x", "prompt": "y"},
            "a case of type PatchCase: field 'layer' must be an int or a str, got 1.5",
        ),
        (
            PatchCase,
            {"lm": DEFAULT_LM, "layer": 1, "source": 3, "prompt": "y"},
            "a case of type PatchCase: field 'source' must be a str, got 3",
        ),
        (
            RanksCase,
            {"ranks": "12", "k": None},
            "a case of type RanksCase: field 'ranks' must be a list of ints, got '12'",
        ),
        (
            AttributionCase,
            {"lm": DEFAULT_LM, "prompt": "a", "pair_seed": 1, "split": "blocks", "parts": "2", "split_seed": None},
            "a case of type AttributionCase: field 'parts' must be an int or None, got '2'",
        ),
        (
            TopKCase,
            {"shape": [3], "seed": None, "k": 1},
            "a case of type TopKCase: field 'seed' must be an int, got None",
        ),
        (
            LensCase,
            {"lm": DEFAULT_LM, "prompt": "a", "rows": "x" * 200},  # a long value is cut to 80 characters
            "a case of type LensCase: field 'rows' must be one of 'all', 'last', got '" + "x" * 76 + "...",
        ),
        (
            LensCase,
            {"lm": DEFAULT_LM, "prompt": "a", "rows": "x" * 78},  # 80 characters with its quotes: kept whole
            "a case of type LensCase: field 'rows' must be one of 'all', 'last', got '" + "x" * 78 + "'",
        ),
        (
            LensCase,
            {"lm": DEFAULT_LM, "prompt": "a", "rows": "x" * 79},  # 81 characters: cut
            "a case of type LensCase: field 'rows' must be one of 'all', 'last', got '" + "x" * 76 + "...",
        ),
        (
            PromptCase,
            {"lm": {"family": None}, "prompt": "a"},
            "a case of type PromptCase: field 'lm' must be a model named as {'family': ..., 'seed': ...}, "
            "got {'family': None}",
        ),
        (TopKCase, {"shape": [3]}, "a case of type TopKCase is missing field(s) 'seed', 'k'"),
        (
            TopKCase,
            {"shape": [3], "seed": 1, "k": 5, "b": 0, 2: 0},  # keys sorted as text, so any key can be named
            "a case of type TopKCase has unknown field(s) 2, 'b'",
        ),
    ],
)
def test_the_whole_message_names_the_field_what_it_must_be_and_what_it_got(cls, data, message):
    with pytest.raises(LensError) as info:
        cls.from_data(data)
    assert str(info.value) == message


def test_a_record_with_a_field_type_the_data_cannot_hold_is_a_bug_of_the_record():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Odd(Case):
        x: float

    with pytest.raises(TypeError, match=r"^a case field cannot have the type <class 'float'>$"):
        Odd.from_data({"x": 1.0})


def test_options_as_data_draw_the_same_cases_as_the_options_themselves():
    """What grading draws from a notebook's stated options (a model as data) is what the visible check draws."""
    patch, classify = EXERCISES["patch_readout"], EXERCISES["classify"]
    options = {"lm": {"family": "gpt2", "seed": 4}, "layers": [1, -1]}
    given = json.loads(json.dumps(options))
    assert patch.cases_from_data(5, given) == patch.cases(5, lm=ModelRef("gpt2", 4), layers=[1, -1])
    assert given == options  # the caller's options are left as they were
    assert patch.cases_from_data(5, {"lm": None}) == patch.cases(5) == patch.cases_from_data(5, {})
    assert classify.cases_from_data(5, {"n_random": 3}) == classify.cases(5, n_random=3)
    assert len(classify.cases(5, n_random=3)) != len(classify.cases(5))


def test_warm_runs_the_forward_pass_of_each_prompt_field_and_nothing_else(monkeypatch):
    from lensref.course.checks import _core

    seen: list[tuple[Case, str]] = []
    monkeypatch.setattr(_core, "captured", lambda case, prompt: seen.append((case, prompt)))
    patch = EXERCISES["patch_readout"]
    case = patch.cases(3, lm=ModelRef("llama", 0))[0]
    patch.warm(case)
    assert seen == [(case, case.source), (case, case.prompt)]
    seen.clear()
    for name in ("top_k", "classify", "fit_translator"):  # no model, nothing to run ahead
        EXERCISES[name].warm(EXERCISES[name].cases(3)[0])
    assert seen == []
    for name in sorted(EXERCISES):  # an exercise with prompt fields has cases that name a model
        cases = EXERCISES[name].cases(3)
        assert not EXERCISES[name].prompt_fields or all(isinstance(c, _core.ModelCase) for c in cases), name


def test_grading_draws_records_and_sends_them_as_data():
    """What the sandbox reads and what crosses the judge-process pipe is the records' data; rebuilt, it is them."""
    from pathlib import Path

    from lensref.course.grading import cases as grading_cases
    from lensref.course.grading.plan import NotebookPlan, TestCell, parse_test_cell

    calls = parse_test_cell(
        'checks.check_patch_readout(patch_readout, lm=lensref.tiny_model("gpt2", seed=4))\n'
        "checks.check_top_k(top_k, k=3)\n"
        "checks.check_first_top_k_layer(first_top_k_layer, n_random=2)",
        "cell",
    )
    cell = TestCell("nb", "cell", 1.0, calls)
    plan = NotebookPlan("nb", Path("nb.ipynb"), [cell])
    drawn = grading_cases.draw("a1", "ann", [plan])
    per_call = drawn[("nb", "cell")]
    assert [type(c) for c in (per_call[0][0], per_call[1][0], per_call[2][0])] == [PatchCase, TopKCase, RanksCase]
    data = json.loads(json.dumps(grading_cases.as_data(drawn)[("nb", "cell")]))
    assert grading_cases.from_data([cell], {("nb", "cell"): data}) == drawn
    probe = json.loads(grading_cases.probe_files([plan], drawn)[("nb", "cell")])
    assert [c["cases"] for c in probe["calls"]] == data
    assert [c["exercise"] for c in probe["calls"]] == ["patch_readout", "top_k", "first_top_k_layer"]


def test_a_first_top_k_layer_case_without_k_is_refused_in_one_line():
    """``k`` is optional in a rank trajectory (settled_layer has none); first_top_k_layer needs it."""
    ex = EXERCISES["first_top_k_layer"]
    case = ex.case_from_data({"ranks": [3, 2, 1], "k": None})
    for use in (ex.inputs, lambda c: ex.judge(c, 2), lambda c: ex.summary([c], "")):
        with pytest.raises(LensError, match=r"^a first_top_k_layer case needs k$"):
            use(case)


@pytest.mark.parametrize("missing", ["parts", "split_seed"])
def test_a_random_split_without_its_parts_or_seed_is_refused_in_one_line(missing):
    """``parts`` and ``split_seed`` are optional in an attribution case (the other splits have none); a random
    split needs both."""
    ex = EXERCISES["attribute"]
    (drawn,) = [case for case in ex.cases(0) if case.split == "random"]
    with pytest.raises(LensError, match=r"^a random split needs parts and split_seed$"):
        ex.inputs(dataclasses.replace(drawn, **{missing: None}))
