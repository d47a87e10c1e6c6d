"""The grading pieces one by one, with hostile input: the wire format, the plan, the code reader, the notebook merge,
the feedback page. No sandbox, no model."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import nbformat
import pytest
import torch

from lensref.course.grading import feedback, wire
from lensref.course.grading.judge import CellVerdict
from lensref.course.grading.plan import parse_test_cell
from lensref.course.grading.static import inspect_code
from lensref.course.grading.submissions import find_notebooks, notebook_problem, prepare
from lensref.errors import LensError

ROOT = Path(__file__).resolve().parents[1]


# --- wire ---------------------------------------------------------------------------------------------------


def test_wire_round_trip_keeps_types(tmp_path):
    value = [
        {"value": (torch.arange(6, dtype=torch.int64).reshape(2, 3), torch.ones(2, dtype=torch.float16))},
        {"value": [1, 2.5, None, True, "lost", float("nan"), float("-inf")]},
        {"value": {"k": torch.tensor(3.0)}},
    ]
    wire.save(tmp_path / "x", value)
    back = wire.load(tmp_path / "x")
    ids, halves = back[0]["value"]
    assert isinstance(back[0]["value"], tuple) and ids.dtype == torch.int64 and halves.dtype == torch.float16
    assert torch.equal(ids, value[0]["value"][0])
    plain = back[1]["value"]
    assert plain[:5] == [1, 2.5, None, True, "lost"] and plain[5] != plain[5] and plain[6] == float("-inf")
    assert float(back[2]["value"]["k"]) == 3.0


def test_wire_refuses_what_is_not_data(tmp_path):
    with pytest.raises(wire.WireError):
        wire.save(tmp_path / "x", [lambda: 1])
    with pytest.raises(wire.WireError):
        wire.save(tmp_path / "x", {1: "int key"})


@pytest.mark.parametrize(
    "doc",
    [
        {"value": {"__tensor__": "missing"}},
        {"value": {"__pickle__": "gASVCAAAAAAAAACMBHRlc3SULg=="}},
        {"value": {"__tuple__": "not a list"}},
        {"value": {"__float__": "__import__('os')"}},
        {"no value": 1},
        ["a", "list"],
    ],
)
def test_wire_load_rejects_forged_documents(tmp_path, doc):
    (tmp_path / "x.json").write_text(json.dumps(doc))
    with pytest.raises(wire.WireError):
        wire.load(tmp_path / "x")


def test_wire_load_never_unpickles(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"value": {"__tensor__": "t0"}}))
    (tmp_path / "x.safetensors").write_bytes(pickle.dumps({"t0": torch.ones(2)}))
    with pytest.raises(wire.WireError, match="not valid safetensors"):
        wire.load(tmp_path / "x")


def test_wire_load_caps_sizes_and_ignores_links(tmp_path, monkeypatch):
    (tmp_path / "real.json").write_text(json.dumps({"value": 1}))
    (tmp_path / "x.json").symlink_to(tmp_path / "real.json")
    with pytest.raises(wire.WireError, match="no result"):
        wire.load(tmp_path / "x")
    monkeypatch.setattr(wire, "MAX_JSON_BYTES", 10)
    with pytest.raises(wire.WireError, match="too large"):
        wire.load(tmp_path / "real")


# --- plan ---------------------------------------------------------------------------------------------------


def test_plan_parses_check_calls_with_options():
    calls = parse_test_cell(
        "# visible\nchecks.check_capture_states(capture_states)\n### BEGIN HIDDEN TESTS\n"
        "checks.check_capture_states(capture_states, n_prompts=3, "
        'lm=lensref.tiny_model("gpt2", seed=4))\n### END HIDDEN TESTS',
        "cell",
    )
    assert [c.exercise for c in calls] == ["capture_states", "capture_states"]
    assert calls[1].options == {"n_prompts": 3, "lm": {"family": "gpt2", "seed": 4}}
    assert calls[0].function == "capture_states"


def test_grading_draws_and_warms_cases_through_the_exercise(monkeypatch):
    """The plan's plain-data options (a model as a dict) give the same cases as the visible check's options; the
    warm-up runs the forward passes of the fields the exercise names, and nothing for a case without a model."""
    from lensref.course.checks import EXERCISES, ModelRef, _core
    from lensref.course.grading import cases as grading_cases
    from lensref.course.grading.plan import NotebookPlan, TestCell

    calls = parse_test_cell(
        'checks.check_patch_readout(patch_readout, layers=[1, -1], lm=lensref.tiny_model("gpt2", seed=4))\n'
        "checks.check_classify(classify, n_random=3)",
        "cell",
    )
    patch, classify = EXERCISES["patch_readout"], EXERCISES["classify"]
    assert patch.cases_from_data(5, calls[0].options) == patch.cases(5, lm=ModelRef("gpt2", 4), layers=[1, -1])
    assert classify.cases_from_data(5, calls[1].options) == classify.cases(5, n_random=3)
    plan = NotebookPlan("nb", Path("nb.ipynb"), [TestCell("nb", "cell", 1.0, calls)])
    drawn = grading_cases.draw("a1", "ann", [plan])
    assert drawn[("nb", "cell")][0] == patch.cases_from_data(
        grading_cases.seed("a1", "ann", "nb", "cell", "0"), calls[0].options
    )
    warmed: list[tuple[str, str]] = []
    monkeypatch.setattr(_core, "captured", lambda case, prompt: warmed.append((case.lm.family, prompt)))
    for case in drawn[("nb", "cell")][0]:
        patch.warm(case)
    assert warmed == [("gpt2", getattr(c, f)) for c in drawn[("nb", "cell")][0] for f in ("source", "prompt")]
    for case in drawn[("nb", "cell")][1]:
        classify.warm(case)
    assert len(warmed) == 2 * len(drawn[("nb", "cell")][0])


@pytest.mark.parametrize(
    "source",
    [
        "assert classify([1]) == 'right throughout'",
        "checks.check_classify(classify, cases=make_cases())",
        "import os\nchecks.check_classify(classify)",
        "checks.check_classify(classify, **opts)",
        "print('hi')",
        "",
    ],
)
def test_plan_rejects_anything_but_check_calls(source):
    with pytest.raises(LensError) as info:
        parse_test_cell(source, "solutions/x.ipynb cell test_x")
    assert "\n" not in str(info.value) and "test_x" in str(info.value)


# --- reading the code -----------------------------------------------------------------------------------------


def test_reference_calls_are_found_through_helpers_aliases_and_getattr():
    sources = [
        "import lensref\nfrom lensref import capture_residuals as cr\n",
        "def _grab(lm, ids):\n    return cr(lm, ids).states[:, 0]\n\n"
        "def capture_states(lm, input_ids):\n    return _grab(lm, input_ids)\n",
        'def lens_logits(lm, states):\n    return getattr(lm.adapter, "decode")(states)\n',
        "def top_k(logits, k):\n    p = logits.softmax(-1)\n    return p.topk(k)\n",
    ]
    report = inspect_code(
        sources,
        {"capture_states": ("capture_residuals",), "lens_logits": ("adapter.decode",), "top_k": ("adapter.decode",)},
    )
    assert report.uses_reference == {"capture_states": ["capture_residuals"], "lens_logits": ["adapter.decode"]}


def test_honest_code_is_not_flagged_and_obfuscation_is_reported_for_review():
    sources = [
        "def answer_ranks(lm, prompt, answer):\n    print(lm.tokenizer.decode([1]))\n    return []\n",
        "def classify(ranks):\n    return eval(\"'lost'\")\n",
    ]
    report = inspect_code(sources, {"answer_ranks": ("adapter.decode",), "classify": ("ref_classify",)})
    assert report.uses_reference == {}
    assert report.review == ["classify: calls eval()"]


# --- finding and merging notebooks ----------------------------------------------------------------------------


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("{}")


def test_a_single_renamed_notebook_is_graded_with_a_note(tmp_path):
    _touch(tmp_path, "logit_lens (1).ipynb")
    found = find_notebooks(tmp_path, ["logit_lens"])
    assert found.problem is None and found.notebooks["logit_lens"].name == "logit_lens (1).ipynb"
    assert found.notes == ["graded logit_lens (1).ipynb as logit_lens.ipynb"]


@pytest.mark.parametrize(
    "files,expected",
    [
        (["a.ipynb", "b.ipynb"], "found a.ipynb, b.ipynb in"),
        ([], "found no notebook in"),
        (["notes.txt"], "found no notebook in"),
    ],
)
def test_several_or_no_notebooks_is_one_line(tmp_path, files, expected):
    _touch(tmp_path, *files)
    found = find_notebooks(tmp_path, ["logit_lens"])
    assert found.problem.startswith(expected) and found.problem.endswith("expected logit_lens.ipynb")
    assert "\n" not in found.problem


def test_malformed_notebooks_are_named(tmp_path):
    (tmp_path / "cut.ipynb").write_text('{"cells": [')
    (tmp_path / "list.ipynb").write_text("[1, 2]")
    assert notebook_problem(tmp_path / "cut.ipynb").startswith("is not valid JSON")
    assert notebook_problem(tmp_path / "list.ipynb").startswith("is JSON but not a notebook")


def _source():
    return nbformat.read(ROOT / "solutions" / "01-logit-lens" / "logit_lens.ipynb", as_version=4)


def _released():
    return nbformat.read(ROOT / "exercises" / "01-logit-lens" / "logit_lens.ipynb", as_version=4)


def _gid(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def test_prepare_restores_locked_cells_and_probes_every_test_cell():
    sub = _released()
    for cell in sub.cells:
        if _gid(cell) == "setup":
            cell.source = "import os; os.system('touch /tmp/pwned')"  # an edited locked cell
    sub.cells = [c for c in sub.cells if _gid(c) != "test_entropy"]  # a deleted test cell
    extra = nbformat.v4.new_code_cell(
        "x = 1", metadata={"nbgrader": {"grade_id": "test_fake", "grade": True, "points": 100, "locked": True}}
    )
    sub.cells.insert(3, extra)  # a forged graded cell
    prepared = prepare(sub, _source(), "logit_lens").notebook
    cells = {_gid(c): c for c in prepared.cells if _gid(c)}
    assert "touch /tmp/pwned" not in cells["setup"].source and "load_model" in cells["setup"].source
    tests = [g for g in cells if g.startswith("test_")]
    assert sorted(tests) == sorted(_gid(c) for c in _source().cells if c.metadata.get("nbgrader", {}).get("grade"))
    assert all("_lensref_probe.record('logit_lens', " in cells[g].source for g in tests)
    order = [_gid(c) for c in prepared.cells if _gid(c)]
    assert order.index("test_entropy") == order.index("entropy") + 1  # put back after its exercise
    assert len({c.id for c in prepared.cells}) == len(prepared.cells)


def test_prepare_accepts_every_saved_form(tmp_path):
    """JupyterLab (4.5 with ids), classic Notebook (4.4, no ids) and nbformat 3 give the same notebook to run."""
    lab = _released()
    lab.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    for cell in lab.cells:
        cell.metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00Z"}
    classic = nbformat.v4.upgrade(json.loads(nbformat.writes(_released())))
    classic["nbformat_minor"] = 4
    for cell in classic["cells"]:
        cell.pop("id", None)
        cell.setdefault("metadata", {})["trusted"] = True
    (tmp_path / "classic.ipynb").write_text(json.dumps(classic))
    v3 = nbformat.convert(_released(), 3)
    (tmp_path / "v3.ipynb").write_text(nbformat.writes(v3, version=3))
    (tmp_path / "lab.ipynb").write_text(nbformat.writes(lab))
    runs = []
    for name in ("lab", "classic", "v3"):
        assert notebook_problem(tmp_path / f"{name}.ipynb") is None, name
        nb = nbformat.read(tmp_path / f"{name}.ipynb", as_version=4)
        runs.append([(c.cell_type, c.source) for c in prepare(nb, _source(), "logit_lens").notebook.cells])
    assert runs[0] == runs[1] == runs[2]


# --- feedback -------------------------------------------------------------------------------------------------

HOSTILE = [
    ("display_data", {"text/html": "<script>alert(1)</script>", "text/plain": "<script>alert(2)</script>"}),
    ("display_data", {"image/png": "PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+", "text/plain": "<img src=x onerror=alert(3)>"}),
    ("display_data", {"image/svg+xml": "<svg onload=alert(4)>", "text/plain": "svg"}),
]


def test_feedback_escapes_everything_a_submission_printed():
    executed = _released()
    md = nbformat.v4.new_markdown_cell(
        "[click](javascript:alert(5)) <img src=x onerror=alert(6)> <script>x()</script> [ok](https://example.org/)"
    )
    code = nbformat.v4.new_code_cell("print('<b>hi</b>')")
    code.outputs = [nbformat.v4.new_output(kind, data=data) for kind, data in HOSTILE]
    code.outputs.append(nbformat.v4.new_output("stream", name="stdout", text="<iframe src=javascript:alert(7)>"))
    code.outputs.append(nbformat.v4.new_output("error", ename="<script>", evalue="<svg/onload=alert(8)>", traceback=[]))
    executed.cells += [md, code]
    verdicts = {"test_to_probs": CellVerdict("logit_lens", "test_to_probs", 0, 1, ["✗ to_probs: <script>bad</script>"])}
    page = feedback.render("<script>title</script>", executed, _source(), verdicts, ["graded <b>x</b>.ipynb"])
    lowered = page.lower()
    assert "<script" not in lowered and "<iframe" not in lowered and "<svg" not in lowered
    assert not re.search(r"<[^>]*\son\w+\s*=", lowered), "an event handler attribute survived"
    assert 'href="javascript' not in lowered
    assert 'href="https://example.org/"' in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "data:image/png" not in page  # the "PNG" was an SVG in disguise
    assert "### BEGIN HIDDEN TESTS" not in page and "n_prompts=3" not in page  # hidden tests stay hidden


# --- links under submitted/ are never followed -----------------------------------------------------------------


def _submission(top, student="ann", name="logit_lens.ipynb"):
    folder = top / student / "01-logit-lens"
    folder.mkdir(parents=True)
    path = folder / name
    path.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    return folder, path


def test_a_notebook_that_is_a_symlink_is_refused(tmp_path):
    top = tmp_path / "submitted"
    folder, path = _submission(top)
    path.unlink()
    path.symlink_to(tmp_path / "solutions.ipynb")
    found = find_notebooks(folder, ["logit_lens"], top=top)
    assert found.refused == "ann/01-logit-lens/logit_lens.ipynb is a symbolic link (links are never followed)"
    assert found.notebooks == {}


def test_a_linked_folder_anywhere_on_the_way_is_refused(tmp_path):
    top = tmp_path / "submitted"
    real, _ = _submission(tmp_path / "elsewhere")
    (top / "bob").mkdir(parents=True)
    (top / "bob" / "01-logit-lens").symlink_to(real, target_is_directory=True)
    found = find_notebooks(top / "bob" / "01-logit-lens", ["logit_lens"], top=top)
    assert found.refused is not None and "bob/01-logit-lens is a symbolic link" in found.refused
    (tmp_path / "cy-real").mkdir()
    (top / "cy").symlink_to(tmp_path / "cy-real", target_is_directory=True)
    assert "cy is a symbolic link" in (
        find_notebooks(top / "cy" / "01-logit-lens", ["logit_lens"], top=top).refused or ""
    )


def test_a_hard_linked_notebook_is_refused_and_a_plain_one_is_not(tmp_path):
    top = tmp_path / "submitted"
    folder, path = _submission(top)
    other, _ = _submission(top, "dee")
    assert find_notebooks(folder, ["logit_lens"], top=top).refused is None
    (other / "logit_lens.ipynb").unlink()
    import os

    os.link(path, other / "logit_lens.ipynb")
    assert "1 other hard link" in (find_notebooks(folder, ["logit_lens"], top=top).refused or "")
    assert "1 other hard link" in (find_notebooks(other, ["logit_lens"], top=top).refused or "")


def test_reading_a_submission_never_follows_a_link_swapped_in_late(tmp_path):
    from lensref.course.grading.submissions import read_no_follow

    target = tmp_path / "secret.ipynb"
    target.write_text("{}")
    link = tmp_path / "late.ipynb"
    link.symlink_to(target)
    with pytest.raises(OSError):
        read_no_follow(link)


def test_only_safe_paths_under_the_result_folders_come_back():
    from lensref.course.grading import layout

    assert layout.is_result("outputs/logit_lens/test_x.json") and layout.is_result("executed/a.ipynb")
    for bad in ("run/a.ipynb", "outputs", "../outputs/a", "/outputs/a", "outputs/../job.json", ""):
        assert not layout.is_result(bad), bad
    spec = layout.JobSpec(("a", "b"), 30.0, max_restarts=0)
    assert layout.JobSpec.from_bytes(spec.to_bytes()) == spec
    files = layout.job_files(spec, {"a": b"A"}, {("a", "test_x"): b"C"})
    assert files == {"run/a.ipynb": b"A", "cases/a/test_x.json": b"C", "job.json": spec.to_bytes()}
