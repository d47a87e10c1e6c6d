"""Direct logit attribution: the parts add up to the model's logit difference, on every family."""

import json

import pytest
import torch

from lensref import LensError, capture_residuals, tiny_model
from lensref.cli import main
from lensref.course.examples import EIFFEL, EIFFEL_DISTRACTOR, EIFFEL_TARGET
from lensref.dla import direct_logit_attribution
from lensref.hooks import capture_block_writes, residual_deltas
from lensref.tokens import encode_prompt
from lensref.unembed import frozen_norm_direction

PROMPT = "hello world"


def extreme_pair(lm, prompt=PROMPT, position=-1):
    """The printable ASCII tokens with the highest and lowest final logit: a large difference to split."""
    ids = encode_prompt(lm.tokenizer, prompt)
    with torch.no_grad():
        logits = lm.model(input_ids=ids[None]).logits[0, position, 32:127]
    return chr(32 + int(logits.argmax())), chr(32 + int(logits.argmin())), float(logits.max() - logits.min())


def test_logit_diff_is_a_deprecated_name_of_model_logit_diff(tiny_lm):
    """The field and the JSON key were ``logit_diff``; both still answer (the JSON key until 0.3), the field warns."""
    result = direct_logit_attribution(tiny_lm, PROMPT, "a", "b")
    with pytest.warns(DeprecationWarning, match="DLAResult.logit_diff is deprecated; use DLAResult.model_logit_diff"):
        assert result.logit_diff == result.model_logit_diff
    data = result.to_dict()
    assert data["logit_diff"] == data["model_logit_diff"] == result.model_logit_diff


def test_components_sum_to_the_model_logit_difference(tiny_lm):
    target, distractor, gap = extreme_pair(tiny_lm)
    result = direct_logit_attribution(tiny_lm, PROMPT, target, distractor)
    assert result.model_logit_diff == pytest.approx(gap, rel=1e-5)
    assert abs(result.total - result.model_logit_diff) <= 1e-5 * abs(result.model_logit_diff) + 1e-7
    assert result.reconstruction_error < 1e-5  # embed + attention + MLP outputs == the final residual
    # every head of a layer plus the projection bias is that layer's attention output
    assert torch.allclose(result.heads.sum(1) + result.attn_bias, result.attn, atol=1e-6)
    assert result.heads.shape == (tiny_lm.n_layers, tiny_lm.model.config.num_attention_heads)
    assert len({round(float(v), 6) for v in result.heads.flatten()}) > result.n_heads  # heads differ
    parts = result.components()
    assert sum(c.value for c in parts) == pytest.approx(result.total, abs=1e-6)
    assert len(parts) == 2 * tiny_lm.n_layers + 2
    assert [abs(c.value) for c in result.top(5)] == sorted((abs(c.value) for c in parts), reverse=True)[:5]


@pytest.mark.parametrize("family", ["gpt_neox", "gpt2"])
def test_biases_go_to_the_constant_and_attention_bias_terms(family):
    """GPT-NeoX adds attention and MLP in parallel; both families have biases everywhere (random here)."""
    lm = tiny_model(family, seed=1)
    with torch.no_grad():
        for name, param in lm.model.named_parameters():
            if name.endswith("bias"):
                param.uniform_(-0.5, 0.5)
    assert family != "gpt_neox" or lm.model.config.use_parallel_residual
    target, distractor, _ = extreme_pair(lm)
    result = direct_logit_attribution(lm, PROMPT, target, distractor)
    assert result.reconstruction_error < 1e-5
    assert result.total == pytest.approx(result.model_logit_diff, rel=1e-5)
    assert abs(result.constant) > 1e-3  # the final LayerNorm's bias goes into the constant
    assert result.attn_bias.abs().min() > 1e-4  # each output projection's bias is its own term
    assert torch.allclose(result.heads.sum(1) + result.attn_bias, result.attn, atol=1e-5)


def with_output_projection_biases(lm):
    """``lm`` with a random bias on every attention output projection (the family's own have none)."""
    with torch.no_grad():
        for layer in range(lm.n_layers):
            proj = lm.adapter.attn_out_proj(layer)
            proj.bias = torch.nn.Parameter(torch.empty(proj.out_features).uniform_(-0.5, 0.5))
    return lm


@pytest.mark.parametrize("family", ["granite", "olmo2"])
def test_a_projection_bias_is_scaled_and_normed_like_the_heads(family):
    """Granite multiplies each write by 0.5 here, OLMo 2 norms attention's output inside the branch: the
    projection's bias goes the same way as the heads, so heads plus bias is still the block's write."""
    lm = with_output_projection_biases(tiny_model(family, seed=1))
    target, distractor, _ = extreme_pair(lm)
    result = direct_logit_attribution(lm, PROMPT, target, distractor)
    assert result.total == pytest.approx(result.model_logit_diff, rel=1e-5)
    assert result.attn_bias.abs().min() > 1e-4
    assert torch.allclose(result.heads.sum(1) + result.attn_bias, result.attn, atol=1e-5)


