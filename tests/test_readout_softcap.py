"""The readout on logits that are not linear in the normed state (a final soft-cap) or are scaled: its KL,
entropy, top-k and target rank against plain float64 maths on the full logits."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lensref.readout import read_states

D, V, L, T = 16, 512, 3, 5


def fake_model(scale: float, softcap: float | None) -> SimpleNamespace:
    gen = torch.Generator().manual_seed(0)
    norm, head = nn.RMSNorm(D, eps=1e-6), nn.Linear(D, V, bias=True)
    with torch.no_grad():
        head.weight.copy_(0.3 * torch.randn(V, D, generator=gen))  # logits of a few units: the cap bends, no ties
        head.bias.copy_(torch.randn(V, generator=gen))
    adapter = SimpleNamespace(final_norm=norm, unembed=head, logit_scale=scale, softcap=softcap, spec=None)
    return SimpleNamespace(adapter=adapter)


@pytest.mark.parametrize("scale, softcap", [(1.0, 1.5), (0.5, None), (2.0, 4.0)])
@torch.no_grad()
def test_the_statistics_are_those_of_the_logits(scale, softcap):
    lm = fake_model(scale, softcap)
    states = torch.randn(L + 1, T, D, generator=torch.Generator().manual_seed(1))
    stats, logits = read_states(lm, states, top_k=3, target_id=7, chunk_rows=4, keep_logits=True)
    head = lm.adapter.unembed
    z = (lm.adapter.final_norm(states).double() @ head.weight.double().T + head.bias.double()) * scale
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    assert torch.allclose(logits.double(), z, atol=1e-4)
    logp = torch.log_softmax(z, -1)
    kl = (logp[-1].exp() * (logp[-1] - logp)).sum(-1)
    assert torch.allclose(stats.kl_to_final.double(), kl, atol=1e-5)
    assert torch.allclose(stats.entropy.double(), -(logp.exp() * logp).sum(-1), atol=1e-5)
    assert torch.equal(stats.top_ids, z.topk(3, -1).indices)
    assert torch.equal(stats.target_rank, (z > z[..., 7:8]).sum(-1) + 1)
