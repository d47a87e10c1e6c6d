"""The exercise checks: right answers written independently pass, and every wrong implementation listed here fails
with its own one-line diagnosis, both in the visible check and in the hidden verdict grading computes."""

from __future__ import annotations

import contextlib
import difflib
import io
import math
import os
import re
from pathlib import Path

import pytest
import torch
from test_checks_support import hidden_verdict, one_line_failure

from lensref import tiny_model
from lensref.course import checks
from lensref.course.checks import EXERCISES, ModelRef, run_check
from lensref.course.checks.reading_the_grid import RanksCase
from lensref.patchscope import IDENTITY_PROMPT
from lensref.tokens import encode_prompt


@pytest.fixture(scope="module")
def llama():
    return tiny_model("llama")


@pytest.fixture(scope="module")
def gpt2():
    return tiny_model("gpt2")


def fails(name: str, fn, seeds=(0, 1), hidden: bool = True, **options) -> str:
    """The one-line diagnosis of ``fn`` in the visible check (it fails for every seed, with the same diagnosis
    before any number) and, the same line, in the hidden verdict (judged after the data round trip)."""
    ex = EXERCISES[name]
    messages = [one_line_failure(lambda seed=seed: run_check(ex, fn, seed=seed, **options)) for seed in seeds]
    assert len({m.split(" (")[0].split(":")[1][:25] for m in messages}) == 1, messages
    if hidden:
        opts = {k: (ModelRef.of(v) if k == "lm" else v) for k, v in options.items()}
        assert one_line_failure(lambda: hidden_verdict(ex, fn, seeds[0], **opts)) == messages[0]
    return messages[0]


# --- right answers, written independently of the checks --------------------------------------------------------


def capture_via_hidden_states(lm, ids):
    """transformers' hidden states, with the last one replaced by the final norm's input (caught by a hook)."""
    seen = {}
    handle = lm.adapter.final_norm.register_forward_pre_hook(lambda m, a: seen.update(x=a[0]))
    try:
        out = lm.model(input_ids=ids[None], output_hidden_states=True)
    finally:
        handle.remove()
    return torch.stack([*out.hidden_states[:-1], seen["x"]])[:, 0]


def lens_by_formula(lm, states):
    """The final norm written out (RMSNorm or LayerNorm), then the unembedding matrix."""
    norm = lm.adapter.final_norm
    x = states.double()
    if isinstance(norm, torch.nn.LayerNorm):
        normed = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + norm.eps)
        normed = normed * norm.weight.double() + norm.bias.double()
    else:
        normed = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon) * norm.weight.double()
    unembed = lm.adapter.unembed
    logits = normed @ unembed.weight.double().T
    return (logits if unembed.bias is None else logits + unembed.bias.double()).float()


def probs_by_hand(x):
    e = torch.exp(x.double() - x.double().amax(-1, keepdim=True))
    return e / e.sum(-1, keepdim=True)


def top_k_by_sorting(x, k):
    p = probs_by_hand(x)
    values, ids = p.sort(-1, descending=True)
    return values[..., :k], ids[..., :k]


def entropy_by_hand(x):
    p = probs_by_hand(x)
    return -(p * torch.log(p)).sum(-1)


def kl_by_hand(x):
    logp = torch.log(probs_by_hand(x))
    return (logp[-1:].exp() * (logp[-1:] - logp)).sum(-1)


def rank_by_counting(x, t):
    return (x > x[..., t : t + 1]).sum(-1) + 1


def first_by_loop(ranks, k=1):
    for i, r in enumerate(ranks):
        if r <= k:
            return i
    return None


def settled_by_suffix(ranks):
    for i in range(len(ranks)):
        if all(r == 1 for r in ranks[i:]):
            return i
    return None


def classify_by_sets(ranks):
    top = [r == 1 for r in ranks]
    if all(top):
        return "right throughout"
    if top[-1]:
        return "corrected"
    return "lost" if any(top) else "stays wrong"


def answer_ranks_by_hand(lm, prompt, answer):
    ids = lm.tokenizer(prompt, return_tensors="pt")["input_ids"][0]
    target = lm.tokenizer.encode(answer, add_special_tokens=False)[0]
    last = lens_by_formula(lm, capture_via_hidden_states(lm, ids)[:, -1])
    return [int(r) for r in rank_by_counting(last, target)]


def model_logits(lm, prompt):
    """The model's own logits ``[1, T, V]`` for ``prompt`` (a plain forward pass, batch kept)."""
    return lm.model(input_ids=lm.tokenizer(prompt, return_tensors="pt")["input_ids"]).logits


def last_logits(lm, prompt):
    """The model's own next-token logits ``[V]`` after ``prompt``."""
    return model_logits(lm, prompt)[0, -1]


def logit_diff_by_formula(lm, states, t, d):
    x = lens_by_formula(lm, states)
    return x[..., t] - x[..., d]


def attribute_by_formula(lm, comps, t, d):
    norm, w = lm.adapter.final_norm, lm.adapter.unembed.weight.double()
    final = comps.double().sum(0)
    s = 1 / math.sqrt(float(final.pow(2).mean()) + norm.variance_epsilon)
    return comps.double() @ (s * norm.weight.double() * (w[t] - w[d]))


