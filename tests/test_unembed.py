"""lensref.unembed.Unembed: every form of "final norm + unembedding" against the model's own logits."""

import pytest
import torch

from lensref import capture_residuals, tiny_model
from lensref.unembed import Unembed, frozen_norm_direction

IDS = torch.tensor([5, 17, 99, 3, 250, 42, 7])


def with_biased_unembedding(lm, seed=0):
    """``lm`` with its unembedding replaced by a copy that has a large random bias (GPT-J-style heads do)."""
    old = lm.model.lm_head
    head = torch.nn.Linear(old.in_features, old.out_features, bias=True)
    with torch.no_grad():
        head.weight.copy_(old.weight)
        head.bias.copy_(torch.randn(old.out_features, generator=torch.Generator().manual_seed(seed)) * 2)
    lm.model.lm_head = head
    return lm


@pytest.fixture(scope="module", params=["llama", "gpt2", "biased-llama", "biased-gpt2"])
def lm(request):
    family = request.param.removeprefix("biased-")
    model = tiny_model(family)
    return with_biased_unembedding(model) if request.param.startswith("biased") else model


@pytest.fixture(scope="module")
def residuals(lm):
    return capture_residuals(lm, IDS)


def test_the_last_layer_decodes_to_the_models_own_logits(lm, residuals):
    unembed = Unembed.of(lm)
    with torch.no_grad():
        logits = unembed(residuals.states[-1, 0])
    assert (logits - residuals.logits[0]).abs().max().item() < 1e-5
    # the same object from the adapter, and through Adapter.decode
    assert Unembed.of(lm.adapter) == unembed
    with torch.no_grad():
        assert torch.equal(lm.adapter.decode(residuals.states[-1, 0]), logits)


def test_bias_is_read_once_and_only_where_there_is_one(lm):
    unembed = Unembed.of(lm)
    assert unembed.bias is lm.model.lm_head.bias  # the module's own tensor (None for these tiny models' heads)
    assert (unembed.bias is None) == (lm.model.lm_head.bias is None)
    assert unembed.vocab_size == lm.model.config.vocab_size and unembed.d_model == lm.adapter.d_model


def test_token_logits_are_the_full_logits_of_those_tokens(lm, residuals):
    unembed = Unembed.of(lm)
    states = residuals.states[:, 0]  # [L+1, T, d]
    with torch.no_grad():
        full = unembed(states)
        pair = unembed.token_logits(states, [42, 7])
    assert pair.shape == (*states.shape[:2], 2) and pair.dtype == torch.float32
    assert (pair - full[..., [42, 7]]).abs().max().item() < 1e-5
    # dropping the bias is visible whenever there is one
    if unembed.bias is not None:
        without = unembed.normalize(states) @ unembed.weight[[42, 7]].T
        assert (pair - without).abs().max().item() > 0.1


def test_logits_into_writes_the_callers_buffer(lm, residuals):
    unembed = Unembed.of(lm)
    states = residuals.states[:, 0].reshape(-1, lm.adapter.d_model)
    with torch.no_grad():
        normed = unembed.normalize(states)
        out = torch.full((states.shape[0], unembed.vocab_size), float("nan"))
        result = unembed.logits_into(normed, out)
        expected = unembed.unembed_normed(normed)
    assert result.data_ptr() == out.data_ptr()
    assert (out - expected).abs().max().item() < 1e-5


def test_expected_row_is_p_times_w_and_b_in_float64(lm):
    unembed = Unembed.of(lm)
    p = torch.softmax(torch.randn(3, unembed.vocab_size, generator=torch.Generator().manual_seed(1)), -1)
    w, b = unembed.expected_row(p)
    assert w.dtype == torch.float64 and w.shape == (3, unembed.d_model)
    assert torch.allclose(w, p.double() @ unembed.weight.double(), atol=1e-9)
    if unembed.bias is None:
        assert b is None
    else:
        assert torch.allclose(b, p.double() @ unembed.bias.double(), atol=1e-9)


def test_frozen_direction_reproduces_the_logit_difference_bias_included(lm, residuals):
    unembed = Unembed.of(lm)
    final = residuals.states[-1, 0, -1]  # the final residual at the last position
    target, distractor = 42, 7
    frozen = unembed.frozen_direction(final, target, distractor)
    real = float(residuals.logits[0, -1, target] - residuals.logits[0, -1, distractor])
    assert float(final.double() @ frozen.v) + frozen.constant == pytest.approx(real, rel=1e-6, abs=1e-6)
    # the unembedding bias is in the constant (and only there): the norm-only constant misses it
    _, norm_constant, scale = frozen_norm_direction(
        unembed.norm, final, unembed.weight[target] - unembed.weight[distractor]
    )
    bias_gap = 0.0 if unembed.bias is None else float(unembed.bias[target] - unembed.bias[distractor])
    assert frozen.constant - norm_constant == pytest.approx(bias_gap, abs=1e-6)
    assert frozen.scale == scale > 0
    # linear in the components: two halves of the residual add up to the whole
    half = final / 2
    assert float(half.double() @ frozen.v) * 2 == pytest.approx(float(final.double() @ frozen.v), rel=1e-9)
