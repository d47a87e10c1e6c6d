"""Claims the lesson makes, checked on the real default model (SmolLM2-135M-Instruct)."""

import pytest
import torch

from lensref import capture_residuals, logit_lens
from lensref.course.examples import EIFFEL
from lensref.tokens import encode_prompt

pytestmark = pytest.mark.real_model


def test_default_model_shape(real_lm):
    cfg = real_lm.model.config
    assert (real_lm.adapter.family, real_lm.n_layers, real_lm.adapter.d_model, cfg.vocab_size) == (
        "llama",
        30,
        576,
        49152,
    )
    assert real_lm.model.lm_head.weight.data_ptr() == real_lm.model.model.embed_tokens.weight.data_ptr()


def test_prompt_tokens_have_no_bos(real_lm):
    result = logit_lens(real_lm, EIFFEL, top_k=1)
    assert result.tokens == ["The", " E", "iffel", " Tower", " is", " located", " in", " the", " city", " of"]


def test_paris_emerges_late(real_lm):
    result = logit_lens(real_lm, EIFFEL, target=" Paris")
    assert result.top1(result.n_layers) == " Paris"
    ranks = result.target_rank[:, -1].tolist()
    assert all(rank > 1 for rank in ranks[:20]), ranks
    first = result.first_top1_layer()
    assert first is not None and first >= 2 * result.n_layers // 3


def test_last_layer_matches_model_and_double_norm_does_not(real_lm):
    ids = encode_prompt(real_lm.tokenizer, EIFFEL)
    res = capture_residuals(real_lm, ids)
    assert (real_lm.adapter.decode(res.states[-1]) - res.logits).abs().max().item() <= 1e-4
    with torch.no_grad():
        out = real_lm.model(input_ids=ids[None], output_hidden_states=True)
        twice = real_lm.adapter.decode(out.hidden_states[-1])
    assert (twice - out.logits).abs().max().item() > 1.0


def test_fast_readout_matches_float64_maths(real_lm):
    """The blocked, sliced readout over 49,152 tokens agrees with plain float64 softmax maths."""
    result = logit_lens(real_lm, EIFFEL, target=" Paris", keep_logits=True)
    with torch.no_grad():
        ids = encode_prompt(real_lm.tokenizer, EIFFEL)
        states = capture_residuals(real_lm, ids, states_only=True).states[:, 0]
        normed = real_lm.adapter.final_norm(states).double()
        logits = normed @ real_lm.adapter.unembed.weight.double().T
    logp = torch.log_softmax(logits, -1)
    p = logp.exp()
    kl = (p[-1] * (logp[-1] - logp)).sum(-1)
    assert (result.entropy.double() - -(p * logp).sum(-1)).abs().max().item() < 1e-4
    # KL reaches ~150 nats at layer 0, where float32 logits alone carry ~1e-5 relative error
    assert torch.allclose(result.kl_to_final.double(), kl, rtol=1e-4, atol=1e-4)
    assert (result.top_probs.double() - p.topk(5, -1).values).abs().max().item() < 1e-4
    assert torch.equal(result.top_ids, p.topk(5, -1).indices)
    paris = result.target_id
    assert (result.target_prob.double() - p[..., paris]).abs().max().item() < 1e-5
    assert torch.equal(result.target_rank, (logits > logits[..., paris : paris + 1]).sum(-1) + 1)
