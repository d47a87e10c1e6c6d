"""lensref.hooks: where each layer's residual state is read, patching a module's input, hooks that always go
away, and the capture of what each block writes."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lensref import LensError, capture_residuals, tiny_model
from lensref.hooks import (
    Hooks,
    capture_block_writes,
    check_site,
    hidden_input,
    output_tensor,
    read_site,
    residual_site,
    with_hidden_input,
)

IDS = torch.tensor([5, 17, 99, 3, 250, 42, 7])


def n_hooks(module):
    return len(module._forward_pre_hooks) + len(module._forward_hooks)


def test_residual_site_is_the_block_or_the_final_norm(tiny_lm):
    adapter = tiny_lm.adapter
    L = adapter.n_layers
    assert residual_site(adapter, 0) is adapter.blocks[0]
    assert residual_site(adapter, L - 1) is adapter.blocks[L - 1]
    assert residual_site(adapter, L) is adapter.final_norm
    for bad in (-1, L + 1):
        with pytest.raises(LensError, match=f"layer {bad} is out of range; this model has layers 0..{L}"):
            residual_site(adapter, bad)


def test_hidden_input_positional_and_keyword():
    x, y = torch.zeros(1), torch.ones(1)
    assert hidden_input((x, "mask"), {}) is x
    assert hidden_input((), {"hidden_states": x, "mask": 1}) is x
    args, kwargs = with_hidden_input((x, "mask"), {"k": 2}, y)
    assert args[0] is y and args[1:] == ("mask",) and kwargs == {"k": 2}
    args, kwargs = with_hidden_input((), {"hidden_states": x, "k": 2}, y)
    assert args == () and kwargs["hidden_states"] is y and kwargs["k"] == 2


def test_output_tensor_never_takes_row_zero_of_a_tensor():
    t = torch.arange(6.0).view(2, 3)
    assert output_tensor(t) is t
    assert output_tensor((t, "attention weights")) is t


def test_check_site_names_the_site_and_why_it_is_refused():
    parallel = tiny_model("gpt_neox").adapter  # attention and MLP read the same input
    assert check_site(parallel, "pre") == "pre" and check_site(parallel, "post") == "post"
    with pytest.raises(LensError, match=r"^site 'mid' needs a point between attention and the MLP, but .* parallel"):
        check_site(parallel, "mid")
    assert check_site(tiny_model("llama").adapter, "mid") == "mid"
    with pytest.raises(LensError, match=r"^unknown site 'middle'; use one of pre, mid, post$"):
        check_site(parallel, "middle")


class KeywordCalled(nn.Module):
    """Adds 1, calls ``inner`` by keyword, adds 1: a block (or norm) whose input comes as ``hidden_states=``."""

    def __init__(self, inner: nn.Module | None = None) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + 1
        if self.inner is not None:
            hidden_states = self.inner(hidden_states=hidden_states)
        return hidden_states + 1


def test_read_site_finds_hidden_states_passed_by_keyword():
    inner = KeywordCalled()
    block, norm = KeywordCalled(inner), KeywordCalled()
    adapter = SimpleNamespace(
        n_layers=1, blocks=[block], final_norm=norm, mid_refusal=lambda: None, mid_input=lambda layer: inner
    )
    x = torch.zeros(1, 2, 3)
    for layer, site, module, expected in [
        (0, "pre", block, x),
        (0, "mid", block, x + 1),
        (0, "post", block, x + 4),
        (1, "post", norm, x),
    ]:  # row L is the final norm's input at every site
        seen: list[torch.Tensor] = []
        with Hooks() as hooks:
            read_site(hooks, adapter, layer, site, seen.append)
            module(hidden_states=x)
        assert len(seen) == 1 and torch.equal(seen[0], expected), (layer, site)
    with pytest.raises(LensError, match=r"^unknown site 'middle'"), Hooks() as hooks:
        read_site(hooks, adapter, 0, "middle", seen.append)


def test_block_writes_name_what_could_not_be_captured(monkeypatch):
    lm = tiny_model("llama")
    unused = nn.Linear(2, 2)  # a module the forward pass never calls
    monkeypatch.setattr(type(lm.adapter), "mlp_write", lambda self, layer: unused)  # adapters are frozen
    monkeypatch.setattr(type(lm.adapter), "attn_out_proj", lambda self, layer: unused)
    with pytest.raises(
        LensError, match=rf"^could not capture mlp, heads for {lm.name}; is its architecture supported\?$"
    ):
        capture_block_writes(lm, IDS)
    assert n_hooks(unused) == 0


def test_hooks_are_removed_even_when_the_forward_pass_raises():
    lm = tiny_model("llama")
    site = residual_site(lm.adapter, 1)
    before = n_hooks(site)

    def boom(module, args, kwargs):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"), Hooks() as hooks:
        hooks.pre(site, boom)
        hooks.post(site, lambda module, args, output: None)
        assert n_hooks(site) == before + 2
        lm.model(input_ids=IDS[None])
    assert n_hooks(site) == before
    with torch.no_grad():  # and the model runs as before
        assert torch.allclose(lm.model(input_ids=IDS[None]).logits, capture_residuals(lm, IDS).logits)


@pytest.mark.parametrize("family", ["llama", "gpt2", "gpt_neox"])
def test_patching_a_layers_input_changes_only_later_layers(family):
    lm = tiny_model(family)
    layer = 2
    clean = capture_residuals(lm, IDS)

    def zero_position_3(module, args, kwargs):
        hidden = hidden_input(args, kwargs).clone()
        hidden[:, 3] = 0.0
        return with_hidden_input(args, kwargs, hidden)

    with Hooks() as hooks:
        hooks.pre(residual_site(lm.adapter, layer), zero_position_3)
        patched = capture_residuals(lm, IDS)  # its recorders run after the patch (registered later)
    assert torch.equal(patched.states[:layer], clean.states[:layer])
    assert patched.states[layer, 0, 3].abs().max().item() == 0.0
    assert torch.equal(patched.states[layer, 0, :3], clean.states[layer, 0, :3])  # earlier positions untouched
    assert (patched.logits[0, 3:] - clean.logits[0, 3:]).abs().max().item() > 1e-4
    assert torch.allclose(
        patched.logits[0, :3], clean.logits[0, :3], atol=1e-6
    )  # causal: earlier positions keep theirs


def test_block_writes_add_up_to_the_final_residual(tiny_lm):
    writes = capture_block_writes(tiny_lm, IDS)
    res = capture_residuals(tiny_lm, IDS)
    L, T, d = tiny_lm.n_layers, len(IDS), tiny_lm.adapter.d_model
    assert writes.n_layers == L
    assert writes.embed.shape == (T, d) and writes.attn.shape == writes.mlp.shape == (L, T, d)
    assert torch.equal(writes.embed, res.states[0, 0]) and torch.equal(writes.final, res.states[L, 0])
    assert torch.allclose(writes.logits, res.logits[0])
    rebuilt = writes.embed + writes.attn.sum(0) + writes.mlp.sum(0)
    assert (rebuilt - writes.final).abs().max().item() < 1e-4
    # the heads are the output projection's input: projecting them gives the attention block's output
    with torch.no_grad():
        for layer in range(L):
            projected = tiny_lm.adapter.attn_out_proj(layer)(writes.heads[layer])
            assert torch.allclose(projected, writes.attn[layer], atol=1e-5)


def test_block_writes_at_one_position_are_that_column(tiny_lm):
    adapter = tiny_lm.adapter
    watched = [adapter.blocks[0], adapter.final_norm, adapter.attn(0), adapter.mlp(0), adapter.attn_out_proj(0)]
    before = [n_hooks(m) for m in watched]  # transformers may keep hooks of its own (output recording)
    everywhere = capture_block_writes(tiny_lm, IDS)
    at = capture_block_writes(tiny_lm, IDS, position=4)
    for name in ("embed", "final", "logits"):
        assert torch.equal(getattr(at, name), getattr(everywhere, name)[4]), name
    for name in ("attn", "mlp", "heads"):
        assert torch.equal(getattr(at, name), getattr(everywhere, name)[:, 4]), name
    assert [n_hooks(m) for m in watched] == before  # ours are all gone