def test_an_unsupported_norm_inside_the_branch_is_named():
    """A norm DLA cannot freeze (here: an RMSNorm that carries a bias) is refused in one line saying which."""
    lm = tiny_model("olmo2")
    norm = lm.adapter.attn_post_norm(0)
    norm.bias = torch.nn.Parameter(torch.zeros(lm.adapter.d_model))  # the RMSNorm's forward ignores it
    message = rf"^unsupported attention output norm {type(norm).__name__} for direct logit attribution$"
    with pytest.raises(LensError, match=message):
        direct_logit_attribution(lm, PROMPT, "a", "b")


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_a_wrong_linearisation_does_not_add_up(family):
    """The sum check can fail: without the frozen scale (or, for LayerNorm, the centring) it is off."""
    lm = tiny_model(family)
    target, distractor, _ = extreme_pair(lm)
    ids = encode_prompt(lm.tokenizer, PROMPT)
    found = capture_block_writes(lm, ids, len(ids) - 1)
    unembed = lm.adapter.unembed.weight
    u = (unembed[ord(target)] - unembed[ord(distractor)]).double()
    v, constant, scale = frozen_norm_direction(lm.adapter.final_norm, found.final, u)
    final = found.final.double()
    with torch.no_grad():
        real = lm.adapter.decode(found.final)
    real_diff = float(real[ord(target)] - real[ord(distractor)])
    assert float(final @ v) + constant == pytest.approx(real_diff, rel=1e-6)
    broken = v / scale if family == "llama" else v + (lm.adapter.final_norm.weight.double() * u * scale).mean()
    assert abs(float(final @ broken) + constant - real_diff) > 1e-3 * abs(real_diff)


def test_position_changes_the_attribution():
    lm = tiny_model("llama")
    first = direct_logit_attribution(lm, PROMPT, "a", "b", position=0)
    last = direct_logit_attribution(lm, PROMPT, "a", "b", position=-1)
    assert first.position == 0 and last.position == len(PROMPT) - 1
    assert first.total == pytest.approx(first.model_logit_diff, abs=1e-6)
    assert abs(first.model_logit_diff - last.model_logit_diff) > 1e-4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(target="ab", distractor="b"), "the target 'ab' is 2 tokens"),
        (dict(target="a", distractor="bc"), "the distractor 'bc' is 2 tokens"),
        (dict(target="a", distractor="b", position=11), "position 11 is out of range for a prompt of 11 tokens"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(LensError, match=message):
        direct_logit_attribution(tiny_model("llama"), PROMPT, **kwargs)


def test_cli_report_json_and_plot(monkeypatch, capsys, tmp_path):
    lm = tiny_model("gpt2")
    monkeypatch.setattr("lensref.commands.dla.load_model", lambda *a, **k: lm)
    out_json, out_png = tmp_path / "dla.json", tmp_path / "dla.png"
    assert (
        main(
            [
                "dla",
                PROMPT,
                "--target",
                "a",
                "--distractor",
                "b",
                "--top",
                "3",
                "--json",
                str(out_json),
                "--plot",
                str(out_png),
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "tiny-gpt2: logit a - logit b after 'd'"
    assert lines[2] == "largest components:" and lines[6] == "largest heads:" and len(lines) == 10
    data = json.loads(out_json.read_text())
    assert data["sum_of_components"] == pytest.approx(data["model_logit_diff"], abs=1e-6)
    assert len(data["heads"]) == lm.n_layers and len(data["heads"][0]) == 4
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bad_position_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr("lensref.commands.dla.load_model", lambda *a, **k: tiny_model("llama"))
    assert main(["dla", PROMPT, "--target", "a", "--distractor", "b", "--position", "-20"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: position -20 is out of range") and err.count("\n") == 1


@pytest.mark.real_model
def test_real_model_attention_23_writes_paris_over_london(real_lm):
    """Lesson claims: the parts add up to the real logit difference; the largest single writer of
    " Paris" over " London" is the attention block of layer 23, where head 4 writes half of it; the MLPs
    of layers 20-29 add most of the rest; heads 0 and 1 of layer 29 write large amounts that cancel."""
    result = direct_logit_attribution(real_lm, EIFFEL, EIFFEL_TARGET, EIFFEL_DISTRACTOR)
    assert abs(result.total - result.model_logit_diff) <= 1e-3
    assert result.model_logit_diff > 5
    top = result.top(1)[0]
    assert (top.kind, top.layer) == ("attn", 23) and top.value > 0.4 * result.model_logit_diff
    assert int(result.heads[23].argmax()) == 4 and float(result.heads[23, 4]) > 0.4 * float(result.attn[23])
    assert {(c.layer, c.head) for c in result.top(2, heads=True)} == {(29, 0), (29, 1)}
    assert abs(float(result.heads[29, 0] + result.heads[29, 1])) < 0.2 * float(result.heads[29, 1])
    assert float(result.mlp[20:].sum()) > 0.5 * result.model_logit_diff


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_block_components_split_the_residual_stream(family):
    """``BlockWrites.components()`` (embedding, then each attention and MLP write in turn) sums to the final residual,
    and each block's two writes add up to ``residual_deltas`` of the residual states (what the block added)."""
    lm = tiny_model(family)
    ids = encode_prompt(lm.tokenizer, PROMPT)
    writes = capture_block_writes(lm, ids, position=-1)
    parts = writes.components()
    L, d = writes.n_layers, writes.embed.shape[-1]
    assert parts.shape == (2 * L + 1, d)
    torch.testing.assert_close(parts[0], writes.embed)
    torch.testing.assert_close(parts[1::2], writes.attn)
    torch.testing.assert_close(parts[2::2], writes.mlp)
    torch.testing.assert_close(parts.sum(0), writes.final, rtol=1e-4, atol=1e-4)
    states = capture_residuals(lm, ids).states[:, 0, -1]
    deltas = residual_deltas(states)
    assert deltas.shape == (L + 1, d)
    torch.testing.assert_close(deltas[0], writes.embed, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(deltas[1:], writes.attn + writes.mlp, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(deltas.sum(0), states[-1], rtol=1e-4, atol=1e-4)