def patch_by_rindex(lm, vector, layer, prompt, position=None, site_shift=0, leave=False):
    ids = lm.tokenizer(prompt, return_tensors="pt")["input_ids"][0]
    texts = [lm.tokenizer.decode([int(i)]) for i in ids]
    slot = [i for i, t in enumerate(texts) if t.strip() == "?"][-1] if position is None else position(ids, texts)
    layer += site_shift
    module = lm.adapter.blocks[layer] if layer < lm.n_layers else lm.adapter.final_norm

    def hook(mod, args, kwargs):
        hidden = (args[0] if args else kwargs["hidden_states"]).clone()
        hidden[:, slot] = vector
        return ((hidden, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": hidden})

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        return lm.model(input_ids=ids[None]).logits[0, -1]
    finally:
        if not leave:
            handle.remove()


def fit_by_normal_equations(x, y):
    ones = torch.ones(x.shape[0], 1, dtype=torch.float64)
    a = torch.cat([x.double(), ones], 1)
    sol = torch.linalg.solve(a.T @ a, a.T @ y.double())
    return sol[:-1], sol[-1]


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_independent_answers_pass_the_model_checks(family, capsys):
    lm = tiny_model(family)
    checks.check_capture_states(capture_via_hidden_states, lm=lm)
    checks.check_lens_logits(lens_by_formula, lm=lm)
    checks.check_logit_diff_by_layer(logit_diff_by_formula, lm=lm)
    checks.check_answer_ranks(answer_ranks_by_hand, lm=lm)
    checks.check_patch_readout(patch_by_rindex, lm=lm, layers=[0, 2, -1])
    n = 5
    if family == "llama":
        checks.check_attribute(attribute_by_formula, lm=lm)
        n += 1
    assert capsys.readouterr().out.count("✓") == n


def test_independent_answers_pass_the_other_checks(capsys):
    for _ in range(3):  # fresh random cases each time
        checks.check_to_probs(probs_by_hand)
        checks.check_top_k(top_k_by_sorting)
        checks.check_entropy(entropy_by_hand)
        checks.check_kl_to_final(kl_by_hand)
        checks.check_target_rank(rank_by_counting)
        checks.check_first_top_k_layer(first_by_loop)
        checks.check_settled_layer(settled_by_suffix)
        checks.check_classify(classify_by_sets)
        checks.check_fit_translator(fit_by_normal_equations)
    assert capsys.readouterr().out.count("✓") == 27


def test_patch_readout_passes_on_the_real_model_prompts_too():
    """The placeholder prompts hold a '?' at several positions; the byte tokenizer puts it where the text does."""
    ex = EXERCISES["patch_readout"]
    prompts = {c.prompt for seed in range(4) for c in ex.cases(seed, layers=[1, 2, 3])}
    assert IDENTITY_PROMPT in prompts and len(prompts) == 4
    positions_from_end = {len(p) - p.rindex("?") for p in prompts}
    assert len(positions_from_end) == 3, positions_from_end  # no fixed offset from the end finds them all
    assert any(p.index("?") != p.rindex("?") for p in prompts)  # the first '?' is not always the placeholder


# --- mistakes every function can make ---------------------------------------------------------------------------


def test_not_written_yet_not_callable_and_crashes():
    def stub(*args):
        raise NotImplementedError()

    for name in ("to_probs", "entropy", "classify", "fit_translator"):
        assert "not written yet" in fails(name, stub)
    assert "expected a function, got Tensor" in fails("entropy", torch.zeros(3))
    assert "raised ZeroDivisionError: division by zero." in fails("entropy", lambda x: 1 / 0)
    assert "raised ValueError: first line only." in fails(
        "classify", lambda r: (_ for _ in ()).throw(ValueError("first line only\nsecond line"))
    )


# --- assignment 1 -----------------------------------------------------------------------------------------------


def _states(lm, ids):
    return capture_via_hidden_states(lm, ids)


CAPTURE_WRONG = {
    "keeps the batch dimension": (lambda lm, ids: _states(lm, ids)[:, None], "drop the batch dimension"),
    "drops the embeddings": (lambda lm, ids: _states(lm, ids)[1:], "blocks give"),
    "takes output_hidden_states as is": (
        lambda lm, ids: torch.stack(lm.model(input_ids=ids[None], output_hidden_states=True).hidden_states)[:, 0],
        "already final-normed",
    ),
    "shifts every layer up": (
        lambda lm, ids: torch.cat([_states(lm, ids)[1:], lm.adapter.final_norm(_states(lm, ids)[-1:])]),
        "off by one layer: your layer l holds the reference's layer l+1",
    ),
    "keeps the last position only": (lambda lm, ids: _states(lm, ids)[:, -1], "keep every position"),
    "puts positions first": (lambda lm, ids: _states(lm, ids).transpose(0, 1), "layers come first"),
    "returns a list": (lambda lm, ids: list(_states(lm, ids)), "expected a torch.Tensor, got list"),
    "keeps the final norm's output too": (
        lambda lm, ids: torch.cat([_states(lm, ids), lm.adapter.final_norm(_states(lm, ids)[-1:])]),
        "did you keep both the last block's output and the final norm's output?",
    ),
    "shifts every layer down": (
        lambda lm, ids: torch.cat([_states(lm, ids)[:1], _states(lm, ids)[:-1]]),
        "off by one layer: your layer l holds the reference's layer l-1",
    ),
    "scales the embeddings by sqrt(d) (Gemma's habit)": (
        lambda lm, ids: (
            _states(lm, ids) * torch.tensor([math.sqrt(lm.adapter.d_model)] + [1.0] * lm.n_layers)[:, None, None]
        ),
        "layer 0 differs from the reference",
    ),
    "one block's output is wrong": (
        lambda lm, ids: _states(lm, ids) + torch.eye(lm.n_layers + 1)[2][:, None, None],
        "layer 2 differs from the reference",
    ),
}


@pytest.mark.parametrize("mistake", CAPTURE_WRONG)
def test_capture_states_mistakes(mistake, llama):
    fn, diagnosis = CAPTURE_WRONG[mistake]
    assert diagnosis in fails("capture_states", fn, seeds=(0,), lm=llama)


def test_capture_states_token_embeddings_without_positions(gpt2):
    def token_embeddings_only(lm, ids):  # GPT-2 adds position embeddings before block 0
        s = _states(lm, ids).clone()
        s[0] = lm.adapter.embed(ids)
        return s

    assert "layer 0 differs from the reference" in fails("capture_states", token_embeddings_only, seeds=(0,), lm=gpt2)


def _decode(lm, s):
    return lm.adapter.unembed(lm.adapter.final_norm(s))


LENS_WRONG = {
    "forgets the final norm": (lambda lm, s: lm.adapter.unembed(s), "you forgot the final norm"),
    "normalizes twice": (
        lambda lm, s: lm.adapter.unembed(lm.adapter.final_norm(lm.adapter.final_norm(s))),
        "you normalized twice",
    ),
    "stops at the norm": (lambda lm, s: lm.adapter.final_norm(s), "still residual states"),
    "returns probabilities": (lambda lm, s: torch.softmax(_decode(lm, s), -1), "(log-)probabilities, not logits"),
    "decodes the last layer only": (lambda lm, s: _decode(lm, s[-1]), "decode every layer"),
    "assumes three dimensions": (lambda lm, s: _decode(lm, s.flatten(0, 1)).unflatten(0, s.shape[:2]), "raised "),
    "log-probabilities": (lambda lm, s: torch.log_softmax(_decode(lm, s), -1), "(log-)probabilities, not logits"),
    "norms only the last layer": (
        lambda lm, s: torch.cat([lm.adapter.unembed(s[:-1]), _decode(lm, s[-1:])]),
        "layer 0 differs from the reference",
    ),
    "a list": (lambda lm, s: list(_decode(lm, s)), "expected a torch.Tensor, got list"),
    "drops the norm's weight": (
        lambda lm, s: lm.adapter.unembed(s * torch.rsqrt(s.pow(2).mean(-1, keepdim=True) + 1e-5)),
        "does not reproduce the model's own logits",
    ),
    "adds 0.5 to every logit": (lambda lm, s: _decode(lm, s) + 0.5, "own logits (max abs error 0.5)"),
    "a loop that skips the norm at layer 1": (
        lambda lm, s: torch.stack([lm.adapter.unembed(x) if i == 1 else _decode(lm, x) for i, x in enumerate(s)]),
        "layer 1 differs from the reference",
    ),
}


@pytest.mark.parametrize("mistake", LENS_WRONG)
def test_lens_logits_mistakes(mistake, llama):
    fn, diagnosis = LENS_WRONG[mistake]
    assert diagnosis in fails("lens_logits", fn, seeds=(0,), lm=llama)


@pytest.mark.parametrize("mistake", ["forgets the final norm", "normalizes twice"])
def test_lens_logits_mistakes_on_gpt2(mistake, gpt2):
    fn, diagnosis = LENS_WRONG[mistake]
    assert diagnosis in fails("lens_logits", fn, seeds=(0,), lm=gpt2)


PROBS_WRONG = {
    "softmax over the layers": (lambda x: torch.softmax(x, 0), "softmax over dim=0"),
    "returns the logits": (lambda x: x, "negative"),
    "exponentiates only": (lambda x: torch.exp(x), "do not sum to 1"),
    "a temperature of 2": (lambda x: torch.softmax(x / 2, -1), "rows sum to 1 but differ"),
    "hard-codes dim=2": (lambda x: torch.softmax(x, dim=2), "raised IndexError"),
    "normalizes over the whole tensor": (lambda x: x.exp() / x.exp().sum(), "do not sum to 1 over the vocabulary"),
    "sigmoid": (lambda x: torch.sigmoid(x), "do not sum to 1 over the vocabulary"),
    "softmax over the positions": (lambda x: torch.softmax(x, 1), "softmax over dim=1"),
    "one-hot argmax": (
        lambda x: torch.nn.functional.one_hot(x.argmax(-1), x.shape[-1]).float(),
        "rows sum to 1 but differ",
    ),
    "the best probability only": (lambda x: torch.softmax(x, -1).max(-1).values, "keep the vocabulary dimension"),
    "a list": (lambda x: torch.softmax(x, -1).tolist(), "expected a torch.Tensor, got list"),
}


@pytest.mark.parametrize("mistake", PROBS_WRONG)
def test_to_probs_mistakes(mistake):
    fn, diagnosis = PROBS_WRONG[mistake]
    assert diagnosis in fails("to_probs", fn)


def _topk(x, k, **kw):
    return torch.softmax(x, -1).topk(k, dim=-1, **kw)


TOP_K_WRONG = {
    "logits": (lambda x, k: x.topk(k, dim=-1), "logits, not probabilities"),
    "renormalized": (
        lambda x, k: (lambda t: (t.values / t.values.sum(-1, keepdim=True), t.indices))(_topk(x, k)),
        "renormalized",
    ),
    "least likely": (lambda x, k: _topk(x, k, largest=False), "least likely"),
    "ascending": (lambda x, k: tuple(t.flip(-1) for t in _topk(x, k)), "wrong order"),
    "k hard-coded to 5": (lambda x, k: _topk(x, 5), "wrong shape"),
    "ids first": (lambda x, k: tuple(reversed(tuple(_topk(x, k)))), "the wrong way round"),
    "log-probabilities": (lambda x, k: torch.log_softmax(x, -1).topk(k, dim=-1), "log-probabilities"),
    "probabilities only": (lambda x, k: _topk(x, k).values, "expected a pair (probs, ids), got Tensor"),
    "lists": (lambda x, k: tuple(t.tolist() for t in _topk(x, k)), "expected a torch.Tensor, got list"),
    "the whole distribution, sorted": (
        lambda x, k: torch.softmax(x, -1).sort(-1, descending=True),
        "keep only the k best tokens",
    ),
    "ids with an extra dimension": (lambda x, k: (_topk(x, k).values, _topk(x, k).indices[..., None]), "wrong shape"),
    "the least likely, largest first": (
        lambda x, k: tuple(t.flip(-1) for t in _topk(x, k, largest=False)),
        "least likely",
    ),
    "a temperature of 2": (lambda x, k: _topk(x / 2, k), "right tokens in the right order, but the probabilities"),
    "ids off by one": (lambda x, k: (_topk(x, k).values, _topk(x, k).indices + 1), "ids or probabilities differ"),
    "a triple": (lambda x, k: (*_topk(x, k), k), "expected a pair (probs, ids), got tuple"),
}


@pytest.mark.parametrize("mistake", TOP_K_WRONG)
def test_top_k_mistakes(mistake):
    fn, diagnosis = TOP_K_WRONG[mistake]
    assert diagnosis in fails("top_k", fn)


def H(x):
    return torch.distributions.Categorical(logits=x).entropy()


ENTROPY_WRONG = {
    "bits": (lambda x: H(x) / math.log(2), "in bits"),
    "sign": (lambda x: -H(x), "wrong sign"),
    "no sum": (lambda x: x, "one entropy per row"),
    "mean over the vocabulary": (lambda x: H(x) / x.shape[-1], "averaged over the vocabulary"),
    "weighted by logits": (lambda x: -(x * torch.log_softmax(x, -1)).sum(-1), "weighted by logits"),
    "summed over the first dimension": (
        lambda x: -(torch.softmax(x, -1) * torch.log_softmax(x, -1)).sum(0),
        "wrong shape",
    ),
    "a list": (lambda x: H(x).tolist(), "expected a torch.Tensor, got list"),
    "a temperature of 2": (lambda x: H(x / 2), "differs from the reference"),
}


@pytest.mark.parametrize("mistake", ENTROPY_WRONG)
def test_entropy_mistakes(mistake):
    fn, diagnosis = ENTROPY_WRONG[mistake]
    assert diagnosis in fails("entropy", fn)


def kl(p, q):
    return (torch.softmax(p, -1) * (torch.log_softmax(p, -1) - torch.log_softmax(q, -1))).sum(-1)


KL_WRONG = {
    "reversed": (lambda x: kl(x, x[-1:].expand_as(x)), "reversed"),
    "bits": (lambda x: kl(x[-1:].expand_as(x), x) / math.log(2), "in bits"),
    "against layer 0": (lambda x: kl(x[:1].expand_as(x), x), "layer 0"),
    "against the last position": (lambda x: kl(x[:, -1:].expand_as(x), x), "last position, not the last layer"),
    "mean over the vocabulary": (lambda x: kl(x[-1:].expand_as(x), x) / x.shape[-1], "averaged"),
    "one number": (lambda x: kl(x[-1:].expand_as(x), x).sum(), "wrong shape"),
    "difference of probabilities": (
        lambda x: (torch.softmax(x[-1:], -1) * (torch.softmax(x[-1:], -1) - torch.softmax(x, -1))).sum(-1),
        "differs from the reference",
    ),
    "against layer 0, 0 at the last layer": (
        lambda x: torch.cat([kl(x[:1].expand_as(x), x)[:-1], torch.zeros_like(x[:1, ..., 0])]),
        "layer 0",
    ),
    "cross-entropy": (
        lambda x: -(torch.softmax(x[-1:], -1) * torch.log_softmax(x, -1)).sum(-1),
        "the last layer's KL to itself is not 0",
    ),
    "no sum over the vocabulary": (
        lambda x: torch.softmax(x[-1:], -1) * (torch.log_softmax(x[-1:], -1) - torch.log_softmax(x, -1)),
        "sum over the vocabulary: one KL per layer and position",
    ),
    "averaged over the layers": (lambda x: kl(x[-1:].expand_as(x), x).mean(0), "keep the layer dimension"),
    "a list": (lambda x: kl(x[-1:].expand_as(x), x).tolist(), "expected a torch.Tensor, got list"),
    "log(p + 1e-3) on one side": (
        lambda x: (
            torch.softmax(x[-1:], -1) * (torch.log_softmax(x[-1:], -1) - (torch.softmax(x, -1) + 1e-3).log())
        ).sum(-1),
        "the last layer's KL to itself is not 0",
    ),
}


@pytest.mark.parametrize("mistake", KL_WRONG)
def test_kl_to_final_mistakes(mistake):
    fn, diagnosis = KL_WRONG[mistake]
    assert diagnosis in fails("kl_to_final", fn)


RANK_WRONG = {
    "from 0": (lambda x, t: rank_by_counting(x, t) - 1, "start at 0"),
    "from the least likely": (lambda x, t: (x < x[..., t : t + 1]).sum(-1) + 1, "least likely"),
    "counts ties": (lambda x, t: (x >= x[..., t : t + 1]).sum(-1), "ties with other tokens"),
    "position in a sort": (
        lambda x, t: (x.argsort(-1, descending=True) == t).int().argmax(-1) + 1,
        "ties with other tokens",
    ),
    "not whole numbers": (lambda x, t: rank_by_counting(x, t) + 0.5, "whole numbers"),
    "from the least likely, from 0": (lambda x, t: (x < x[..., t : t + 1]).sum(-1), "least likely"),
    ">= and plus one": (lambda x, t: (x >= x[..., t : t + 1]).sum(-1) + 1, "differs from the reference"),
    "one rank per token": (lambda x, t: (x > x[..., t : t + 1]).long() + 1, "one rank per row"),
    "a list": (lambda x, t: rank_by_counting(x, t).tolist(), "expected a torch.Tensor, got list"),
}


@pytest.mark.parametrize("mistake", RANK_WRONG)
def test_target_rank_mistakes(mistake):
    fn, diagnosis = RANK_WRONG[mistake]
    assert diagnosis in fails("target_rank", fn)


# --- assignment 2 -----------------------------------------------------------------------------------------------

FIRST_WRONG = {
    "strict <": (lambda r, k=1: next((i for i, x in enumerate(r) if x < k), None), "compare with <="),
    "counts from 1": (lambda r, k=1: next((i + 1 for i, x in enumerate(r) if x <= k), None), "numbered from 0"),
    "the last such layer": (
        lambda r, k=1: max((i for i, x in enumerate(r) if x <= k), default=None),
        "not a later one",
    ),
    "ignores k": (lambda r, k=1: next((i for i, x in enumerate(r) if x == 1), None), "you looked for rank 1"),
    "-1 for never": (lambda r, k=1: next((i for i, x in enumerate(r) if x <= k), -1), "return None"),
    "returns the rank": (lambda r, k=1: next((x for x in r if x <= k), None), "expected"),
}


@pytest.mark.parametrize("mistake", FIRST_WRONG)
def test_first_top_k_layer_mistakes(mistake):
    fn, diagnosis = FIRST_WRONG[mistake]
    assert diagnosis in fails("first_top_k_layer", fn)


SETTLED_WRONG = {
    "first top-1 ever": (lambda r: r.index(1) if r[-1] == 1 else None, "drops again later"),
    "the last layer": (lambda r: len(r) - 1 if r[-1] == 1 else None, "go back while the layer before"),
    "first layer of a constant run": (
        lambda r: next(i for i in range(len(r)) if len(set(r[i:])) == 1),
        "never settles: return None",
    ),
    "one layer early": (lambda r: None if r[-1] != 1 else max(settled_by_suffix(r) - 1, 0), "not 1"),
    "never None": (lambda r: settled_by_suffix(r) or 0, "never settles: return None"),
}


@pytest.mark.parametrize("mistake", SETTLED_WRONG)
def test_settled_layer_mistakes(mistake):
    fn, diagnosis = SETTLED_WRONG[mistake]
    assert diagnosis in fails("settled_layer", fn)


def first_and_last_only(r):
    if r[0] == 1 and r[-1] == 1:
        return "right throughout"
    if r[-1] == 1:
        return "corrected"
    return "lost" if r[0] == 1 else "stays wrong"


def right_when_first_and_last_are(r):  # a mistake that once passed: [1, 5, 1] called "right throughout"
    return "right throughout" if r[0] == 1 and r[-1] == 1 else classify_by_sets(r)


CLASSIFY_WRONG = {
    "no 'lost'": (lambda r: "stays wrong" if r[-1] != 1 else classify_by_sets(r), "got overwritten"),
    "not a label": (lambda r: "right", "return one of"),
    "first and last only": (first_and_last_only, "got overwritten"),
    "lost only if it started right": (
        lambda r: ("lost" if r[0] == 1 else "stays wrong") if r[-1] != 1 else classify_by_sets(r),
        "got overwritten",
    ),
    "right throughout when the first and last are": (right_when_first_and_last_are, "later layers corrected it"),
    "underscores": (lambda r: classify_by_sets(r).replace(" ", "_"), "return one of"),
    "a number": (lambda r: 1, "expected a label, got int"),
}


@pytest.mark.parametrize("mistake", CLASSIFY_WRONG)
def test_classify_mistakes(mistake):
    fn, diagnosis = CLASSIFY_WRONG[mistake]
    assert diagnosis in fails("classify", fn)


def test_classify_catches_1_5_1_in_the_visible_and_hidden_checks():
    message = fails("classify", right_when_first_and_last_are)
    assert "ranks=[1, 5, 1]" in message and "expected 'corrected'" in message
    message = one_line_failure(lambda: checks.check_classify(first_and_last_only, cases=[[1, 5, 1]]))
    assert "ranks=[1, 5, 1] you returned 'right throughout', expected 'corrected'" in message


def _ranks_all_positions(lm, prompt, answer):
    ids = lm.tokenizer(prompt, return_tensors="pt")["input_ids"][0]
    target = lm.tokenizer.encode(answer, add_special_tokens=False)[0]
    return rank_by_counting(lens_by_formula(lm, capture_via_hidden_states(lm, ids)), target)  # [L+1, T]


ANSWER_RANKS_WRONG = {
    "from 0": (lambda lm, p, a: [r - 1 for r in answer_ranks_by_hand(lm, p, a)], "start at 0"),
    "first position": (lambda lm, p, a: _ranks_all_positions(lm, p, a)[:, 0].tolist(), "layer"),
    "no embeddings": (lambda lm, p, a: answer_ranks_by_hand(lm, p, a)[1:], "expected 4 ranks"),
    "every position": (lambda lm, p, a: _ranks_all_positions(lm, p, a).tolist(), "one rank per layer"),
    "a number": (lambda lm, p, a: 3, "expected a list of ints, got int"),
    "one too high": (lambda lm, p, a: [r + 1 for r in answer_ranks_by_hand(lm, p, a)], "layer 0: rank"),
    "two too low": (lambda lm, p, a: [r - 2 for r in answer_ranks_by_hand(lm, p, a)], "layer 0: rank"),
}


@pytest.mark.parametrize("mistake", ANSWER_RANKS_WRONG)
def test_answer_ranks_mistakes(mistake, llama):
    fn, diagnosis = ANSWER_RANKS_WRONG[mistake]
    assert diagnosis in fails("answer_ranks", fn, seeds=(0,), lm=llama)


# --- assignment 3 -----------------------------------------------------------------------------------------------


def _diff(x, t, d):
    return x[..., t] - x[..., d]


LOGIT_DIFF_WRONG = {
    "distractor minus target": (lambda lm, s, t, d: -logit_diff_by_formula(lm, s, t, d), "sign is flipped"),
    "forgets the final norm": (lambda lm, s, t, d: _diff(lm.adapter.unembed(s), t, d), "forgot the final norm"),
    "normalizes twice": (
        lambda lm, s, t, d: _diff(lm.adapter.unembed(lm.adapter.final_norm(lm.adapter.final_norm(s))), t, d),
        "normalized twice",
    ),
    "probabilities": (
        lambda lm, s, t, d: _diff(torch.softmax(_decode(lm, s), -1), t, d),
        "difference of probabilities",
    ),
    "last position only": (lambda lm, s, t, d: logit_diff_by_formula(lm, s, t, d)[:, -1], "keep every position"),
    "the final layer's norm scale everywhere": (
        lambda lm, s, t, d: _diff(lm.adapter.unembed(s * (lm.adapter.final_norm(s[-1:]) / s[-1:])), t, d),
        "differs from the reference",
    ),
    "a list": (lambda lm, s, t, d: logit_diff_by_formula(lm, s, t, d).tolist(), "expected a torch.Tensor, got list"),
    "every token minus the distractor": (
        lambda lm, s, t, d: _decode(lm, s) - _decode(lm, s)[..., d : d + 1],
        "take the difference of two logits",
    ),
}


def test_logit_diff_failure_quotes_the_models_own_difference(llama):
    """The last resort diagnosis gives the model's own logit difference at the last position, recomputed here."""
    ex = EXERCISES["logit_diff_by_layer"]
    case = ex.cases(3, lm=ModelRef.of(llama))[0]  # (seed 3: a distractor logit far from 0)
    _, states, t, d = ex.inputs(case)
    logits = last_logits(llama, case.prompt)
    message = one_line_failure(
        lambda: run_check(ex, lambda lm, s, t, d: logit_diff_by_formula(lm, s, t, d) + 1.0, seed=3, lm=llama)
    )
    assert message.endswith(f"the model's own value at the last position: {float(logits[t] - logits[d]):.3f}.")


@pytest.mark.parametrize("mistake", LOGIT_DIFF_WRONG)
def test_logit_diff_mistakes(mistake, llama):
    fn, diagnosis = LOGIT_DIFF_WRONG[mistake]
    assert diagnosis in fails("logit_diff_by_layer", fn, seeds=(0,), lm=llama)


def _direction(lm, t, d):
    w = lm.adapter.unembed.weight.double()
    return w[t] - w[d]


ATTRIBUTE_WRONG = {
    "normalizes each component": (lambda lm, c, t, d: _diff(_decode(lm, c), t, d), "normalized each component"),
    "skips the norm": (lambda lm, c, t, d: c.double() @ _direction(lm, t, d), "skipped the final norm"),
    "forgets the norm's weight": (
        lambda lm, c, t, d: (
            c.double()
            @ (
                _direction(lm, t, d)
                / torch.sqrt(c.double().sum(0).pow(2).mean() + lm.adapter.final_norm.variance_epsilon)
            )
        ),
        "forgot the norm's weight",
    ),
    "distractor minus target": (lambda lm, c, t, d: -attribute_by_formula(lm, c, t, d), "sign is flipped"),
    "an equal share each": (
        lambda lm, c, t, d: attribute_by_formula(lm, c, t, d).sum().expand(len(c)) / len(c),
        "the sum is right but the parts differ",
    ),
    "sum of squares, not mean": (
        lambda lm, c, t, d: attribute_by_formula(lm, c, t, d) / math.sqrt(c.shape[1]),
        "not the logit difference",
    ),
    "a list": (lambda lm, c, t, d: attribute_by_formula(lm, c, t, d).tolist(), "expected a torch.Tensor, got list"),
    "every token's logit per component": (
        lambda lm, c, t, d: c @ lm.adapter.unembed.weight.T,
        "project onto the target-minus-distractor direction",
    ),
}


def test_attribute_tolerance_and_sums(llama, capsys):
    """Parts within 1e-3 · max(1, |logit difference|) (+ 1e-3 relative) of the reference pass, 1.6e-3 off do not
    (the tiny model's differences are below 1); a sum 1e-2 · max(1, |difference|) off is called a wrong sum, and
    quoted with the model's own difference."""
    checks.check_attribute(lambda lm, c, t, d: attribute_by_formula(lm, c, t, d) + 5e-4, lm=llama)
    assert "✓ attribute" in capsys.readouterr().out
    off = lambda lm, c, t, d: attribute_by_formula(lm, c, t, d) + 1.6e-3  # noqa: E731
    assert "the sum is right but the parts differ" in fails("attribute", off, seeds=(0,), lm=llama)
    ex = EXERCISES["attribute"]
    case = ex.cases(3, lm=ModelRef.of(llama))[0]  # (seed 3: a distractor logit far from 0, -0.18)
    _, comps, t, d = ex.inputs(case)
    logits = last_logits(llama, case.prompt)
    slightly = lambda lm, c, t, d: attribute_by_formula(lm, c, t, d) + 0.015 / len(c)  # noqa: E731
    assert "not the logit difference" in fails("attribute", slightly, seeds=(0,), lm=llama)  # a sum 1.5e-2 off
    halved = lambda lm, c, t, d: attribute_by_formula(lm, c, t, d) / 2  # noqa: E731
    got = float(halved(llama, comps, t, d).sum())
    message = fails("attribute", halved, seeds=(3,), lm=llama)
    assert f"your parts sum to {got:.3f}, not the logit difference {float(logits[t] - logits[d]):.3f}." in message


@pytest.mark.parametrize("mistake", ATTRIBUTE_WRONG)
def test_attribute_mistakes(mistake, llama):
    fn, diagnosis = ATTRIBUTE_WRONG[mistake]
    assert diagnosis in fails("attribute", fn, seeds=(0,), lm=llama)


def test_attribute_scale_from_one_component_fails_on_the_random_split(llama):
    def scale_of_the_last_component(lm, c, t, d):
        s = torch.rsqrt(c[-1].double().pow(2).mean() + lm.adapter.final_norm.variance_epsilon)
        return c.double() @ (s * lm.adapter.final_norm.weight.double() * _direction(lm, t, d))

    assert "not the logit difference" in fails("attribute", scale_of_the_last_component, seeds=(0,), lm=llama)


def test_attribute_refuses_a_layernorm_model(gpt2):
    with pytest.raises(ValueError) as info:
        checks.check_attribute(attribute_by_formula, lm=gpt2)
    assert str(info.value) == "check_attribute needs a model with an RMSNorm final norm (Llama-style)"


def test_attribute_cases(llama):
    """Per prompt the per-block split; then, on the first prompt, the per-write split and a random split into
    4 parts (its own seed)."""
    from lensref.course.checks.variants import resolve_layer

    ex, L = EXERCISES["attribute"], llama.n_layers
    cases = ex.cases(0, lm=ModelRef.of(llama))
    assert [c.split for c in cases] == ["blocks", "writes", "random"] and cases[2].parts == 4
    assert [len(ex.inputs(c)[1]) for c in cases] == [L + 1, 2 * L + 1, 4]
    blocks, random_parts = ex.inputs(cases[0])[1], ex.inputs(cases[2])[1]
    assert not torch.allclose(random_parts, blocks) and torch.allclose(random_parts.sum(0), blocks.sum(0), atol=1e-5)
    seeds = [ex.cases(seed, lm=ModelRef.of(llama))[2].split_seed for seed in range(40)]
    assert len(set(seeds)) == 40 and all(0 <= x < 2**31 for x in seeds) and max(seeds) >= 2**30
    assert [resolve_layer("middle", n) for n in (3, 4, 30)] == [1, 2, 15]


PATCH_WRONG = {
    "no effect": (lambda lm, v, layer, p: last_logits(lm, p), "no effect"),
    "one layer late": (
        lambda lm, v, layer, p: (
            patch_by_rindex(lm, v, layer, p, site_shift=1) if layer < lm.n_layers else patch_by_rindex(lm, v, layer, p)
        ),
        "off by one layer",
    ),
    "position counted from the end": (
        lambda lm, v, layer, p: patch_by_rindex(lm, v, layer, p, position=lambda ids, texts: len(ids) - 4),
        "not the placeholder '?' at position",
    ),
    "the first '?'": (
        lambda lm, v, layer, p: patch_by_rindex(
            lm, v, layer, p, position=lambda ids, texts: [t.strip() for t in texts].index("?")
        ),
        "not the placeholder '?' at position",
    ),
    "the last token": (
        lambda lm, v, layer, p: patch_by_rindex(lm, v, layer, p, position=lambda ids, texts: len(ids) - 1),
        "you patched the last token",
    ),
    "ignores the prompt": (
        lambda lm, v, layer, p: patch_by_rindex(lm, v, layer, IDENTITY_PROMPT),
        "logits differ from the reference",
    ),
    "every position": (lambda lm, v, layer, p: model_logits(lm, p)[0], "last position only"),
    "every position, batch kept": (
        lambda lm, v, layer, p: model_logits(lm, p),
        "return the logits of the last position only",
    ),
    "batch kept": (lambda lm, v, layer, p: patch_by_rindex(lm, v, layer, p)[None], "drop the batch dimension"),
    "a list": (lambda lm, v, layer, p: patch_by_rindex(lm, v, layer, p).tolist(), "expected a torch.Tensor, got list"),
    "one layer early": (
        lambda lm, v, layer, p: patch_by_rindex(lm, v, layer, p, site_shift=-1 if layer >= 1 else 0),
        "off by one layer: you patched what block 0 reads",
    ),
}


@pytest.mark.parametrize("mistake", PATCH_WRONG)
def test_patch_readout_mistakes(mistake, llama):
    fn, diagnosis = PATCH_WRONG[mistake]
    assert diagnosis in fails("patch_readout", fn, seeds=(0,), lm=llama, layers=[1, 2])


def test_patch_readout_off_by_one_next_to_the_final_norm(llama):
    """At layer L one layer early is block L - 1's input (and there is no layer L + 1 to try). One layer late
    from L - 1 is the final norm's input: the norm works position by position, so the placeholder's new state
    never reaches the last position's logits, and "no effect" names it."""
    late, early, L = PATCH_WRONG["one layer late"][0], PATCH_WRONG["one layer early"][0], llama.n_layers
    assert "the patch had no effect" in fails("patch_readout", late, seeds=(0,), lm=llama, layers=[L - 1])
    message = fails("patch_readout", early, seeds=(0,), lm=llama, layers=[-1])
    assert f"off by one layer: you patched what block {L - 1} reads." in message


def test_patch_readout_cases_and_vectors(llama):
    """By default layers 1, the middle and L - 2, each with its own target prompt; the vector is the source
    prompt's residual state at the last position of that layer."""

    ex = EXERCISES["patch_readout"]
    cases = ex.cases(0, lm=ModelRef.of(llama))
    assert [c.layer for c in cases] == [1, "middle", -3]
    for case in cases:
        _, vector, layer, prompt = ex.inputs(case)
        states = capture_via_hidden_states(llama, encode_prompt(llama.tokenizer, case.source))
        assert prompt == case.prompt and torch.allclose(vector, states[layer, -1], atol=1e-6)


def test_patch_readout_hook_left_attached_is_caught_at_once():
    lm = tiny_model("llama", seed=1)
    leaves_hook = lambda lm, v, layer, p: patch_by_rindex(lm, v, layer, p, leave=True)  # noqa: E731
    message = fails("patch_readout", leaves_hook, seeds=(0,), hidden=False, lm=lm, layers=[1, 2])
    assert "still attached" in message
    # grading sees it through the values: the hook left by the first case changes the second
    assert "differ" in one_line_failure(
        lambda: hidden_verdict(EXERCISES["patch_readout"], leaves_hook, 0, lm=ModelRef("llama", 7), layers=[1, 2])
    )


def _lstsq_fit(x, y, centre=True, ridge=0.0):
    x, y = x.double(), y.double()
    zeros = torch.zeros(x.shape[1], dtype=torch.float64)
    xm, ym = (x.mean(0), y.mean(0)) if centre else (zeros, zeros)
    xc, yc = x - xm, y - ym
    w = torch.linalg.solve(xc.T @ xc + ridge * torch.eye(x.shape[1], dtype=torch.float64), xc.T @ yc)
    return w, ym - xm @ w


FIT_WRONG = {
    "no bias": (lambda x, y: (_lstsq_fit(x, y, centre=False)[0], torch.zeros(x.shape[1])), "without a bias"),
    "transposed": (lambda x, y: (lambda w, b: (w.T, b))(*fit_by_normal_equations(x, y)), "transposed"),
    "x from y": (lambda x, y: _lstsq_fit(y, x), "you fitted x from y"),
    "ridge": (lambda x, y: _lstsq_fit(x, y, ridge=50.0), "not the least-squares fit"),
    "bias as a row": (lambda x, y: (lambda w, b: (w, b[None]))(*fit_by_normal_equations(x, y)), "bias as a vector"),
    "bias sign": (lambda x, y: (lambda w, b: (w, -b))(*fit_by_normal_equations(x, y)), "W is right but the bias"),
    "a single number": (lambda x, y: fit_by_normal_equations(x, y)[0], "expected a pair (W, b)"),
    "(W, b, error)": (lambda x, y: (*fit_by_normal_equations(x, y), 0.0), "expected a pair (W, b), got tuple"),
    "W as a list": (lambda x, y: (lambda w, b: (w.tolist(), b))(*fit_by_normal_equations(x, y)), "got list"),
    "W without the last input row": (
        lambda x, y: (lambda w, b: (w[:-1], b))(*fit_by_normal_equations(x, y)),
        "wrong shape",
    ),
}


def test_fit_translator_tolerance_and_errors(capsys):
    """W and b count as right within 1e-3 (+ 1e-3 relative): a float32 solution passes, a W 3e-3 off does not.
    The ✓ line and the no-bias diagnosis give mean squared errors, computed here on their own."""

    def shifted(dw):
        return lambda x, y: (lambda w, b: (w + dw, b))(*fit_by_normal_equations(x, y))

    def mse(x, y, w, b):
        return float(((x.double() @ w + b - y.double()) ** 2).mean())

    checks.check_fit_translator(shifted(9e-4))
    checks.check_fit_translator(lambda x, y: tuple(t.float() for t in fit_by_normal_equations(x.float(), y.float())))
    assert "not the least-squares fit" in fails("fit_translator", shifted(3e-3))
    ex = EXERCISES["fit_translator"]
    x, y = ex.inputs(ex.cases(0)[0])
    w, b = fit_by_normal_equations(x, y)
    best = mse(x, y, w, b)
    assert 0.005 < best < 0.02  # the noise (0.1 per entry): a fit, not an interpolation
    capsys.readouterr()
    run_check(ex, fit_by_normal_equations, seed=0)
    assert (
        capsys.readouterr().out.strip()
        == f"✓ fit_translator: the least-squares translator (mean squared error {best:.4f})."
    )
    no_bias = FIT_WRONG["no bias"][0](x, y)
    message = one_line_failure(lambda: run_check(ex, FIT_WRONG["no bias"][0], seed=0))
    assert f"(error {mse(x, y, no_bias[0].double(), 0.0):.3g} vs {best:.3g})" in message


@pytest.mark.parametrize("mistake", FIT_WRONG)
def test_fit_translator_mistakes(mistake):
    fn, diagnosis = FIT_WRONG[mistake]
    assert diagnosis in fails("fit_translator", fn)


def test_every_exercise_has_at_least_four_wrong_implementations():
    lists = {
        "capture_states": CAPTURE_WRONG,
        "lens_logits": LENS_WRONG,
        "to_probs": PROBS_WRONG,
        "top_k": TOP_K_WRONG,
        "entropy": ENTROPY_WRONG,
        "kl_to_final": KL_WRONG,
        "target_rank": RANK_WRONG,
        "first_top_k_layer": FIRST_WRONG,
        "settled_layer": SETTLED_WRONG,
        "classify": CLASSIFY_WRONG,
        "answer_ranks": ANSWER_RANKS_WRONG,
        "logit_diff_by_layer": LOGIT_DIFF_WRONG,
        "attribute": ATTRIBUTE_WRONG,
        "patch_readout": PATCH_WRONG,
        "fit_translator": FIT_WRONG,
    }
    assert set(lists) == set(EXERCISES)
    assert {name: len(wrong) for name, wrong in lists.items() if len(wrong) < 4} == {}


# --- assignment 2, word for word: every diagnosis branch and every ✓ line ---------------------------------------

LABEL_CHOICES = "return one of 'corrected', 'stays wrong', 'lost', 'right throughout'."


def judged(name: str, case: RanksCase, got) -> str:
    """The one line the judge of ``name`` gives for ``got`` on ``case``."""
    return one_line_failure(lambda: EXERCISES[name].judge(case, got))


@pytest.mark.parametrize(
    "ranks, k, got, message",
    [
        ([3, 4], 1, 0, "for ranks=[3, 4], k=1 you returned 0, expected None. Hint: the target never reaches the top 1 here: return None."),
        ([5, 2, 1], 2, 2, "for ranks=[5, 2, 1], k=2 you returned 2, expected 1. Hint: you looked for rank 1: any rank up to k = 2 counts."),
        ([3, 1, 1], 1, 2, "for ranks=[3, 1, 1], k=1 you returned 2, expected 1. Hint: layers are numbered from 0 (the embeddings): return the index, not the position."),
        ([9, 5, 7, 3], 5, 3, "for ranks=[9, 5, 7, 3], k=5 you returned 3, expected 1. Hint: rank 5 is inside the top 5: compare with <=, not <."),
        ([4, 2, 3], 2, None, "for ranks=[4, 2, 3], k=2 you returned None, expected 1. Hint: rank 2 is inside the top 2: compare with <=, not <."),
        ([9, 1, 7, 1, 1], 2, 4, "for ranks=[9, 1, 7, 1, 1], k=2 you returned 4, expected 1. Hint: return the first layer where it happens, not a later one."),
        ([9, 1], 1, 0, "for ranks=[9, 1], k=1 you returned 0, expected 1. Hint: the first layer whose rank is at most 1."),
        ([2, 5, 5], 2, 3, "for ranks=[2, 5, 5], k=2 you returned 3, expected 0. Hint: the first layer whose rank is at most 2."),
        ([1, 5, 2], 2, 2, "for ranks=[1, 5, 2], k=2 you returned 2, expected 0. Hint: return the first layer where it happens, not a later one."),
        ([9, 1], 1, 1.5, "expected an int or None, got float 1.5."),
        ([9, 1], 1, float("nan"), "expected an int or None, got float nan."),
        ([9, 1], 1, True, "expected an int or None, got bool True."),
        ([9, 1], 1, [1], "expected an int or None, got list."),
    ],
)  # fmt: skip
def test_first_top_k_layer_diagnoses(ranks, k, got, message):
    assert judged("first_top_k_layer", RanksCase(tuple(ranks), k), got) == "first_top_k_layer: " + message


@pytest.mark.parametrize(
    "ranks, got, message",
    [
        ([1, 2], 0, "you returned 0, expected None. Hint: the target is not top-1 at the last layer, so it never settles: return None."),
        ([2, 1], None, "you returned None, expected 1. Hint: the target is top-1 from layer 1 through the last layer: it settles there."),
        ([1, 2, 1], 0, "you returned 0, expected 2. Hint: the target is top-1 at layer 0 but drops again later: 'settled' means it stays top-1 through the last layer (search backwards from the end)."),
        ([3, 2, 1], 1, "you returned 1, expected 2. Hint: layer 1 has rank 2, not 1: the settled layer is the first of the final top-1 run."),
        ([2, 1, 1], 2, "you returned 2, expected 1. Hint: go back while the layer before is also top-1."),
        ([2, 1], -1, "you returned -1, expected 1. Hint: the first layer from which the rank is 1 at every later layer."),
        ([3, 1], 0, "you returned 0, expected 1. Hint: layer 0 has rank 3, not 1: the settled layer is the first of the final top-1 run."),
        ([3, 1], 2, "you returned 2, expected 1. Hint: go back while the layer before is also top-1."),
    ],
)  # fmt: skip
def test_settled_layer_diagnoses(ranks, got, message):
    assert judged("settled_layer", RanksCase(tuple(ranks)), got) == f"settled_layer: for ranks={ranks} " + message


@pytest.mark.parametrize(
    "ranks, got, message",
    [
        ([2, 1], "lost", "you returned 'lost', expected 'corrected'. Hint: the final layer is right and an earlier one was not: later layers corrected it."),
        ([2, 3], "lost", "you returned 'lost', expected 'stays wrong'. Hint: it is never top-1 at any layer: the answer never surfaces."),
        ([1, 3], "stays wrong", "you returned 'stays wrong', expected 'lost'. Hint: it is top-1 at some layer but not at the last: the right answer was there and got overwritten."),
        ([1, 1], "corrected", "you returned 'corrected', expected 'right throughout'. Hint: it is top-1 at every layer."),
        ([1, 1], "right", "you returned 'right', expected 'right throughout'. Hint: " + LABEL_CHOICES),
        ([1, 1], None, "you returned None, expected 'right throughout'. Hint: " + LABEL_CHOICES),
    ],
)  # fmt: skip
def test_classify_diagnoses(ranks, got, message):
    assert judged("classify", RanksCase(tuple(ranks)), got) == f"classify: for ranks={ranks} " + message


def test_classify_refuses_a_non_label():
    assert judged("classify", RanksCase((1,)), 1) == "classify: expected a label, got int. Hint: " + LABEL_CHOICES


def test_assignment_2_pass_lines_count_what_was_tried(capsys):
    checks.check_first_top_k_layer(first_by_loop)
    checks.check_first_top_k_layer(first_by_loop, n_random=2)
    checks.check_first_top_k_layer(first_by_loop, cases=[([3, 1], 1), ((2, 2), 2)])
    checks.check_settled_layer(settled_by_suffix)
    checks.check_settled_layer(settled_by_suffix, n_random=0)
    checks.check_settled_layer(settled_by_suffix, cases=[[2, 1]])
    checks.check_classify(classify_by_sets)
    checks.check_classify(classify_by_sets, n_random=1)
    checks.check_classify(classify_by_sets, cases=[[1, 2], [1]])
    assert capsys.readouterr().out.splitlines() == [
        "✓ first_top_k_layer: right on 108 trajectories (edge cases and random ones, k = 1, 2, 5).",
        "✓ first_top_k_layer: right on 54 trajectories (edge cases and random ones, k = 1, 2, 5).",
        "✓ first_top_k_layer: right on 2 trajectories (given, k = 1, 2).",
        "✓ settled_layer: right on 46 trajectories (edge cases and random ones).",
        "✓ settled_layer: right on 16 trajectories (edge cases and random ones).",
        "✓ settled_layer: right on 1 trajectory (given).",
        "✓ classify: right on 56 trajectories (edge cases and random ones).",
        "✓ classify: right on 17 trajectories (edge cases and random ones).",
        "✓ classify: right on 2 trajectories (given).",
    ]


def test_first_top_k_layer_draws_other_random_trajectories_for_each_k():
    cases = EXERCISES["first_top_k_layer"].cases(seed=3)
    drawn = {k: [c.ranks for c in cases if c.k == k][len(checks.reading_the_grid.EDGE_CASES) :] for k in (1, 2, 5)}
    assert len(drawn[1]) == 20 and drawn[1] != drawn[2] != drawn[5] != drawn[1]


@pytest.mark.parametrize(
    "check, cases, message",
    [
        ("first_top_k_layer", [([1], "1")], "each first_top_k_layer case is (ranks, k), got ([1], '1')"),
        ("first_top_k_layer", [([1],)], "each first_top_k_layer case is (ranks, k), got ([1],)"),
        ("first_top_k_layer", [[[1], 1, 2]], "each first_top_k_layer case is (ranks, k), got [[1], 1, 2]"),
        ("first_top_k_layer", [([0, 1], 1)], "ranks must be a non-empty list of ranks (ints >= 1), got [0, 1]"),
        ("first_top_k_layer", [([], 1)], "ranks must be a non-empty list of ranks (ints >= 1), got []"),
        ("settled_layer", [[1, 2.0]], "each case must be a non-empty list of ranks (ints >= 1), got [1, 2.0]"),
        ("classify", ["11"], "each case must be a non-empty list of ranks (ints >= 1), got '11'"),
        ("answer_ranks", [("p",)], "each answer_ranks case is (prompt, answer), got ('p',)"),
        ("answer_ranks", [("p", 1)], "each answer_ranks case is (prompt, answer), got ('p', 1)"),
        ("answer_ranks", ["pa"], "each answer_ranks case is (prompt, answer), got 'pa'"),
        ("answer_ranks", [("p", "a", "b")], "each answer_ranks case is (prompt, answer), got ('p', 'a', 'b')"),
    ],
)
def test_assignment_2_refuses_malformed_cases(check, cases, message):
    with pytest.raises(ValueError) as info:
        getattr(checks, f"check_{check}")(lambda *a: None, cases=cases)
    assert str(info.value) == message


def test_answer_ranks_pass_line_and_options(capsys):
    lm = tiny_model("gpt2", seed=5)
    checks.check_answer_ranks(answer_ranks_by_hand, lm=lm, cases=[("abc", "d")])
    checks.check_answer_ranks(answer_ranks_by_hand, lm=lm)
    assert capsys.readouterr().out.splitlines() == [
        "✓ answer_ranks: matches the reference on 1 prompt.",
        "✓ answer_ranks: matches the reference on 2 prompts.",
    ]
    as_tensors = lambda m, p, a: [torch.tensor(r) for r in answer_ranks_by_hand(m, p, a)]  # noqa: E731
    checks.check_answer_ranks(as_tensors, lm=lm, cases=[("abc", "d")])
    checks.check_answer_ranks(lambda m, p, a: torch.tensor(answer_ranks_by_hand(m, p, a)), lm=lm, cases=[("ab", "c")])
    assert capsys.readouterr().out.count("✓ answer_ranks") == 2
    seen = []
    checks.check_answer_ranks(
        lambda m, p, a: seen.append((m, p, a)) or answer_ranks_by_hand(m, p, a), lm=lm, cases=[("xy", "z")]
    )
    assert seen == [(lm, "xy", "z")]


def test_random_trajectories_tell_every_story():
    """What the random cases promise: 1..12 layers, ranks 1 or 2..60, and every label among long trajectories."""
    import random

    from lensref.course.checks.reading_the_grid import random_ranks, reference_classify

    rng = random.Random(0)
    drawn = [random_ranks(rng) for _ in range(3000)]
    assert {len(r) for r in drawn} == set(range(1, 13))
    ranks = {x for r in drawn for x in r}
    assert min(ranks) == 1 and min(ranks - {1}) == 2 and max(ranks) == 60
    assert {reference_classify(r) for r in drawn if len(r) >= 8} == set(checks.reading_the_grid.LABELS)


# --- the wording of every diagnosis, against a reviewed snapshot ----------------------------------------------------

DIAGNOSES = Path(__file__).parent / "data" / "check_diagnoses.txt"
NUMBER = re.compile(
    r"-?\d+\.\d+(?:e[-+]?\d+)?|-?\d+e[-+]?\d+|\bnan\b|-?\binf\b|(?<=row sums from )\d+|(?<= to )\d+(?=\))"
)


def diagnoses(llama) -> list[str]:
    """One line per mistake in every table above (the visible check, seed 0) and two per right answer (its ✓
    line, and the hidden verdict's line for each case), with decimal numbers shown as # (errors and probabilities differ in their last digits between CPUs)."""
    model = dict(lm=llama)
    tables = [
        ("capture_states", CAPTURE_WRONG, model),
        ("lens_logits", LENS_WRONG, model),
        ("to_probs", PROBS_WRONG, {}),
        ("top_k", TOP_K_WRONG, {}),
        ("entropy", ENTROPY_WRONG, {}),
        ("kl_to_final", KL_WRONG, {}),
        ("target_rank", RANK_WRONG, {}),
        ("first_top_k_layer", FIRST_WRONG, {}),
        ("settled_layer", SETTLED_WRONG, {}),
        ("classify", CLASSIFY_WRONG, {}),
        ("answer_ranks", ANSWER_RANKS_WRONG, model),
        ("logit_diff_by_layer", LOGIT_DIFF_WRONG, model),
        ("attribute", ATTRIBUTE_WRONG, model),
        ("patch_readout", PATCH_WRONG, dict(lm=llama, layers=[1, 2])),
        ("fit_translator", FIT_WRONG, {}),
    ]
    rights = [
        ("capture_states", capture_via_hidden_states, model),
        ("lens_logits", lens_by_formula, model),
        ("to_probs", probs_by_hand, {}),
        ("top_k", top_k_by_sorting, {}),
        ("entropy", entropy_by_hand, {}),
        ("kl_to_final", kl_by_hand, {}),
        ("target_rank", rank_by_counting, {}),
        ("answer_ranks", answer_ranks_by_hand, model),
        ("logit_diff_by_layer", logit_diff_by_formula, model),
        ("attribute", attribute_by_formula, model),
        ("patch_readout", patch_by_rindex, dict(lm=llama, layers=[0, 2, -1])),
        ("fit_translator", fit_by_normal_equations, {}),
    ]
    lines = []
    for name, table, options in tables:
        for mistake, (fn, _) in table.items():
            message = one_line_failure(lambda: run_check(EXERCISES[name], fn, seed=0, **options))  # noqa: B023
            lines.append(f"{name} / {mistake}: {NUMBER.sub('#', message)}")
    for name, fn, options in rights:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            run_check(EXERCISES[name], fn, seed=0, **options)
        lines.append(f"{name} / right: {NUMBER.sub('#', out.getvalue().strip())}")
        opts = {k: (ModelRef.of(v) if k == "lm" else v) for k, v in options.items()}
        details = hidden_verdict(EXERCISES[name], fn, 0, **opts)  # what the graded feedback shows, per case
        lines.append(f"{name} / right, hidden verdict: {NUMBER.sub('#', ' | '.join(details))}")
    return lines


def test_every_diagnosis_reads_as_reviewed(llama):
    """The learner-facing text of the checks is pinned here: a change of wording shows as a diff of
    tests/data/check_diagnoses.txt to review (LENSREF_UPDATE_DIAGNOSES=1 rewrites it)."""
    got = diagnoses(llama)
    if os.environ.get("LENSREF_UPDATE_DIAGNOSES"):
        DIAGNOSES.write_text("\n".join(got) + "\n", encoding="utf-8")
    want = DIAGNOSES.read_text(encoding="utf-8").splitlines()
    assert got == want, "\n".join(difflib.unified_diff(want, got, "reviewed", "now", lineterm=""))


def test_default_cases_of_the_hidden_verdicts():
    """The hidden verdicts call ``cases(seed)`` with the test cell's options only: the defaults count."""
    assert len(EXERCISES["classify"].cases(0)) == 16 + 40 and len(EXERCISES["settled_layer"].cases(0)) == 16 + 30
    assert len(EXERCISES["first_top_k_layer"].cases(0)) == 3 * (16 + 20)
    answers = EXERCISES["answer_ranks"]
    assert [c.answer for c in answers.cases(0)] == [" down", " furniture"]  # the default model's tokens
    assert [c.answer for c in answers.cases(0, lm=ModelRef("llama", 0))] == ["d", "f"]  # one byte each
    assert [c.rows for c in EXERCISES["lens_logits"].cases(0)] == ["all", "last"]  # one prompt, then its last row
    assert len(EXERCISES["logit_diff_by_layer"].cases(0)) == 1
    assert [len(EXERCISES[name].cases(0)) for name in ("capture_states", "patch_readout", "attribute")] == [2, 3, 3]


def test_kl_and_top_k_cases():
    """kl_to_final's second case has another rank ([5, V], or [4, 2, V] after a 2-D first case); top_k's second
    case asks for another k (1, or 3 when k is 1) and never more than the vocabulary."""
    kl_cases, top_k = EXERCISES["kl_to_final"].cases, EXERCISES["top_k"].cases
    assert [c.shape for c in kl_cases(0)] == [(6, 3, 70), (5, 70)]
    assert [c.shape for c in kl_cases(0, shape=(4, 9))] == [(4, 9), (4, 2, 9)]
    seeds = [c.seed for seed in range(40) for c in kl_cases(seed)]
    assert len(set(seeds)) == 80 and all(0 <= x < 2**31 for x in seeds) and max(seeds) >= 2**30
    with pytest.raises(ValueError) as info:
        checks.check_kl_to_final(kl_by_hand, shape=(7,))
    assert str(info.value) == "kl_to_final needs logits [L+1, ..., V], got shape [7]"
    assert [c.k for c in top_k(0)] == [5, 1] and [c.k for c in top_k(0, k=2)] == [2, 1]
    assert [c.k for c in top_k(0, k=1)] == [1, 3]
    assert [(c.shape, c.k) for c in top_k(0, k=1, shape=(4, 2))] == [((4, 2), 1), ((2, 3, 2), 2)]


def test_kl_to_the_last_column_of_2d_logits_is_not_called_the_last_position():
    """``logits[:, -1]`` of [L+1, V] logits is a vocabulary column (a uniform distribution), not a position."""
    message = one_line_failure(
        lambda: run_check(EXERCISES["kl_to_final"], lambda x: kl(x[:, -1:].expand_as(x), x), seed=0, shape=(6, 70))
    )
    assert "the last layer's KL to itself is not 0" in message


def test_rank_window_allows_float_noise_and_nothing_more():
    from lensref.course.checks.reading_the_grid import rank_window

    def window(row, target=0):
        low, high = rank_window(torch.tensor([row], dtype=torch.float64), target)
        return low[0], high[0]

    assert window([2.0, 3.0, 1.0]) == (2, 2)
    assert window([5.0, 5.0, 1.0], 1) == (1, 2)  # an exact tie: rank 1 or 2
    assert window([1000.0, 1000.005, 0.0]) == (1, 2)  # within 1e-5 of the largest |logit|: a tie
    assert window([1000.0, 1000.02, 0.0]) == (2, 2)
    assert window([0.5, 0.5 + 1.5e-5, 0.0]) == (2, 2)  # small logits: the tolerance is 1e-5, not less
    assert window([0.0, 1e-5, 0.0]) == (1, 3)  # exactly at the tolerance: a tie (and an exact one)
    assert window([0.0, -1e-5]) == (1, 2) and window([0.0, -1.5e-5]) == (1, 1)  # the same below the target
    low, high = rank_window(torch.tensor([[1000.0, 0.0, 1.0], [0.5, 0.5 + 0.005, 0.0]]), 0)
    assert (low, high) == ([1, 2], [1, 2])  # each row has its own tolerance
    low, high = rank_window(torch.tensor([[0.0, 1000.0, 0.0], [0.5, 0.5 + 0.005, 0.0]]), 0)
    assert (low, high) == ([2, 2], [3, 2])  # (not each column: 1000 in column 1 makes no tie of row 2's 0.505)


def test_target_rank_sees_tie_counting_where_only_some_rows_tie():
    """With 4 tokens some rounded rows have no tie: counting ties is still told apart from other mistakes."""
    counts_ties = RANK_WRONG["counts ties"][0]
    logits, _ = EXERCISES["target_rank"].inputs(EXERCISES["target_rank"].cases(0, shape=(8, 4))[1])
    tied = (logits == logits[..., :1]).sum(-1)  # (any target: some rows tie, some do not)
    assert 1 in tied.flatten().tolist() and int(tied.max()) > 1
    message = one_line_failure(lambda: run_check(EXERCISES["target_rank"], counts_ties, seed=0, shape=(8, 4)))
    assert "you counted tied tokens" in message


def test_whole_float_ranks_are_ranks(capsys):
    checks.check_target_rank(lambda x, t: rank_by_counting(x, t).float())
    assert "✓ target_rank" in capsys.readouterr().out


def test_statistic_checks_pass_their_options_on():
    seen = []

    def spy(fn):
        def wrapped(x, *rest):
            seen.append((tuple(x.shape), rest))
            return fn(x, *rest)

        return wrapped

    checks.check_to_probs(spy(probs_by_hand), shape=(2, 7))
    checks.check_top_k(spy(top_k_by_sorting), k=3, shape=(2, 9))
    checks.check_top_k(spy(top_k_by_sorting))
    checks.check_entropy(spy(entropy_by_hand), shape=(3, 6))
    checks.check_kl_to_final(spy(kl_by_hand), shape=(4, 5))
    checks.check_target_rank(spy(rank_by_counting), shape=(2, 11))
    firsts = [shape for shape, _ in seen[::2]]
    assert firsts == [(2, 7), (2, 9), (3, 4, 60), (3, 6), (4, 5), (2, 11)]
    assert [rest for _, rest in seen[2:6]] == [(3,), (1,), (5,), (1,)]  # k, then k = 1 on the other shape


def test_variant_checks_pass_their_options_on(llama, capsys):
    seen, models = [], []

    def spy(tag, fn):
        def wrapped(*args):
            seen.append((tag, *[tuple(a.shape) if isinstance(a, torch.Tensor) else a for a in args[1:2]]))
            models.extend(args[:1] if tag != "fit" else [])
            return fn(*args)

        return wrapped

    checks.check_fit_translator(spy("fit", fit_by_normal_equations), n=40, d=5)
    checks.check_fit_translator(spy("fit", fit_by_normal_equations))
    checks.check_logit_diff_by_layer(spy("diff", logit_diff_by_formula), lm=llama, n_prompts=2)
    checks.check_logit_diff_by_layer(spy("diff", logit_diff_by_formula), lm=llama)
    checks.check_attribute(spy("attr", attribute_by_formula), lm=llama, n_prompts=2)
    checks.check_attribute(spy("attr", attribute_by_formula), lm=llama)
    checks.check_patch_readout(spy("patch", patch_by_rindex), lm=llama, layers=[1])
    fits = [s for s in seen if s[0] == "fit"]
    assert fits == [("fit", (40, 5)), ("fit", (300, 12))]
    counts = {tag: sum(s[0] == tag for s in seen) for tag in ("diff", "attr", "patch")}
    assert counts == {"diff": 3, "attr": (2 + 2) + (1 + 2), "patch": 2}, counts  # + the writes and a random split
    assert [s[1] for s in seen if s[0] == "patch"] == [(32,), (32,)]
    assert capsys.readouterr().out.count("✓") == 7
    assert len(models) == 3 + 7 + 2 and all(lm is llama for lm in models)


def test_fit_translator_cases():
    """The hidden verdict's default is 300 samples of 12 dimensions; the smallest fits that still pin W and b
    (n = d + 1, down to d = 1) are accepted."""
    ex = EXERCISES["fit_translator"]
    assert [(c.n, c.d) for c in ex.cases(0)] == [(300, 12)]
    for n, d in ((2, 1), (6, 5)):
        assert [(c.n, c.d) for c in ex.cases(0, n=n, d=d)] == [(n, d)]
    seeds = [ex.cases(seed)[0].seed for seed in range(40)]
    assert len(set(seeds)) == 40 and all(0 <= x < 2**31 for x in seeds) and max(seeds) >= 2**30


@pytest.mark.parametrize(
    "check, options, message",
    [
        ("fit_translator", dict(n=5, d=5), "fit_translator needs n >= d + 1 >= 2 samples, got n=5, d=5"),
        ("fit_translator", dict(n=10, d=0), "fit_translator needs n >= d + 1 >= 2 samples, got n=10, d=0"),
        ("patch_readout", dict(layers=[]), "layers must be a non-empty list of ints (negative: from the end), got []"),
        ("patch_readout", dict(layers=[True]), "layers must be a non-empty list of ints (negative: from the end), got [True]"),
    ],
)  # fmt: skip
def test_variant_checks_refuse_bad_options(check, options, message, llama):
    if check == "patch_readout":
        options["lm"] = llama
    with pytest.raises(ValueError) as info:
        getattr(checks, f"check_{check}")(lambda *a: None, **options)
    assert str(info.value) == message


def test_top_k_with_k_equal_to_the_vocabulary(capsys):
    """When the k best are the whole vocabulary, they sum to 1 anyway: that is no sign of renormalizing."""
    hotter = TOP_K_WRONG["a temperature of 2"][0]
    message = one_line_failure(lambda: run_check(EXERCISES["top_k"], hotter, seed=0, k=5, shape=(3, 5)))
    assert "right tokens in the right order, but the probabilities differ" in message
    message = one_line_failure(lambda: run_check(EXERCISES["top_k"], hotter, seed=0, k=5, shape=(2, 3, 5)))
    assert "right tokens in the right order, but the probabilities differ" in message  # the same on [.., .., V]
    checks.check_top_k(lambda x, k: (_topk(x, k).values, _topk(x, k).indices.double()), k=5, shape=(3, 5))
    assert "✓ top_k" in capsys.readouterr().out  # whole-number float ids are ids


def test_to_probs_judges_rows_that_nearly_sum_to_1_by_their_values():
    """Row sums within 1e-3 + 1e-3 relative of 1 count as summing to 1 (float noise); a row 1.5e-3 off is then
    diagnosed by its values, not by its sum."""

    def nudged(x):
        p = torch.softmax(x, -1)
        p[..., 0] += 1.5e-3
        return p

    message = one_line_failure(lambda: run_check(EXERCISES["to_probs"], nudged, seed=0))
    assert "rows sum to 1 but differ from softmax(logits)" in message


def test_lens_logits_reports_a_library_that_does_not_reproduce_the_model(monkeypatch):
    """The reference's own self-check: if decoding the last state ever disagreed with the model's logits, the
    check says so instead of passing a learner who copied the (wrong) library."""
    lm = tiny_model("llama", seed=9)
    wrong = lambda adapter, s: adapter.unembed(adapter.final_norm(s)) + 1.0  # noqa: E731
    monkeypatch.setattr(type(lm.adapter), "decode", wrong)
    message = one_line_failure(
        lambda: run_check(EXERCISES["lens_logits"], lambda m, s: m.adapter.decode(s), seed=0, lm=lm)
    )
    assert message == "lens_logits: the last layer does not reproduce the model's logits."


def test_model_checks_pass_their_options_on(llama):
    seen = []

    def spy(fn):
        def wrapped(lm, x):
            seen.append((lm, tuple(x.shape)))
            return fn(lm, x)

        return wrapped

    checks.check_capture_states(spy(capture_via_hidden_states), lm=llama, n_prompts=3)
    checks.check_capture_states(spy(capture_via_hidden_states), lm=llama)
    checks.check_capture_states(spy(capture_via_hidden_states), lm=llama, n_prompts=1)
    checks.check_lens_logits(spy(lens_by_formula), lm=llama, n_prompts=2)
    checks.check_lens_logits(spy(lens_by_formula), lm=llama)
    assert all(lm is llama for lm, _ in seen)
    ranks = [len(shape) for _, shape in seen]  # ids [T]; states [L+1, T, d] per prompt, then [L+1, d] once
    assert ranks == [1] * (3 + 2 + 1) + [3, 3, 2] + [3, 2]


def test_statistic_cases_shapes_and_seeds():
    from lensref.course.checks.logit_lens import _other_rank, _statistic_cases

    assert _other_rank((3, 4, 60)) == [5, 60] and _other_rank((60,)) == [5, 60] and _other_rank((7, 60)) == [2, 3, 60]
    seeds = [c.seed for seed in range(40) for c in _statistic_cases(seed, (2, 9))]
    assert len(set(seeds)) == 80 and all(0 <= x < 2**31 for x in seeds) and max(seeds) >= 2**30
    for bad in ((), (0, 3), (2, -1)):
        with pytest.raises(ValueError) as info:
            checks.check_entropy(entropy_by_hand, shape=bad)
        assert str(info.value) == f"shape must be a non-empty list of positive sizes, got {list(bad)}"


def test_block_components_add_up_to_the_residual_stream(llama):
    """assignment 3's helper: the embedding, then what each block added, at one position (the last by default)."""
    from lensref.course.checks.variants import block_components

    prompt = "The Eiffel Tower is in the city of"
    states = capture_via_hidden_states(llama, encode_prompt(llama.tokenizer, prompt))  # [L+1, T, d]
    for position in (-1, 2):
        parts = block_components(llama, prompt, **({} if position == -1 else {"position": position}))
        assert parts.shape == (llama.n_layers + 1, llama.adapter.d_model)
        assert torch.allclose(parts[0], states[0, position]) and torch.allclose(
            parts[1], states[1, position] - states[0, position]
        )
        assert torch.allclose(parts.cumsum(0), states[:, position], atol=1e-5)


def test_random_split_adds_up_to_the_residual_at_its_scale():
    """check_attribute's third case: n random parts, each about as large as the residual, that add up to it."""
    from lensref.course.checks.variants import _random_split

    final = torch.randn(64, generator=torch.Generator().manual_seed(0)) * 7
    for n_parts in (2, 4):
        parts = _random_split(final, n_parts, seed=3)
        assert parts.shape == (n_parts, 64) and parts.dtype == final.dtype
        assert torch.allclose(parts.double().sum(0), final.double(), atol=1e-5)
        rms = parts.double().pow(2).mean(-1).sqrt() / final.double().pow(2).mean().sqrt()
        assert bool(((rms > 0.5) & (rms < 2.5)).all()), rms
    assert torch.equal(_random_split(final, 4, seed=3), _random_split(final, 4, seed=3))
    assert not torch.equal(_random_split(final, 4, seed=3), _random_split(final, 4, seed=4))


def test_attribute_components_and_pairs(llama):
    """The per-write split is the embedding, then block l's attention and MLP writes in turn (so its running sum
    passes through every layer's residual state); the target/distractor pairs are two distinct ids drawn from the
    whole vocabulary (up to its first 5000), and each prompt case gets its own pair seed."""
    from lensref.course.checks.variants import _pair, _prompt_cases, _write_components

    prompt = "The Eiffel Tower is in the city of"
    states = capture_via_hidden_states(llama, encode_prompt(llama.tokenizer, prompt))[:, -1]
    parts = _write_components(llama, prompt)
    assert parts.shape == (2 * llama.n_layers + 1, llama.adapter.d_model)
    assert torch.allclose(parts.cumsum(0)[::2], states, atol=1e-5)
    pairs = [_pair(llama, seed) for seed in range(60)]
    assert all(a != b and 0 <= min(a, b) and max(a, b) < 512 for a, b in pairs)
    assert max(max(p) for p in pairs) >= 4 * llama.adapter.d_model  # not just the first d ids
    seeds = [c.pair_seed for seed in range(40) for c in _prompt_cases(seed, llama, 2)]
    assert len(set(seeds)) == 80 and all(0 <= s < 2**31 for s in seeds) and max(seeds) >= 2**30
