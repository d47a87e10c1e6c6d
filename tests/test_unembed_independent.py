"""``lensref.unembed`` against plain float64 maths written here: every decoding form, the expected unembedding row
and the frozen-norm direction, with and without biases, for RMSNorm and LayerNorm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lensref import LensError, tiny_model
from lensref.unembed import Unembed, frozen_norm_direction

D, V = 16, 3000  # a vocabulary that is not a multiple of the expectation chunk


def plain_norm(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = x.double()
    weight = getattr(norm, "weight", None)
    w = torch.ones(x.shape[-1], dtype=torch.float64) if weight is None else weight.double()
    if isinstance(norm, nn.LayerNorm):
        c = x - x.mean(-1, keepdim=True)
        out = c / torch.sqrt((c * c).mean(-1, keepdim=True) + norm.eps) * w
        return out if norm.bias is None else out + norm.bias.double()
    eps = getattr(norm, "variance_epsilon", None) or norm.eps
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def plain_logits(norm, linear, x) -> torch.Tensor:
    z = plain_norm(norm, x) @ linear.weight.double().T
    return z if linear.bias is None else z + linear.bias.double()


def made(norm: nn.Module, bias: bool, seed: int = 0) -> Unembed:
    gen = torch.Generator().manual_seed(seed)
    linear = nn.Linear(D, V, bias=bias)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(V, D, generator=gen) + 1.5)  # rows share a common part
        if bias:
            linear.bias.copy_(3 * torch.randn(V, generator=gen))
        for p in norm.parameters():
            p.copy_(0.5 + torch.rand(p.shape, generator=gen))
    return Unembed(norm=norm, linear=linear)


NORMS = {
    "layernorm+bias": lambda: (nn.LayerNorm(D), True),
    "layernorm, no affine": lambda: (nn.LayerNorm(D, elementwise_affine=False), False),
    "rmsnorm": lambda: (nn.RMSNorm(D, eps=1e-6), False),
    "rmsnorm+bias": lambda: (nn.RMSNorm(D, eps=1e-5), True),
}


@pytest.fixture(params=list(NORMS))
def unembed(request):
    norm, bias = NORMS[request.param]()
    return made(norm, bias)


def states(n: int = 7, seed: int = 1) -> torch.Tensor:
    return 2 * torch.randn(n, D, generator=torch.Generator().manual_seed(seed)) + 0.7


def test_every_decoding_form_equals_plain_maths(unembed):
    x = states()
    expected = plain_logits(unembed.norm, unembed.linear, x)
    with torch.no_grad():
        assert torch.allclose(unembed(x).double(), expected, atol=1e-4)
        normed = unembed.normalize(x)
        assert torch.allclose(normed.double(), plain_norm(unembed.norm, x), atol=1e-5)
        assert torch.allclose(unembed.unembed_normed(normed).double(), expected, atol=1e-4)
        ids = [0, 5, V - 1, 5]
        picked = unembed.token_logits(x, ids)
        assert picked.dtype == torch.float32 and picked.shape == (7, 4)
        assert torch.allclose(picked.double(), expected[:, ids], atol=1e-4)
        out = torch.empty(7, V)
        written = unembed.logits_into(normed, out)
        assert written.data_ptr() == out.data_ptr() and torch.allclose(out.double(), expected, atol=1e-4)
    assert (unembed.vocab_size, unembed.d_model) == (V, D)
    assert (unembed.bias is None) == (unembed.linear.bias is None)


def test_logits_into_a_buffer_of_another_dtype(unembed):
    wide = Unembed(norm=unembed.norm.double(), linear=unembed.linear.double())
    x = states().double()
    out = torch.empty(7, V)  # float32, unlike the float64 model
    with torch.no_grad():
        written = wide.logits_into(wide.normalize(x), out)
    assert written.data_ptr() == out.data_ptr()
    assert torch.allclose(out.double(), plain_logits(wide.norm, wide.linear, x), atol=1e-4)


@pytest.mark.parametrize("weights, states_dtype", [(torch.bfloat16, torch.float32), (torch.float32, torch.bfloat16)])
def test_mixed_precision_decodes_at_the_unembedding_dtype(weights, states_dtype):
    """A bfloat16 unembedding read from float32 states (or the other way round) into the readout's float32
    buffer, and the expected row of float32 distributions over bfloat16 rows: cast, never a dtype error."""
    u = made(nn.RMSNorm(D, eps=1e-6), bias=True)
    u = Unembed(norm=u.norm, linear=u.linear.to(weights))
    normed = states().to(states_dtype)
    out = torch.empty(7, V)
    with torch.no_grad():
        written = u.logits_into(normed, out)
    expected = normed.to(weights).double() @ u.weight.double().T + u.bias.double()
    assert written.data_ptr() == out.data_ptr() and torch.allclose(out.double(), expected, rtol=2e-2, atol=0.2)
    p = torch.softmax(torch.randn(3, V, generator=torch.Generator().manual_seed(4)), -1)
    w, b = u.expected_row(p)
    assert w.dtype == b.dtype == torch.float64
    assert torch.allclose(w, p.double() @ u.weight.double(), rtol=2e-2, atol=1e-2)
    assert torch.allclose(b, p.double() @ u.bias.double(), rtol=2e-2, atol=1e-2)


def test_expected_row_is_p_times_w_and_p_times_b(unembed):
    gen = torch.Generator().manual_seed(2)
    p = torch.softmax(4 * torch.randn(5, V, generator=gen), -1)
    p[0] = 0.0
    p[0, 0] = 1.0  # all the mass on the first token
    p[1] = 0.0
    p[1, V - 1] = 1.0  # ... and on the last one, past the last full chunk
    w, b = unembed.expected_row(p)
    assert w.dtype == torch.float64 and w.shape == (5, D)
    assert torch.allclose(w, p.double() @ unembed.weight.double(), atol=2e-5, rtol=1e-6)
    assert torch.equal(w[0], unembed.weight[0].double()) and torch.equal(w[1], unembed.weight[V - 1].double())
    if unembed.bias is None:
        assert b is None
    else:
        assert b.dtype == torch.float64 and b.shape == (5,)
        assert torch.allclose(b, p.double() @ unembed.bias.double(), atol=2e-5, rtol=1e-6)
        assert float(b[1]) == float(unembed.bias[V - 1])


def test_frozen_direction_reproduces_the_logit_difference(unembed):
    x = states(1, seed=3)[0]
    frozen = unembed.frozen_direction(x, 7, 11)
    logits = plain_logits(unembed.norm, unembed.linear, x[None])[0]
    assert float(x.double() @ frozen.v) + frozen.constant == pytest.approx(float(logits[7] - logits[11]), rel=1e-6)
    # the direction is linear in a component: two halves of x add up to the whole
    assert float((0.3 * x.double()) @ frozen.v + (0.7 * x.double()) @ frozen.v) == pytest.approx(
        float(x.double() @ frozen.v), rel=1e-12
    )
    xd = x.double()
    spread = xd - xd.mean() if isinstance(unembed.norm, nn.LayerNorm) else xd
    eps = getattr(unembed.norm, "eps", None)
    assert frozen.scale == pytest.approx(1 / float(torch.sqrt((spread * spread).mean() + eps)), rel=1e-12)
    if isinstance(unembed.norm, nn.LayerNorm):
        assert abs(float(frozen.v.sum())) < 1e-9  # centring moved onto v
    bias_part = 0.0 if unembed.bias is None else float(unembed.bias[7] - unembed.bias[11])
    norm_bias = getattr(unembed.norm, "bias", None)
    norm_part = (
        0.0 if norm_bias is None else float(norm_bias.double() @ (unembed.weight[7] - unembed.weight[11]).double())
    )
    assert frozen.constant == pytest.approx(bias_part + norm_part, rel=1e-6, abs=1e-9)


def test_frozen_norm_direction_returns_v_constant_and_scale():
    norm = nn.RMSNorm(4, eps=0.0)
    x = torch.tensor([1.0, -1.0, 1.0, -1.0])  # mean square 1: the scale is exactly 1
    v, constant, scale = frozen_norm_direction(norm, x, torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert (constant, scale) == (0.0, 1.0) and v.tolist() == [1.0, 2.0, 3.0, 4.0]
    ln = nn.LayerNorm(4, eps=0.0, elementwise_affine=False)
    v, constant, scale = frozen_norm_direction(ln, torch.tensor([2.0, 0.0, 2.0, 0.0]), torch.tensor([1.0, 0, 0, 0]))
    assert (constant, scale) == (0.0, 1.0) and v.tolist() == [0.75, -0.25, -0.25, -0.25]


class Unit(nn.Module):
    """An RMS norm without a weight at all (not even ``weight = None``)."""

    eps = 0.0


def test_a_norm_without_a_weight_scales_by_one():
    x, u = torch.tensor([1.0, -1.0, 1.0, -1.0] * (D // 4)), torch.arange(float(D))
    v, constant, scale = frozen_norm_direction(Unit(), x, u)
    assert (constant, scale) == (0.0, 1.0) and torch.equal(v, u.double())


class BiasedRMS(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(D))
        self.bias = nn.Parameter(torch.zeros(D))
        self.eps = 1e-6


class NoEps(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(D))


@pytest.mark.parametrize("norm", [BiasedRMS(), NoEps()], ids=["a bias", "no eps"])
def test_an_unknown_final_norm_is_refused(norm):
    with pytest.raises(LensError, match=f"^unsupported final norm {type(norm).__name__} for direct logit attribution$"):
        frozen_norm_direction(norm, torch.ones(D), torch.ones(D))


def test_of_takes_a_model_or_its_adapter():
    lm = tiny_model("gpt2")
    for source in (lm, lm.adapter):
        u = Unembed.of(source)
        assert u.norm is lm.adapter.final_norm and u.linear is lm.adapter.unembed
    x = torch.randn(3, lm.adapter.d_model)
    with torch.no_grad():
        assert torch.allclose(Unembed.of(lm)(x), lm.model.lm_head(lm.model.transformer.ln_f(x)))
