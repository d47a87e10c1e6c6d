"""The fast readout against float64 plain maths, on a vocabulary where float32 shortcuts are measurably wrong.

The fixture is a tiny model with a 65,536-token unembedding whose rows share a large common vector (as trained
embeddings do) and residual states whose layers point in different directions, so the shift that common vector
adds to every logit changes from layer to layer. There, ``p_final @ W`` computed as one float32 matmul is off by
1e-4 to 1e-3 nats in the KL it feeds, depending on the CPU's matmul kernel
(:func:`test_the_fixture_exposes_one_float32_matmul` shows it with plain torch), while the float64 reference and a
correct readout agree to ~5e-6. Every statistic is compared with
``log_softmax`` of float64 logits; nothing here calls lensref to make its expected values.
"""

from __future__ import annotations

import pytest
import torch

from lensref import read_states, tiny_model

VOCAB, D = 65536, 16
KL_TOL = 1e-4  # nats; the readout is ~5e-6 off, one float32 matmul 1e-4 to 1e-3
ENTROPY_TOL = 2e-5
PROB_TOL = 2e-6


def wide_model(family: str = "llama", seed: int = 1, unembedding_bias: bool = False):
    lm = tiny_model(family, vocab_size=VOCAB, d_model=D, n_heads=2, n_layers=1)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        head = lm.model.get_output_embeddings()
        weight = 3.0 * torch.randn(VOCAB, D, generator=gen) / D**0.5 + 2.0 * torch.randn(D, generator=gen)
        if unembedding_bias:
            new = torch.nn.Linear(D, VOCAB, bias=True)
            new.bias.copy_(torch.randn(VOCAB, generator=gen) + 4.0)
            lm.model.set_output_embeddings(new)
            head = new
        head.weight.copy_(weight)
        norm = lm.adapter.final_norm
        norm.weight.copy_(0.5 + torch.rand(D, generator=gen))
        if getattr(norm, "bias", None) is not None:
            norm.bias.copy_(0.3 * torch.randn(D, generator=gen))
    return lm


