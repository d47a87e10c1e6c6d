"""Direct logit attribution against a derivation written here from scratch, never against lensref itself.

For each tiny model the modules are located by hand (not through lensref's adapters); one forward pass records
what enters each attention output projection, what each attention block and MLP writes, what enters the first
block and the final norm. Then, in float64 plain maths:

- head ``h`` of layer ``l`` writes ``z[h*hd:(h+1)*hd] @ W_O[:, h*hd:(h+1)*hd]^T`` (the output projection sliced
  by hand, head-major as the attention computes it);
- the final norm, frozen at the real final residual, turns a write ``c`` into ``s * w * c . u`` (RMSNorm) or
  ``s * w * (c - mean c) . u`` (LayerNorm), ``u = W_U[target] - W_U[distractor]``.

A head split that interleaves heads (``z[h::H]`` with the matching columns) still adds up to every layer's
attention output, so every sum check passes it; :func:`test_an_interleaved_head_split_is_caught` shows that
this derivation tells the two apart on these models.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest
import torch

from lensref import LensError, tiny_model
from lensref.dla import direct_logit_attribution

PROMPT = "the quick brown fox"
FAMILIES = ["llama", "mistral", "qwen2", "gpt2", "gpt_neox"]


@dataclass
class Parts:
    """The modules of one tiny model, found by hand for each family."""

    blocks: list
    attn: list
    mlp: list
    out_proj: list
    final_norm: torch.nn.Module
    unembed: torch.nn.Module
    n_heads: int
    layer_norm: bool


def parts_of(lm, family: str) -> Parts:
    m = lm.model
    if family in ("llama", "mistral", "qwen2"):
        layers = m.model.layers
        return Parts(
            list(layers),
            [b.self_attn for b in layers],
            [b.mlp for b in layers],
            [b.self_attn.o_proj for b in layers],
            m.model.norm,
            m.lm_head,
            m.config.num_attention_heads,
            False,
        )
    if family == "gpt2":
        layers = m.transformer.h
        return Parts(
            list(layers),
            [b.attn for b in layers],
            [b.mlp for b in layers],
            [b.attn.c_proj for b in layers],
            m.transformer.ln_f,
            m.lm_head,
            m.config.n_head,
            True,
        )
    if family == "gpt_neox":
        layers = m.gpt_neox.layers
        return Parts(
            list(layers),
            [b.attention for b in layers],
            [b.mlp for b in layers],
            [b.attention.dense for b in layers],
            m.gpt_neox.final_layer_norm,
            m.get_output_embeddings(),
            m.config.num_attention_heads,
            True,
        )
    raise AssertionError(family)


def out_proj_matrix(proj) -> torch.Tensor:
    """The output projection as ``[d_out, d_in]`` (``nn.Linear`` layout; GPT-2's Conv1D stores it transposed)."""
    return proj.weight.double() if isinstance(proj, torch.nn.Linear) else proj.weight.double().T


@dataclass
class Derived:
    embed: float
    attn: torch.Tensor  # [L]
    mlp: torch.Tensor  # [L]
    heads: torch.Tensor  # [L, H]
    interleaved: torch.Tensor  # [L, H], the wrong split
    attn_bias: torch.Tensor  # [L]
    constant: float
    scale: float
    logit_diff: float


def first(output):
    return output[0] if isinstance(output, tuple) else output


@torch.no_grad()
def derive(lm, family: str, prompt: str, target_id: int, distractor_id: int, position: int) -> Derived:
    parts = parts_of(lm, family)
    seen: dict = {}

    def keep_input(key):
        def hook(module, args, kwargs):
            seen[key] = (args[0] if args else kwargs["hidden_states"])[0, position].double()

        return hook

    def keep_output(key):
        def hook(module, args, output):
            seen[key] = first(output)[0, position].double()

        return hook

    handles = [
        parts.blocks[0].register_forward_pre_hook(keep_input("embed"), with_kwargs=True),
        parts.final_norm.register_forward_pre_hook(keep_input("final"), with_kwargs=True),
    ]
    for layer in range(len(parts.blocks)):
        handles.append(parts.out_proj[layer].register_forward_pre_hook(keep_input(("z", layer)), with_kwargs=True))
        handles.append(parts.attn[layer].register_forward_hook(keep_output(("attn", layer))))
        handles.append(parts.mlp[layer].register_forward_hook(keep_output(("mlp", layer))))
    ids = torch.tensor([list(prompt.encode())])
    try:
        logits = lm.model(input_ids=ids).logits[0, position].double()
    finally:
        for h in handles:
            h.remove()

    x = seen["final"]
    u = parts.unembed.weight[target_id].double() - parts.unembed.weight[distractor_id].double()
    norm = parts.final_norm
    w = norm.weight.double()
    if parts.layer_norm:
        scale = 1.0 / float(torch.sqrt(((x - x.mean()) ** 2).mean() + norm.eps))
        constant = float(norm.bias.double() @ u)
    else:
        scale = 1.0 / float(torch.sqrt((x * x).mean() + norm.variance_epsilon))
        constant = 0.0

    def write(c: torch.Tensor) -> float:
        """What a write ``c`` adds to the logit difference through the frozen final norm."""
        centred = c - c.mean() if parts.layer_norm else c
        return float(scale * (centred * w) @ u)

    bias = getattr(parts.unembed, "bias", None)
    if bias is not None:
        constant += float(bias[target_id].double() - bias[distractor_id].double())

    L, H = len(parts.blocks), parts.n_heads
    heads = torch.zeros(L, H, dtype=torch.float64)
    interleaved = torch.zeros(L, H, dtype=torch.float64)
    attn_bias = torch.zeros(L, dtype=torch.float64)
    for layer in range(L):
        W = out_proj_matrix(parts.out_proj[layer])  # [d, H * hd]
        z = seen[("z", layer)]
        hd = z.shape[0] // H
        for h in range(H):
            cols = slice(h * hd, (h + 1) * hd)
            heads[layer, h] = write(W[:, cols] @ z[cols])
            interleaved[layer, h] = write(W[:, h::H] @ z[h::H])
        proj_bias = parts.out_proj[layer].bias
        if proj_bias is not None:
            attn_bias[layer] = write(proj_bias.double())
        # the hand-sliced heads plus the bias are exactly what the block wrote
        assert torch.allclose(
            W @ z + (0 if proj_bias is None else proj_bias.double()), seen[("attn", layer)], atol=1e-5
        )
    return Derived(
        embed=write(seen["embed"]),
        attn=torch.tensor([write(seen[("attn", layer)]) for layer in range(L)], dtype=torch.float64),
        mlp=torch.tensor([write(seen[("mlp", layer)]) for layer in range(L)], dtype=torch.float64),
        heads=heads,
        interleaved=interleaved,
        attn_bias=attn_bias,
        constant=constant,
        scale=scale,
        logit_diff=float(logits[target_id] - logits[distractor_id]),
    )


def randomize_biases(lm, seed: int = 3) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in lm.model.named_parameters():
            if name.endswith("bias"):
                param.copy_(torch.rand(param.shape, generator=gen) - 0.5)


def with_unembedding_bias(lm, seed: int = 5):
    """Give the unembedding a bias (GPT-J and others have one): it belongs in the constant term."""
    old = lm.model.get_output_embeddings()
    head = torch.nn.Linear(old.in_features, old.out_features, bias=True)
    with torch.no_grad():
        head.weight.copy_(old.weight)
        head.bias.copy_(torch.randn(old.out_features, generator=torch.Generator().manual_seed(seed)))
        head.bias[ord("q")], head.bias[ord("x")] = 1.5, -0.75
    lm.model.set_output_embeddings(head)
    return lm


@functools.cache
def model_for(family: str):
    """One model per family for the tests that only read it (tests that change a model build their own)."""
    return fresh_model_for(family)


def fresh_model_for(family: str):
    lm = tiny_model(family, seed=2)
    if family in ("gpt2", "gpt_neox"):
        randomize_biases(lm)
    return lm


def close(actual: torch.Tensor, expected: torch.Tensor, tol: float = 2e-5) -> bool:
    return bool(torch.allclose(actual.double(), expected, rtol=tol, atol=tol * max(1.0, float(expected.abs().max()))))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("position", [-1, 2])
def test_every_term_equals_the_hand_derivation(family, position):
    lm = model_for(family)
    target, distractor = "q", "x"
    result = direct_logit_attribution(lm, PROMPT, target, distractor, position=position)
    ref = derive(lm, family, PROMPT, ord(target), ord(distractor), position)
    assert result.position == position % len(PROMPT)
    assert result.tokens == list(PROMPT)
    assert (result.target_id, result.distractor_id) == (ord(target), ord(distractor))
    assert result.heads.shape == ref.heads.shape
    assert close(result.heads, ref.heads), (result.heads, ref.heads)
    assert close(result.attn, ref.attn) and close(result.mlp, ref.mlp)
    assert close(result.attn_bias, ref.attn_bias)
    assert result.embed == pytest.approx(ref.embed, rel=2e-5, abs=1e-6)
    assert result.constant == pytest.approx(ref.constant, rel=1e-6, abs=1e-9)
    assert result.norm_scale == pytest.approx(ref.scale, rel=1e-6)
    assert result.model_logit_diff == pytest.approx(ref.logit_diff, rel=1e-6, abs=1e-6)
    assert result.total == pytest.approx(ref.logit_diff, rel=1e-4, abs=1e-5)
    assert 0 <= result.reconstruction_error < 1e-5


@pytest.mark.parametrize("family", FAMILIES)
def test_an_interleaved_head_split_is_caught(family):
    """The wrong split passes every sum check, and differs from the right one by far more than the tolerance."""
    lm = model_for(family)
    ref = derive(lm, family, PROMPT, ord("q"), ord("x"), -1)
    assert torch.allclose(ref.interleaved.sum(1), ref.heads.sum(1), atol=1e-9)  # the sums cannot tell
    assert not close(ref.interleaved, ref.heads)
    gap = float((ref.interleaved - ref.heads).abs().max())
    assert gap > 100 * 2e-5 * max(1.0, float(ref.heads.abs().max()))


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_an_unembedding_bias_goes_into_the_constant(family):
    lm = with_unembedding_bias(fresh_model_for(family))
    result = direct_logit_attribution(lm, PROMPT, "q", "x")
    ref = derive(lm, family, PROMPT, ord("q"), ord("x"), -1)
    bias = lm.model.get_output_embeddings().bias
    assert float(bias[ord("q")] - bias[ord("x")]) == 2.25  # the bias difference is really there
    assert result.constant == pytest.approx(ref.constant, rel=1e-6)
    assert result.model_logit_diff == pytest.approx(ref.logit_diff, rel=1e-6)
    assert result.total == pytest.approx(result.model_logit_diff, rel=1e-4, abs=1e-5)


def test_swapping_target_and_distractor_negates_every_term():
    lm = model_for("gpt2")
    ab = direct_logit_attribution(lm, PROMPT, "q", "x")
    ba = direct_logit_attribution(lm, PROMPT, "x", "q")
    assert torch.allclose(ab.heads, -ba.heads, atol=1e-6) and torch.allclose(ab.mlp, -ba.mlp, atol=1e-6)
    assert ab.constant == pytest.approx(-ba.constant, abs=1e-9) and ab.embed == pytest.approx(-ba.embed, abs=1e-6)
    assert ab.norm_scale == ba.norm_scale


def test_components_heads_and_top_follow_the_arrays():
    lm = model_for("llama")
    r = direct_logit_attribution(lm, PROMPT, "q", "x")
    L, H = r.n_layers, r.n_heads
    assert (L, H) == (3, 4)
    parts = r.components()
    assert [c.name for c in parts] == ["embed"] + [f"{k} {i}" for i in range(L) for k in ("attn", "mlp")] + ["constant"]
    assert [c.kind for c in parts] == ["embed"] + ["attn", "mlp"] * L + ["constant"]
    assert [c.layer for c in parts] == [None] + [i for i in range(L) for _ in (0, 1)] + [None]
    assert parts[1].value == pytest.approx(float(r.attn[0])) and parts[2].value == pytest.approx(float(r.mlp[0]))
    assert parts[0].value == r.embed and parts[-1].value == r.constant
    heads = r.head_contributions()
    assert [(c.layer, c.head) for c in heads] == [(i, h) for i in range(L) for h in range(H)]
    assert [c.name for c in heads[:2]] == ["L0H0", "L0H1"] and {c.kind for c in heads} == {"head"}
    assert [c.value for c in heads] == pytest.approx(r.heads.flatten().tolist())
    for k in (1, 3, 100):
        want = sorted(parts, key=lambda c: -abs(c.value))[:k]
        assert [c.name for c in r.top(k)] == [c.name for c in want]
        want_heads = sorted(heads, key=lambda c: -abs(c.value))[:k]
        assert [c.name for c in r.top(k, heads=True)] == [c.name for c in want_heads]
    d = r.to_dict()
    assert d["target"] == {"text": "q", "id": ord("q")} and d["distractor"] == {"text": "x", "id": ord("x")}
    assert d["heads"] == [[float(v) for v in row] for row in r.heads] and d["attn"] == [float(v) for v in r.attn]
    assert d["mlp"] == [float(v) for v in r.mlp] and d["attn_bias"] == [0.0] * L
    assert d["sum_of_components"] == r.total and d["model_logit_diff"] == d["logit_diff"] == r.model_logit_diff
    assert (d["embed"], d["constant"], d["norm_scale"], d["position"]) == (r.embed, r.constant, r.norm_scale, 18)
    assert [c["name"] for c in d["top"]] == [c.name for c in r.top(10)]
    assert [c["name"] for c in d["top_heads"]] == [c.name for c in r.top(10, heads=True)]
    assert d["model"] == "tiny-llama" and d["tokens"] == list(PROMPT)


def test_a_projection_that_does_not_split_into_heads_is_refused():
    lm = fresh_model_for("llama")
    lm.model.config.num_attention_heads = 3  # 32 columns do not split into 3 heads
    with pytest.raises(LensError, match="does not split into 3 heads"):
        direct_logit_attribution(lm, PROMPT, "q", "x")


def test_the_report_prints_the_numbers_of_the_result():
    r = direct_logit_attribution(model_for("gpt2"), PROMPT, "q", "x")
    lines = r.format_table(top=2).splitlines()
    assert lines[0] == "tiny-gpt2: logit q - logit x after 'x'"
    assert lines[1] == (
        f"model: {r.model_logit_diff:.4f}   sum of components: {r.total:.4f}   (embed {r.embed:.3f}, "
        f"attention {float(r.attn.sum()):.3f}, MLPs {float(r.mlp.sum()):.3f}, constant {r.constant:.3f})"
    )
    assert lines[2] == "largest components:" and lines[5] == "largest heads:" and len(lines) == 8
    assert lines[3:5] == [f"  {c.name:>10}  {c.value:+8.3f}" for c in r.top(2)]
    assert lines[6:8] == [f"  {c.name:>10}  {c.value:+8.3f}" for c in r.top(2, heads=True)]
    assert len(r.format_table().splitlines()) == 3 + 8 + 1 + 10  # all 8 components, ten of the 12 heads
    assert len(r.top()) == 8 and len(r.top(heads=True)) == 10


def test_json_lists_the_ten_largest_of_many_components():
    lm = tiny_model("llama", seed=4, n_layers=6)  # 14 components and 24 heads: more than ten of each
    d = direct_logit_attribution(lm, PROMPT, "q", "x").to_dict()
    parts = [("embed", d["embed"])] + [(f"attn {i}", v) for i, v in enumerate(d["attn"])]
    parts += [(f"mlp {i}", v) for i, v in enumerate(d["mlp"])] + [("constant", d["constant"])]
    assert [c["name"] for c in d["top"]] == [n for n, _ in sorted(parts, key=lambda p: -abs(p[1]))[:10]]
    heads = [(f"L{layer}H{h}", v) for layer, row in enumerate(d["heads"]) for h, v in enumerate(row)]
    assert [c["name"] for c in d["top_heads"]] == [n for n, _ in sorted(heads, key=lambda p: -abs(p[1]))[:10]]


def test_a_prompt_longer_than_the_context_is_refused():
    with pytest.raises(LensError, match="^the prompt is 300 tokens long; this model reads at most 256$"):
        direct_logit_attribution(model_for("llama"), "x" * 300, "q", "x")


def test_the_head_count_from_either_config_name():
    lm = fresh_model_for("llama")
    expected = direct_logit_attribution(model_for("llama"), PROMPT, "q", "x").heads
    lm.model.config.num_attention_heads = 0  # unknown (the modules keep their own head count)
    with pytest.raises(LensError, match="^cannot find the number of attention heads in LlamaConfig$"):
        direct_logit_attribution(lm, PROMPT, "q", "x")
    lm.model.config.n_head = 4  # GPT-2's name for it
    assert torch.equal(direct_logit_attribution(lm, PROMPT, "q", "x").heads, expected)


def test_an_output_projection_of_unknown_shape_is_refused():
    lm = fresh_model_for("llama")
    attn = lm.model.model.layers[1].self_attn
    attn.o_proj = torch.nn.Sequential(attn.o_proj)  # computes the same, but cannot be sliced into heads
    with pytest.raises(LensError, match="^cannot split the attention output projection Sequential into heads$"):
        direct_logit_attribution(lm, PROMPT, "q", "x")
