"""The visible checks: the reference passes, and each common mistake gets its own one-line diagnosis."""
from __future__ import annotations

import math

import pytest
import torch

from lensref import LensError, capture_residuals, tiny_model
from lensref.course import checks
from lensref.course.checks import CheckFailed
from lensref.course.checks import reading_the_grid as gridref
from lensref.course.checks.variants import block_components, ref_attribute, ref_fit_translator, ref_patch_readout
from lensref.tokens import encode_prompt


@pytest.fixture(scope="module")
def llama():
    return tiny_model("llama")


@pytest.fixture(scope="module")
def gpt2():
    return tiny_model("gpt2")


def fails(check, fn, *args, **kwargs) -> str:
    with pytest.raises(CheckFailed) as info:
        check(fn, *args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, "diagnoses are one line"
    assert info.value._render_traceback_() == [f"\x1b[0;31m✗ {message}\x1b[0m"]
    return message


# --- reference answers ------------------------------------------------------------------------------

def ref_capture(lm, ids):
    return capture_residuals(lm, ids).states[:, 0]


def ref_lens(lm, states):
    return lm.adapter.decode(states)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_reference_functions_pass(family, capsys):
    lm = tiny_model(family)
    checks.check_capture_states(ref_capture, lm=lm)
    checks.check_lens_logits(ref_lens, lm=lm)
    checks.check_logit_diff_by_layer(lambda lm_, s, t, d: (lambda x: x[..., t] - x[..., d])(lm_.adapter.decode(s)), lm=lm)
    out = capsys.readouterr().out
    assert out.count("✓") == 3


def test_statistics_references_pass(capsys):
    checks.check_to_probs(lambda x: torch.softmax(x, -1))
    checks.check_top_k(lambda x, k: torch.softmax(x, -1).topk(k, dim=-1))
    checks.check_entropy(lambda x: torch.distributions.Categorical(logits=x).entropy())
    checks.check_kl_to_final(lambda x: (torch.softmax(x[-1:], -1) * (torch.log_softmax(x[-1:], -1) - torch.log_softmax(x, -1))).sum(-1))
    checks.check_target_rank(lambda x, t: (x > x[..., t : t + 1]).sum(-1) + 1)
    checks.check_first_top_k_layer(gridref.ref_first_top_k_layer)
    checks.check_settled_layer(gridref.ref_settled_layer)
    checks.check_classify(gridref.ref_classify)
    checks.check_fit_translator(ref_fit_translator)
    assert capsys.readouterr().out.count("✓") == 9


# --- assignment 1 mistakes ------------------------------------------------------------------------------

def test_not_written_yet():
    def stub(*args):
        raise NotImplementedError()

    for check in (checks.check_to_probs, checks.check_entropy, checks.check_classify):
        assert "not written yet" in fails(check, stub)


def test_crash_is_one_line():
    assert "raised ZeroDivisionError: division by zero" in fails(checks.check_entropy, lambda x: 1 / 0)


def test_capture_states_mistakes(llama):
    L = llama.n_layers

    def keeps_batch(lm, ids):
        return ref_capture(lm, ids)[:, None]

    def one_short(lm, ids):
        return ref_capture(lm, ids)[1:]

    def normed_last(lm, ids):
        s = ref_capture(lm, ids).clone()
        s[-1] = lm.adapter.final_norm(s[-1])
        return s

    def shifted(lm, ids):
        s = ref_capture(lm, ids)
        return torch.cat([s[1:], lm.adapter.final_norm(s[-1:])])

    assert "wrong shape" in fails(checks.check_capture_states, keeps_batch, lm=llama)
    assert "drop the batch dimension" in fails(checks.check_capture_states, keeps_batch, lm=llama)
    assert f"{L} blocks give {L + 1} states" in fails(checks.check_capture_states, one_short, lm=llama)
    assert "already final-normed" in fails(checks.check_capture_states, normed_last, lm=llama)
    assert "off by one layer" in fails(checks.check_capture_states, shifted, lm=llama)
    assert "expected a torch.Tensor, got list" in fails(checks.check_capture_states, lambda lm, ids: [1], lm=llama)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_lens_logits_mistakes(family):
    lm = tiny_model(family)
    norm, unembed = lm.adapter.final_norm, lm.adapter.unembed
    assert "forgot the final norm" in fails(checks.check_lens_logits, lambda lm_, s: unembed(s), lm=lm)
    assert "normalized twice" in fails(checks.check_lens_logits, lambda lm_, s: unembed(norm(norm(s))), lm=lm)
    assert "still residual states" in fails(checks.check_lens_logits, lambda lm_, s: norm(s), lm=lm)


def test_probability_mistakes():
    assert "do not sum to 1 over the vocabulary (softmax over dim=0)" in fails(checks.check_to_probs, lambda x: torch.softmax(x, 0))
    assert "negative" in fails(checks.check_to_probs, lambda x: x)
    assert "do not sum to 1" in fails(checks.check_to_probs, lambda x: torch.exp(x))
    assert "rows sum to 1 but differ" in fails(checks.check_to_probs, lambda x: torch.softmax(x / 2, -1))


def test_top_k_mistakes():
    assert "logits, not probabilities" in fails(checks.check_top_k, lambda x, k: x.topk(k, dim=-1))
    assert "renormalized" in fails(checks.check_top_k, lambda x, k: (lambda t: (t.values / t.values.sum(-1, keepdim=True), t.indices))(torch.softmax(x, -1).topk(k, -1)))
    assert "least likely" in fails(checks.check_top_k, lambda x, k: torch.softmax(x, -1).topk(k, -1, largest=False))
    assert "wrong order" in fails(checks.check_top_k, lambda x, k: tuple(t.flip(-1) for t in torch.softmax(x, -1).topk(k, -1)))


def test_entropy_kl_rank_mistakes():
    H = lambda x: torch.distributions.Categorical(logits=x).entropy()  # noqa: E731
    assert "bits" in fails(checks.check_entropy, lambda x: H(x) / math.log(2))
    assert "wrong sign" in fails(checks.check_entropy, lambda x: -H(x))
    assert "one entropy per row" in fails(checks.check_entropy, lambda x: x)
    kl = lambda p, q: (torch.softmax(p, -1) * (torch.log_softmax(p, -1) - torch.log_softmax(q, -1))).sum(-1)  # noqa: E731
    assert "reversed" in fails(checks.check_kl_to_final, lambda x: kl(x, x[-1:].expand_as(x)))
    assert "bits" in fails(checks.check_kl_to_final, lambda x: kl(x[-1:].expand_as(x), x) / math.log(2))
    assert "layer 0" in fails(checks.check_kl_to_final, lambda x: kl(x[:1].expand_as(x), x))
    rank = lambda x, t: (x > x[..., t : t + 1]).sum(-1) + 1  # noqa: E731
    assert "start at 0" in fails(checks.check_target_rank, lambda x, t: rank(x, t) - 1)
    assert "least likely" in fails(checks.check_target_rank, lambda x, t: (x < x[..., t : t + 1]).sum(-1) + 1)


# --- assignment 2 mistakes -------------------------------------------------------------------------------

def test_grid_mistakes():
    strict = lambda ranks, k=1: next((i for i, r in enumerate(ranks) if r < k), None)  # noqa: E731
    assert "compare with <=" in fails(checks.check_first_top_k_layer, strict)
    one_based = lambda ranks, k=1: next((i + 1 for i, r in enumerate(ranks) if r <= k), None)  # noqa: E731
    assert "numbered from 0" in fails(checks.check_first_top_k_layer, one_based)
    first_ever = lambda ranks: ranks.index(1) if ranks[-1] == 1 else None  # noqa: E731
    message = fails(checks.check_settled_layer, first_ever)
    assert "drops again later" in message and "stays top-1" in message
    no_lost = lambda r: gridref.STAYS_WRONG if r[-1] != 1 else gridref.ref_classify(r)  # noqa: E731
    assert "got overwritten" in fails(checks.check_classify, no_lost)
    assert "return one of" in fails(checks.check_classify, lambda r: "right")


# --- assignment 3 mistakes -------------------------------------------------------------------------------

def test_logit_diff_mistakes(llama):
    def diff(lm, s, t, d, f=lambda lm, s: lm.adapter.decode(s)):
        x = f(lm, s)
        return x[..., t] - x[..., d]

    assert "sign is flipped" in fails(checks.check_logit_diff_by_layer, lambda lm, s, t, d: -diff(lm, s, t, d), lm=llama)
    assert "forgot the final norm" in fails(
        checks.check_logit_diff_by_layer, lambda lm, s, t, d: diff(lm, s, t, d, lambda lm, s: lm.adapter.unembed(s)), lm=llama)


def test_attribution_sums_and_mistakes(llama):
    comps = block_components(llama, "abc def")
    parts = ref_attribute(llama, comps, 5, 9)
    logits = llama.adapter.decode(comps.sum(0))
    assert float(parts.sum()) == pytest.approx(float(logits[5] - logits[9]), abs=1e-4)
    checks.check_attribute(lambda lm, c, t, d: ref_attribute(lm, c, t, d), lm=llama)

    def per_component(lm, c, t, d):
        x = lm.adapter.decode(c)
        return x[:, t] - x[:, d]

    assert "normalized each component on its own" in fails(checks.check_attribute, per_component, lm=llama)
    w = llama.adapter.unembed.weight
    assert "skipped the final norm" in fails(checks.check_attribute, lambda lm, c, t, d: c @ (w[t] - w[d]), lm=llama)


def test_patch_readout_mistakes(llama):
    ok = lambda lm, v, layer, prompt: ref_patch_readout(lm, v, layer, prompt)  # noqa: E731
    checks.check_patch_readout(ok, lm=llama, layers=[0, 2, 3])
    assert "no effect" in fails(checks.check_patch_readout, lambda lm, v, layer, prompt: lm.model(
        input_ids=encode_prompt(lm.tokenizer, prompt)[None]).logits[0, -1], lm=llama, layers=[1])
    assert "off by one layer" in fails(checks.check_patch_readout, lambda lm, v, layer, prompt: ref_patch_readout(
        lm, v, layer + 1, prompt), lm=llama, layers=[1])

    def leaves_hook(lm, v, layer, prompt):
        lm.adapter.blocks[0].register_forward_pre_hook(lambda m, a: (a[0] * 0.5, *a[1:]))
        return ref_patch_readout(lm, v, layer, prompt)

    lm = tiny_model("llama", seed=1)
    assert "still attached" in fails(checks.check_patch_readout, leaves_hook, lm=lm, layers=[1])


def test_fit_translator_mistakes():
    def no_bias(x, y):
        w = torch.linalg.lstsq(x.double(), y.double()).solution
        return w, torch.zeros(x.shape[1])

    assert "without a bias" in fails(checks.check_fit_translator, no_bias)
    assert "transposed" in fails(checks.check_fit_translator, lambda x, y: (lambda w, b: (w.T, b))(*ref_fit_translator(x, y)))


# --- the grading plumbing (fast parts) ------------------------------------------------------------------

def test_notebook_problem_names_what_is_wrong(tmp_path):
    from lensref.course.autograde import notebook_problem

    (tmp_path / "cut.ipynb").write_text('{"cells": [')
    (tmp_path / "list.ipynb").write_text("[1, 2]")
    (tmp_path / "bad.ipynb").write_text('{"cells": [{"cell_type": "code"}], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}')
    (tmp_path / "ok.ipynb").write_text('{"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}')
    assert notebook_problem(tmp_path / "cut.ipynb").startswith("is not valid JSON (line 1")
    assert "not a notebook" in notebook_problem(tmp_path / "list.ipynb")
    assert "not a valid notebook" in notebook_problem(tmp_path / "bad.ipynb")
    assert notebook_problem(tmp_path / "ok.ipynb") is None


def test_grade_rejects_bad_input(tmp_path):
    from lensref.cli import main
    from lensref.course.autograde import grade

    with pytest.raises(LensError, match="unknown assignment 'nope'; choose from 01-logit-lens"):
        grade("nope", submitted=tmp_path)
    with pytest.raises(LensError, match="no submissions for 01-logit-lens"):
        grade("01-logit-lens", submitted=tmp_path, out=tmp_path)
    assert main(["grade", "01-logit-lens", "--submitted", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
