"""The fast readout (lensref.readout) against plain full-vocabulary maths."""

import warnings

import pytest
import torch

from lensref import capture_residuals, tiny_model
from lensref.errors import LensError
from lensref.readout import read_states, release_workspace, topk_rows, workspace


def reference_stats(logits: torch.Tensor, target: int):
    """Entropy, KL(final || layer), top-5 and target probability/rank from full float64 logits [L+1, T, V]."""
    logp = torch.log_softmax(logits.double(), -1)
    p = logp.exp()
    top_p, top_i = p.topk(5, -1)
    return {
        "entropy": -(p * logp).sum(-1),
        "kl_to_final": (p[-1] * (logp[-1] - logp)).sum(-1).clamp_min(0),
        "top_probs": top_p,
        "top_ids": top_i,
        "target_prob": p[..., target],
        "target_rank": (logits > logits[..., target : target + 1]).sum(-1) + 1,
    }


@pytest.mark.parametrize("vocab, k", [(49152, 5), (49152, 1), (4096, 10), (512, 4), (500, 5), (64, 3)])
def test_topk_rows_equals_torch_topk(vocab, k):
    g = torch.Generator().manual_seed(vocab + k)
    z = torch.randn(37, vocab, generator=g) * 3
    z[3, 100 % vocab] = 50.0  # one row with a single dominant logit
    z[4, : min(vocab, 64 * 6)] += 10.0  # one row whose best values crowd a few groups
    values, ids = topk_rows(z, k)
    expected_values, expected_ids = z.topk(k, dim=-1)
    assert torch.equal(values, expected_values)
    assert torch.equal(ids, expected_ids)


def test_topk_rows_keeps_every_top_value_when_one_group_holds_them_all():
    z = torch.zeros(2, 4096)
    z[:, 128:133] = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0])  # all five winners in group 2
    values, ids = topk_rows(z, 5)
    assert ids.tolist() == [[128, 129, 130, 131, 132]] * 2
    assert values[0].tolist() == [5.0, 4.0, 3.0, 2.0, 1.0]


@pytest.fixture(scope="module")
def biased_lm():
    """A tiny Llama whose unembedding has a bias (GPT-J and some others do): the KL shortcut must add p_f . b."""
    lm = tiny_model("llama")
    old = lm.model.lm_head
    head = torch.nn.Linear(old.in_features, old.out_features, bias=True)
    with torch.no_grad():
        head.weight.copy_(old.weight)
        head.bias.copy_(torch.randn(old.out_features, generator=torch.Generator().manual_seed(0)) * 2)
    lm.model.lm_head = head
    return lm


@pytest.mark.parametrize("chunk_rows", [1, 5, 7, 4096])
@pytest.mark.parametrize("family", ["llama", "gpt2", "biased"])
def test_read_states_matches_full_logits(family, chunk_rows, biased_lm):
    lm = biased_lm if family == "biased" else tiny_model(family)
    ids = torch.tensor([5, 17, 99, 3, 250, 42, 7])
    states = capture_residuals(lm, ids).states[:, 0]
    stats, logits = read_states(lm, states, top_k=5, target_id=42, chunk_rows=chunk_rows, keep_logits=True)
    with torch.no_grad():
        direct = torch.stack([lm.adapter.decode(h) for h in states]).float()
    assert (logits - direct).abs().max().item() < 1e-5
    ref = reference_stats(direct, 42)
    assert torch.equal(stats.top_ids, ref["top_ids"])
    assert torch.equal(stats.target_rank, ref["target_rank"])
    for name, atol in (("entropy", 1e-5), ("kl_to_final", 1e-5), ("top_probs", 1e-6), ("target_prob", 1e-6)):
        assert torch.allclose(getattr(stats, name).double(), ref[name], atol=atol), name
    assert stats.kl_to_final[-1].abs().max().item() == 0.0


def test_workspace_is_reused_and_released():
    dev = torch.device("cpu")
    a = workspace(1000, dev)
    b = workspace(500, dev)
    assert b.data_ptr() == a.data_ptr()  # a smaller request reuses the buffer
    c = workspace(5000, dev)
    assert c.numel() == 5000
    release_workspace()
    assert workspace(10, dev).numel() == 10


def test_repeated_calls_give_identical_results():
    """The kept workspace never leaks one call's numbers into the next."""
    lm = tiny_model("llama")
    long = capture_residuals(lm, torch.arange(40)).states[:, 0]
    short = capture_residuals(lm, torch.tensor([9, 8, 7])).states[:, 0]
    first, _ = read_states(lm, short, target_id=8)
    read_states(lm, long, target_id=8)
    again, _ = read_states(lm, short, target_id=8)
    for name in ("top_ids", "top_probs", "entropy", "kl_to_final", "target_prob", "target_rank"):
        assert torch.equal(getattr(first, name), getattr(again, name)), name


@pytest.mark.parametrize("chunk_rows", [3, 45, 4096])
def test_read_states_on_a_long_prompt_stays_in_its_buffers(chunk_rows):
    """A prompt longer than one statistics slice (32 rows): every slice fits its scratch rows, so torch never has
    to resize an ``out=`` view (a UserWarning in the learner's notebook), and the last layer's slices fill the
    final distribution row by row (the KL of every layer against it)."""
    lm = tiny_model("llama")
    ids = torch.arange(40) * 7 % 250
    states = capture_residuals(lm, ids).states[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats, logits = read_states(lm, states, target_id=42, chunk_rows=chunk_rows, keep_logits=True)
    ref = reference_stats(logits, 42)
    assert stats.top_ids.shape == (states.shape[0], 40, 5)  # five candidates unless asked otherwise
    assert torch.equal(stats.top_ids, ref["top_ids"])
    assert torch.allclose(stats.kl_to_final.double(), ref["kl_to_final"], atol=1e-5)
    assert stats.kl_to_final[-1].abs().max().item() == 0.0


@pytest.mark.parametrize("top_k", [0, -1, 513])
def test_read_states_refuses_a_top_k_outside_the_vocabulary(top_k):
    lm = tiny_model("llama")  # 512 tokens
    states = capture_residuals(lm, torch.tensor([5, 17, 99])).states[:, 0]
    with pytest.raises(LensError, match=f"top_k must be between 1 and the vocabulary size 512, got {top_k}"):
        read_states(lm, states, top_k=top_k)
    assert read_states(lm, states, top_k=512)[0].top_ids.shape[-1] == 512


def test_grid_stats_kl_is_a_deprecated_name_of_kl_to_final():
    lm = tiny_model("llama")
    stats, _ = read_states(lm, capture_residuals(lm, torch.tensor([5, 17, 99])).states[:, 0], top_k=2)
    with pytest.warns(DeprecationWarning, match="GridStats.kl is deprecated; use GridStats.kl_to_final"):
        old = stats.kl
    assert old is stats.kl_to_final
