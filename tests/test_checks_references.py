"""The checks' references against independent derivations: hand-worked cases, plain Python maths, and invariants
of the model (never the reference compared with itself)."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
import torch
from test_checks_support import one_line_failure

from lensref import tiny_model
from lensref.course.checks import EXERCISES, ModelRef
from lensref.course.checks import reading_the_grid as grid
from lensref.course.checks._core import ModelCase, captured
from lensref.course.checks.logit_lens import _entropy, _kl
from lensref.course.checks.variants import PROMPTS_INSIDE, PROMPTS_NEAR_END, patched_logits, resolve_layer
from lensref.patchscope import IDENTITY_PROMPT
from lensref.residual_map import fit_affine

LLAMA = ModelCase(ModelRef("llama", 0))  # a case on the tiny Llama

# --- the rank trajectories: every edge case worked out by hand ----------------------------------------------

# ranks: (first layer with rank <= 1, <= 2, <= 5, settled layer, label)
HAND_WORKED = {
    (9, 1, 4, 1, 1): (1, 1, 1, 3, "corrected"),
    (7, 3, 1, 1): (2, 2, 1, 2, "corrected"),
    (6, 2, 1, 2, 3): (2, 1, 1, None, "lost"),
    (8, 5, 3, 2, 2): (None, 3, 1, None, "stays wrong"),
    (1, 1, 1): (0, 0, 0, 0, "right throughout"),
    (1,): (0, 0, 0, 0, "right throughout"),
    (3,): (None, None, 0, None, "stays wrong"),
    (4, 4, 4, 4): (None, None, 0, None, "stays wrong"),
    (1, 5, 1): (0, 0, 0, 2, "corrected"),
    (1, 1, 2): (0, 0, 0, None, "lost"),
    (1, 3): (0, 0, 0, None, "lost"),
    (2, 1): (1, 0, 0, 1, "corrected"),
    (2, 1, 2): (1, 0, 0, None, "lost"),
    (1, 2, 2, 1, 1): (0, 0, 0, 3, "corrected"),
    (5, 1, 1, 3): (1, 1, 0, None, "lost"),
    (6, 5, 4, 3, 2, 1): (5, 4, 1, 5, "corrected"),
    (2, 1, 1, 2, 1): (1, 0, 0, 4, "corrected"),
    (3, 2, 2): (None, 1, 0, None, "stays wrong"),
}


@pytest.mark.parametrize("ranks", HAND_WORKED)
def test_grid_references_match_the_hand_worked_table(ranks):
    first1, first2, first5, settled, label = HAND_WORKED[ranks]
    ranks = list(ranks)
    assert [grid.reference_first_top_k_layer(ranks, k) for k in (1, 2, 5)] == [first1, first2, first5]
    assert grid.reference_settled_layer(ranks) == settled
    assert grid.reference_classify(ranks) == label


def test_the_settled_layer_reference_is_the_library_s_first_layer_holding():
    """One definition of "from which layer on": the check's reference and the library's lens results agree on every
    trajectory (the hand-worked ones, random ones, the empty one)."""
    from lensref.indices import first_layer_holding

    rng = random.Random(0)
    trajectories = [list(r) for r in HAND_WORKED] + [grid.random_ranks(rng) for _ in range(300)] + [[]]
    for ranks in trajectories:
        assert grid.reference_settled_layer(ranks) == first_layer_holding([r == 1 for r in ranks])


def test_every_edge_case_is_hand_worked_and_every_story_is_covered():
    assert {tuple(c) for c in grid.EDGE_CASES} <= set(HAND_WORKED)
    labels = Counter(HAND_WORKED[tuple(c)][4] for c in grid.EDGE_CASES)
    assert set(labels) == set(grid.LABELS)
    starts_right = {HAND_WORKED[tuple(c)][4] for c in grid.EDGE_CASES if c[0] == 1 and len(c) > 1}
    assert starts_right == {"corrected", "lost", "right throughout"}  # rank 1 at the embeddings, then anything


def test_random_trajectories_reach_every_story_including_those_that_start_at_rank_1():
    rng = random.Random(0)
    draws = [grid.random_ranks(rng) for _ in range(400)]
    stories = Counter((grid.reference_classify(r), r[0] == 1) for r in draws if len(r) > 1)
    for label in ("corrected", "lost", "right throughout"):
        assert stories[(label, True)] >= 5, stories
    for label in ("corrected", "lost", "stays wrong"):
        assert stories[(label, False)] >= 5, stories
    assert {len(r) for r in draws} == set(range(1, 13))
    assert any(2 <= min(r) <= 5 for r in draws)  # ranks near the k thresholds


def test_grid_cases_are_seeded_and_given_cases_replace_the_draw():
    ex = EXERCISES["classify"]
    assert ex.cases(3) == ex.cases(3) != ex.cases(4)
    assert ex.cases(3, cases=[[1, 5, 1]]) == [grid.RanksCase((1, 5, 1))]
    pairs = EXERCISES["first_top_k_layer"].cases(0, cases=[([3, 2, 2], 1)])
    assert pairs == [grid.RanksCase((3, 2, 2), 1)]
    with pytest.raises(ValueError, match="list of ranks"):
        ex.cases(0, cases=[[0, 2]])


# --- statistics: plain Python maths on the same inputs --------------------------------------------------------


def rows(t: torch.Tensor) -> list[list[float]]:
    return t.reshape(-1, t.shape[-1]).tolist()


def py_softmax(row):
    m = max(row)
    e = [math.exp(v - m) for v in row]
    return [v / sum(e) for v in e]


def test_entropy_and_kl_by_hand():
    # p = (1/4, 3/4): H = -(1/4 ln 1/4 + 3/4 ln 3/4)
    h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert float(_entropy(torch.tensor([0.0, math.log(3)], dtype=torch.float64))) == pytest.approx(h, abs=1e-12)
    assert float(_entropy(torch.zeros(8))) == pytest.approx(math.log(8), abs=1e-12)  # uniform: ln V
    # KL((1/4, 3/4) || (1/2, 1/2)) = 1/4 ln(1/2) + 3/4 ln(3/2)
    want = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert float(_kl(torch.tensor([0.0, math.log(3)], dtype=torch.float64), torch.zeros(2))) == pytest.approx(
        want, abs=1e-12
    )


def test_statistics_judges_accept_plain_python_answers_and_refuse_small_errors():
    def judged(name, answer_of, options):
        ex = EXERCISES[name]
        for case in ex.cases(5, **options):
            args = ex.inputs(case)
            got = answer_of(*args)
            assert "✓" not in ex.judge(case, got)  # returns the detail line, prints nothing
            return ex, case, got

    shape = {"shape": (2, 3, 7)}
    ex, case, got = judged("to_probs", lambda x: torch.tensor([py_softmax(r) for r in rows(x)]).reshape(x.shape), shape)
    one_line_failure(lambda: ex.judge(case, got + 1e-2))

    def py_top_k(x, k):
        picked = [sorted(enumerate(py_softmax(r)), key=lambda iv: -iv[1])[:k] for r in rows(x)]
        return (
            torch.tensor([[p for _, p in row] for row in picked]).reshape(*x.shape[:-1], k),
            torch.tensor([[i for i, _ in row] for row in picked]).reshape(*x.shape[:-1], k),
        )

    ex, case, (p, i) = judged("top_k", py_top_k, {"k": 3, **shape})
    one_line_failure(lambda: ex.judge(case, (p * 1.01, i)))

    def py_entropy(x):
        return torch.tensor([-sum(p * math.log(p) for p in py_softmax(r)) for r in rows(x)]).reshape(x.shape[:-1])

    ex, case, got = judged("entropy", py_entropy, shape)
    one_line_failure(lambda: ex.judge(case, got + 1e-2))

    def py_kl(x):
        final = [py_softmax(r) for r in rows(x[-1])]
        out = []
        for layer in x:
            out.append(
                [
                    sum(f * (math.log(f) - math.log(q)) for f, q in zip(fr, py_softmax(r)))
                    for fr, r in zip(final, rows(layer))
                ]
            )
        return torch.tensor(out).reshape(x.shape[:-1])

    ex, case, got = judged("kl_to_final", py_kl, shape)
    one_line_failure(lambda: ex.judge(case, got + 1e-2))

    def py_rank(x, t):
        return torch.tensor([1 + sum(v > r[t] for v in r) for r in rows(x)]).reshape(x.shape[:-1])

    ex = EXERCISES["target_rank"]
    for case in ex.cases(5, **shape):  # the second case has ties
        x, t = ex.inputs(case)
        ex.judge(case, py_rank(x, t))
        wrong = py_rank(x, t) + 1
        one_line_failure(lambda case=case, wrong=wrong: ex.judge(case, wrong))


def test_rank_ties_are_really_there():
    ex = EXERCISES["target_rank"]
    plain, tied = ex.cases(11)
    x, t = ex.inputs(tied)
    assert bool(((x == x[..., t : t + 1]).sum(-1) > 1).any())  # the target shares its logit with another token
    x, t = ex.inputs(plain)
    assert not bool(((x == x[..., t : t + 1]).sum(-1) > 1).any())


def test_statistic_cases_use_another_tensor_rank_too():
    for name in ("to_probs", "top_k", "entropy", "kl_to_final", "target_rank"):
        first, second = EXERCISES[name].cases(0)
        assert len(first.shape) != len(second.shape) and first.shape[-1] == second.shape[-1], name
    assert [c.k for c in EXERCISES["top_k"].cases(0, k=5)] == [5, 1]


# --- the model's references, against what the model itself does ----------------------------------------------


@pytest.fixture(scope="module")
def llama():
    return ModelRef("llama", 0).load()


def test_captured_states_are_the_embeddings_each_block_output_and_the_final_norm_input(llama):
    ids = llama.tokenizer("abc def", return_tensors="pt")["input_ids"][0]
    states, logits = captured(LLAMA, "abc def")
    assert torch.equal(states[0], llama.adapter.embed(ids))
    x = states[0][None]
    positions = torch.arange(len(ids))[None]
    rotary = llama.model.model.rotary_emb(x, positions)
    for layer, block in enumerate(llama.adapter.blocks):  # run the blocks one by one, by hand
        x = block(x, position_embeddings=rotary, attention_mask=None, position_ids=positions)
        x = x[0] if isinstance(x, tuple) else x
        torch.testing.assert_close(states[layer + 1], x[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        llama.adapter.unembed(llama.adapter.final_norm(states[-1])), logits, rtol=1e-4, atol=1e-5
    )
    assert torch.equal(logits, llama.model(input_ids=ids[None]).logits[0])
    again, _ = captured(LLAMA, "abc def")
    again += 1  # the copies are fresh: editing one changes nothing for the next caller
    assert torch.equal(captured(LLAMA, "abc def")[0], states)


def test_patch_reference_at_layer_0_is_a_swapped_embedding(llama):
    ids = llama.tokenizer(IDENTITY_PROMPT, return_tensors="pt")["input_ids"][0]
    slot = IDENTITY_PROMPT.rindex("?")  # the byte tokenizer: one token per character
    vector = torch.randn(llama.adapter.d_model, generator=torch.Generator().manual_seed(0))
    embeds = llama.adapter.embed(ids)[None].clone()
    embeds[0, slot] = vector
    by_embeddings = llama.model(inputs_embeds=embeds).logits[0, -1]
    torch.testing.assert_close(
        patched_logits(llama, IDENTITY_PROMPT, 0, vector, [slot])[0], by_embeddings, rtol=1e-4, atol=1e-5
    )


def test_patch_reference_invariants(llama):
    L = llama.n_layers
    prompt = PROMPTS_INSIDE[0]
    ids = llama.tokenizer(prompt, return_tensors="pt")["input_ids"][0]
    clean = llama.model(input_ids=ids[None]).logits[0, -1]
    states, _ = captured(LLAMA, prompt)
    slot = prompt.rindex("?")
    for layer in range(L + 1):  # writing the state the prompt already has changes nothing
        torch.testing.assert_close(
            patched_logits(llama, prompt, layer, states[layer, slot], [slot])[0], clean, rtol=1e-4, atol=1e-5
        )
    vector = states[1, 0] * 3
    # at layer L only the final norm and the unembedding follow, position by position: the last token is untouched
    torch.testing.assert_close(patched_logits(llama, prompt, L, vector, [slot])[0], clean, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(patched_logits(llama, prompt, 1, vector, [slot])[0], clean, atol=1e-3)
    # the batched form is the row-by-row form
    batch = patched_logits(llama, prompt, 1, vector, [2, slot, len(ids) - 1])
    for row, position in enumerate([2, slot, len(ids) - 1]):
        torch.testing.assert_close(
            batch[row], patched_logits(llama, prompt, 1, vector, [position])[0], rtol=1e-4, atol=1e-5
        )
    assert [resolve_layer(s, L) for s in (0, 1, "middle", -1, -3)] == [0, 1, 1, 3, 1]
    with pytest.raises(ValueError, match="out of range"):
        resolve_layer(4, L)


@pytest.mark.real_model
def test_placeholder_positions_on_the_default_model(real_lm):
    """Worked out from SmolLM2's tokens: the placeholder sits at different distances from the end, and two prompts
    hold an earlier '?' as well."""
    from lensref.patchscope import find_placeholder
    from lensref.tokens import encode_prompt

    expected = {
        IDENTITY_PROMPT: (19, 21),
        PROMPTS_NEAR_END[1]: (9, 11),
        PROMPTS_INSIDE[0]: (6, 21),
        PROMPTS_INSIDE[1]: (4, 14),
    }
    for prompt, (slot, n) in expected.items():
        ids = encode_prompt(real_lm.tokenizer, prompt)
        assert (find_placeholder(real_lm.tokenizer, ids, "?"), len(ids)) == (slot, n), prompt


def test_attribution_reference_sums_to_the_models_logit_difference():
    ex = EXERCISES["attribute"]
    cases = ex.cases(2, lm=ModelRef("llama", 5))
    assert [c.split for c in cases] == ["blocks", "writes", "random"]
    for case in cases:
        lm, comps, t, d = ex.inputs(case)
        final = comps.double().sum(0)
        norm, w = lm.adapter.final_norm, lm.adapter.unembed.weight.double()
        # the frozen-scale formula in plain maths: s * w_norm * (W_U[t] - W_U[d]), s = 1 / sqrt(mean(x^2) + eps)
        s = 1.0 / math.sqrt(float(final.pow(2).mean()) + norm.variance_epsilon)
        parts = comps.double() @ (s * norm.weight.double() * (w[t] - w[d]))
        ex.judge(case, parts)
        model = lm.model(input_ids=lm.tokenizer(case.prompt, return_tensors="pt")["input_ids"]).logits[0, -1]
        assert float(parts.sum()) == pytest.approx(float(model[t] - model[d]), abs=1e-3)
        one_line_failure(lambda case=case, wrong=parts * 1.05: ex.judge(case, wrong))


def test_fit_reference_on_hand_worked_and_exact_data():
    weight, bias, error = fit_affine(torch.tensor([[0.0], [1.0], [2.0]]), torch.tensor([[1.0], [3.0], [5.0]]))
    assert (float(weight), float(bias), error) == (
        pytest.approx(2.0),
        pytest.approx(1.0),
        pytest.approx(0.0, abs=1e-12),
    )
    gen = torch.Generator().manual_seed(1)
    x, w, b = torch.randn(50, 6, generator=gen) + 4, torch.randn(6, 6, generator=gen), torch.randn(6, generator=gen)
    got_w, got_b, _ = fit_affine(x, x @ w + b)
    torch.testing.assert_close(got_w.float(), w, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got_b.float(), b, rtol=1e-4, atol=1e-4)
    ex = EXERCISES["fit_translator"]
    (case,) = ex.cases(0, n=40, d=3)
    x, y = ex.inputs(case)
    a = torch.cat([x.double(), torch.ones(40, 1, dtype=torch.float64)], 1)
    sol = torch.linalg.solve(a.T @ a, a.T @ y.double())  # the normal equations, with a column of ones
    ex.judge(case, (sol[:-1], sol[-1]))


def test_answer_rank_window_by_counting_on_the_lens():
    ex = EXERCISES["answer_ranks"]
    lm = tiny_model("gpt2", seed=2)
    for case in ex.cases(0, lm=lm):
        ids = lm.tokenizer(case.prompt, return_tensors="pt")["input_ids"][0]
        out = lm.model(input_ids=ids[None], output_hidden_states=True)
        last = [h[0, -1] for h in out.hidden_states[:-1]]  # GPT-2's last hidden state is already normed
        logits = [lm.adapter.decode(h) for h in last] + [out.logits[0, -1]]
        target = ord(case.answer)
        ranks = [1 + sum(float(v) > float(row[target]) for v in row) for row in logits]
        assert ex.judge(case, ranks).startswith("right for")
        assert ranks[-1] == 1 + int((out.logits[0, -1] > out.logits[0, -1, target]).sum())


def test_one_table_of_decoding_mistakes_names_them_alike_in_every_judge(llama):
    """Each named decoding mistake, made in the lens exercise and in the logit-difference exercise, is diagnosed
    with the table's one line in both (each with its own hint)."""
    from lensref.course.checks import CheckFailed, check_lens_logits, check_logit_diff_by_layer
    from lensref.course.checks.mistakes import DECODE_MISTAKES

    assert len({m.diagnosis for m in DECODE_MISTAKES}) == len(DECODE_MISTAKES) == 2
    for mistake in DECODE_MISTAKES:
        lens = lambda lm, states, m=mistake: m.logits(lm, states)  # noqa: E731
        diff = lambda lm, states, t, d, m=mistake: (lambda x: x[..., t] - x[..., d])(m.logits(lm, states))  # noqa: E731
        for check, fn in ((check_lens_logits, lens), (check_logit_diff_by_layer, diff)):
            with pytest.raises(CheckFailed) as caught:
                check(torch.no_grad()(fn), lm=llama)
            assert mistake.diagnosis in str(caught.value), (check.__name__, str(caught.value))
