"""``Unembed``'s extra steps against plain float64 maths written here: a logit scale (Cohere, Granite) and a final
soft-cap (Gemma 2) in every decoding form, the readout's expected row with the scale folded in, the frozen
direction scaled or refused, and the norms of the new families (Gemma's ``1 + w`` RMSNorm, Cohere's bias-free
centred norm, a norm inside a residual branch)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lensref import LensError
from lensref.unembed import Unembed, freeze_norm, frozen_norm_direction, norm_kind

D, V = 12, 300


@pytest.fixture(autouse=True)
def no_grad():
    with torch.no_grad():
        yield


class OnePlusRMS(nn.Module):
    """Gemma's RMSNorm: ``x / rms(x) * (1 + w)``."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.linspace(-0.4, 0.6, D))
        self.eps = 1e-6

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * (1.0 + self.weight)


class CentredNoBias(nn.Module):
    """Cohere's LayerNorm: centred, a gain, no bias, ``variance_epsilon``."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.linspace(0.5, 1.5, D))
        self.variance_epsilon = 1e-5

    def forward(self, x):
        c = x - x.mean(-1, keepdim=True)
        return c * torch.rsqrt(c.pow(2).mean(-1, keepdim=True) + self.variance_epsilon) * self.weight


def linear(bias: bool) -> nn.Linear:
    gen = torch.Generator().manual_seed(0)
    layer = nn.Linear(D, V, bias=bias)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(V, D, generator=gen))
        if bias:
            layer.bias.copy_(torch.randn(V, generator=gen))
    return layer


def states(n=5):
    return 3 * torch.randn(n, D, generator=torch.Generator().manual_seed(1)) + 0.5


def plain(unembed: Unembed, x, scale=1.0, cap=None):
    z = unembed.norm(x).double() @ unembed.linear.weight.double().T
    if unembed.linear.bias is not None:
        z = z + unembed.linear.bias.double()
    z = z * scale
    return z if cap is None else cap * torch.tanh(z / cap)


CASES = {
    "scale": (0.25, None),
    "double": (2.0, None),
    "softcap": (1.0, 2.0),
    "both": (4.0, 3.0),
    "neither": (1.0, None),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("bias", [False, True])
def test_every_form_applies_the_scale_then_the_softcap(case, bias):
    scale, cap = CASES[case]
    u = Unembed(norm=nn.RMSNorm(D, eps=1e-6), linear=linear(bias), scale=scale, softcap=cap)
    x = states()
    expected = plain(u, x, scale, cap)
    assert torch.allclose(u(x).double(), expected, atol=1e-4)
    assert torch.allclose(u.unembed_normed(u.normalize(x)).double(), expected, atol=1e-4)
    assert torch.allclose(u.token_logits(x, [3, 7, 250]).double(), expected[:, [3, 7, 250]], atol=1e-4)
    out = torch.empty(len(x), V)
    assert torch.allclose(u.logits_into(u.normalize(x), out).double(), expected, atol=1e-4)
    assert u.linear_in_normed == (cap is None)
    if cap is not None:
        assert float(u(x).abs().max()) <= cap


@pytest.mark.parametrize("scale", [0.5, 2.0])
@pytest.mark.parametrize("bias", [False, True])
def test_the_expected_row_carries_the_scale(bias, scale):
    u = Unembed(norm=nn.RMSNorm(D, eps=1e-6), linear=linear(bias), scale=scale)
    p = torch.softmax(torch.randn(3, V, generator=torch.Generator().manual_seed(2)), -1)
    w, b = u.expected_row(p)
    normed = u.normalize(states(3)).double()
    got = (normed * w).sum(-1) + (0 if b is None else b)
    assert torch.allclose(got, (p.double() * plain(u, states(3), scale)).sum(-1), atol=1e-5)


def test_the_frozen_direction_is_scaled_and_refused_when_soft_capped():
    x = states(1)[0]
    u = Unembed(norm=nn.RMSNorm(D, eps=1e-6), linear=linear(True), scale=0.25)
    frozen = u.frozen_direction(x, 3, 7)
    z = plain(u, x[None], 0.25)[0]
    assert abs(float(x.double() @ frozen.v) + frozen.constant - float(z[3] - z[7])) < 1e-5
    capped = Unembed(norm=nn.RMSNorm(D, eps=1e-6), linear=linear(False), softcap=30.0)
    with pytest.raises(LensError, match=r"^direct logit attribution needs logits linear in the residual, but this "):
        capped.frozen_direction(x, 3, 7)


@pytest.mark.parametrize("norm, kind", [(OnePlusRMS(), "rms1p"), (CentredNoBias(), "layer")])
def test_the_new_families_norms_freeze_exactly(norm, kind):
    x, direction = states(1)[0], torch.randn(D, generator=torch.Generator().manual_seed(4))
    v, constant, _ = frozen_norm_direction(norm, x, direction, kind)
    assert abs(float(x.double() @ v) + constant - float(norm(x).double() @ direction.double())) < 1e-5
    frozen = freeze_norm(norm, x, kind)
    assert torch.allclose(frozen(x), norm(x).double(), atol=1e-5)
    parts = torch.randn(4, D, generator=torch.Generator().manual_seed(5))
    parts[-1] = x - parts[:-1].sum(0)  # pieces of x: a frozen norm is linear, so their images add up
    assert torch.allclose(frozen(parts).sum(0), norm(x).double(), atol=1e-5)
    assert torch.allclose(frozen(parts)[1], frozen(parts[1]))  # each row on its own (a head's vector)
    assert not torch.allclose(frozen_norm_direction(norm, x, direction, "rms")[0], v)  # the kind matters


def test_the_kind_is_inferred_when_not_given():
    x = states(1)[0]
    assert freeze_norm(nn.LayerNorm(D), x).centred and not freeze_norm(nn.RMSNorm(D, eps=1e-6), x).centred
    with pytest.raises(LensError, match=r"^unsupported attention output norm LayerNorm for direct logit attribution$"):
        freeze_norm(nn.LayerNorm(D), x, "rms", role="attention output norm")


def test_of_reads_the_adapters_scale_softcap_and_norm_kind():
    norm, head = OnePlusRMS(), linear(False)
    spec = SimpleNamespace(norm="rms1p")
    adapter = SimpleNamespace(final_norm=norm, unembed=head, logit_scale=0.5, softcap=3.0, spec=spec)
    for source in (adapter, SimpleNamespace(adapter=adapter)):  # an Adapter, or a LoadedModel holding one
        u = Unembed.of(source)
        assert (u.norm, u.linear, u.scale, u.softcap, u.norm_kind) == (norm, head, 0.5, 3.0, "rms1p")
    bare = Unembed.of(SimpleNamespace(final_norm=norm, unembed=head))  # an adapter-like object without them
    assert (bare.scale, bare.softcap, bare.norm_kind) == (1.0, None, None)


def test_the_frozen_direction_uses_the_declared_norm_kind():
    x = states(1)[0]
    u = Unembed(norm=OnePlusRMS(), linear=linear(False), scale=2.0, norm_kind="rms1p")
    frozen = u.frozen_direction(x, 3, 7)
    z = plain(u, x[None], 2.0)[0]
    assert abs(float(x.double() @ frozen.v) + frozen.constant - float(z[3] - z[7])) < 1e-5
    assert norm_kind(OnePlusRMS()) == "rms" and norm_kind(nn.LayerNorm(D)) == "layer"
    assert norm_kind(nn.LayerNorm(D), "rms1p") == "rms1p"