def crafted_states(seed: int = 2, layers: int = 6, positions: int = 5) -> torch.Tensor:
    """Residual states ``[L+1, T, d]`` whose layers differ as much as a trained model's first and last do."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(layers, positions, D, generator=gen) * (1.0 + torch.arange(layers)[:, None, None])


def float64_logits(lm, states: torch.Tensor) -> torch.Tensor:
    """Final norm (written out here) and unembedding, in float64: ``[L+1, T, V]``."""
    norm = lm.adapter.final_norm
    x = states.double()
    w = norm.weight.double()
    if isinstance(norm, torch.nn.LayerNorm):
        centred = x - x.mean(-1, keepdim=True)
        normed = centred / torch.sqrt((centred**2).mean(-1, keepdim=True) + norm.eps) * w + norm.bias.double()
    else:
        normed = x / torch.sqrt((x**2).mean(-1, keepdim=True) + norm.variance_epsilon) * w
    head = lm.model.get_output_embeddings()
    logits = normed @ head.weight.double().T
    if head.bias is not None:
        logits = logits + head.bias.double()
    return logits


def reference(logits: torch.Tensor, target: int, k: int = 5) -> dict:
    logp = torch.log_softmax(logits, -1)
    p = logp.exp()
    top_p, top_i = p.topk(k, -1)
    return {
        "entropy": -(p * logp).sum(-1),
        "kl": (p[-1] * (logp[-1] - logp)).sum(-1),
        "top_probs": top_p,
        "top_ids": top_i,
        "p": p,
        "target_prob": p[..., target],
    }


@pytest.fixture(scope="module")
def wide():
    return wide_model()


def check_against_float64(lm, states, stats, target: int, translated: torch.Tensor | None = None):
    logits = float64_logits(lm, states if translated is None else translated)
    ref = reference(logits, target)
    assert (stats.kl_to_final.double() - ref["kl"]).abs().max() < KL_TOL
    assert stats.kl_to_final[-1].abs().max() == 0.0  # the last layer is the final distribution itself
    assert (stats.entropy.double() - ref["entropy"]).abs().max() < ENTROPY_TOL
    assert (stats.top_probs.double() - ref["top_probs"]).abs().max() < PROB_TOL
    # the ids returned carry the probabilities returned (ties may swap ids, never probabilities)
    looked_up = ref["p"].gather(-1, stats.top_ids)
    assert (stats.top_probs.double() - looked_up).abs().max() < PROB_TOL
    assert (stats.target_prob.double() - ref["target_prob"]).abs().max() < PROB_TOL
    # rank = 1 + how many logits beat the target's; float32 may only decide near-ties differently
    zt = logits[..., target : target + 1]
    surely_above = (logits > zt + 1e-4).sum(-1) + 1
    maybe_above = (logits > zt - 1e-4).sum(-1) + 1
    assert torch.all(stats.target_rank >= surely_above) and torch.all(stats.target_rank <= maybe_above)
    assert stats.target_rank.min() >= 1 and stats.target_rank.max() <= VOCAB
    return ref


def test_the_fixture_exposes_one_float32_matmul(wide):
    """Plain torch: KL via ``normed . (p_final @ W)`` with one float32 matmul misses float64 by far more than the
    readout does (5x at least: ~20x with this machine's Intel kernel, ~200x on an AMD one)."""
    states = crafted_states()
    logits = float64_logits(wide, states)
    ref = reference(logits, 0)
    norm = wide.adapter.final_norm
    with torch.no_grad():
        normed = norm(states).double()
        weight = wide.model.get_output_embeddings().weight
        p_final = torch.softmax((norm(states[-1]) @ weight.T).float(), -1)
        expected_row = (p_final @ weight).double()  # the shortcut as one float32 matmul over 65,536 terms
    pf_logp = (normed * expected_row).sum(-1) - torch.logsumexp(logits, -1)
    kl_single = pf_logp[-1] - pf_logp
    readout, _ = read_states(wide, states, top_k=5, target_id=0)
    readout_error = (readout.kl_to_final.double() - ref["kl"]).abs().max()
    assert (kl_single - ref["kl"]).abs().max() > 5 * readout_error
    assert ref["kl"][:-1].min() > 0.1  # real distances, not a degenerate grid


@pytest.mark.parametrize("chunk_rows", [1, 7, 2048])
def test_read_states_matches_float64_maths(wide, chunk_rows):
    states = crafted_states()
    target = int(torch.randint(VOCAB, (1,), generator=torch.Generator().manual_seed(3)))
    stats, logits = read_states(wide, states, top_k=5, target_id=target, chunk_rows=chunk_rows, keep_logits=True)
    assert stats.top_ids.shape == (6, 5, 5) and stats.kl_to_final.shape == stats.entropy.shape == (6, 5)
    assert stats.top_ids.dtype == torch.long and stats.target_rank.dtype == torch.long
    check_against_float64(wide, states, stats, target)
    assert logits.shape == (6, 5, VOCAB)
    assert (logits.double() - float64_logits(wide, states)).abs().max() < 1e-4


def test_a_layer_norm_model_with_an_unembedding_bias():
    lm = wide_model("gpt2", seed=4, unembedding_bias=True)
    states = crafted_states(seed=5)
    stats, kept = read_states(lm, states, top_k=5, target_id=123)
    assert kept is None
    check_against_float64(lm, states, stats, 123)


def test_a_translator_maps_every_layer_but_the_last(wide):
    states = crafted_states(seed=6)
    gen = torch.Generator().manual_seed(7)
    maps = [(torch.eye(D) + 0.3 * torch.randn(D, D, generator=gen), torch.randn(D, generator=gen)) for _ in range(5)]
    seen = []

    def translator(layer, h):
        seen.append(layer)
        a, b = maps[layer]
        return h @ a.T + b

    stats, _ = read_states(wide, states, top_k=5, target_id=9, translator=translator)
    assert seen == [0, 1, 2, 3, 4]
    translated = torch.stack([states[i] @ maps[i][0].T + maps[i][1] for i in range(5)] + [states[5]])
    check_against_float64(wide, states, stats, 9, translated=translated)


def test_top_k_and_target_on_a_hand_made_row(wide):
    """A state whose logits are known exactly: the unembedding rows are set so the order is by construction."""
    lm = tiny_model("llama", vocab_size=4096, d_model=D, n_heads=2, n_layers=1)
    with torch.no_grad():
        lm.adapter.final_norm.weight.fill_(1.0)
        weight = torch.zeros(4096, D)
        weight[:, 0] = torch.linspace(-2.0, 2.0, 4096)  # logit of token v grows with v along dimension 0
        weight[100, 0] = 9.0  # ... except token 100, the clear winner
        lm.model.get_output_embeddings().weight.copy_(weight)
    states = torch.zeros(2, 1, D)
    states[:, 0, 0] = torch.tensor([-1.0, 1.0])  # layer 0 reverses the order, layer 1 keeps it
    stats, _ = read_states(lm, states, top_k=3, target_id=4095)
    assert stats.top_ids[1, 0].tolist() == [100, 4095, 4094]
    assert stats.top_ids[0, 0].tolist() == [0, 1, 2]
    assert stats.target_rank[:, 0].tolist() == [4095, 2]
    check = reference(float64_logits(lm, states), 4095, k=3)
    assert torch.allclose(stats.top_probs.double(), check["top_probs"], atol=1e-7)
    assert torch.allclose(stats.entropy.double(), check["entropy"], atol=1e-5)
    assert torch.allclose(stats.kl_to_final.double(), check["kl"], atol=1e-5) and float(stats.kl_to_final[0, 0]) > 1.0


@pytest.mark.parametrize("k", [1, 7])
def test_without_a_target_and_with_other_k(wide, k):
    states = crafted_states(seed=8, layers=3, positions=2)
    stats, kept = read_states(wide, states, top_k=k)
    assert stats.target_prob is None and stats.target_rank is None and kept is None
    ref = reference(float64_logits(wide, states), 0, k=k)
    assert stats.top_ids.shape == (3, 2, k)
    assert (stats.top_probs.double() - ref["top_probs"]).abs().max() < PROB_TOL
    assert (stats.kl_to_final.double() - ref["kl"]).abs().max() < KL_TOL
    assert (stats.entropy.double() - ref["entropy"]).abs().max() < ENTROPY_TOL


def test_many_positions_are_read_in_cache_sized_slices(wide):
    """70 positions: every layer's rows are split into several slices (and a default of five top tokens)."""
    states = crafted_states(seed=9, layers=3, positions=70)
    stats, _ = read_states(wide, states, target_id=77)
    assert stats.top_ids.shape == (3, 70, 5)
    check_against_float64(wide, states, stats, 77)
