"""The logit lens on tiny random models of every supported family."""

import math

import pytest
import torch

from lensref import LensError, adapter_for, capture_residuals, logit_lens, read_states, tiny_model
from lensref.adapters import FAMILIES


def test_every_family_has_a_tiny_model(tiny_lm):
    assert tiny_lm.adapter.family in {f.family for f in FAMILIES}
    assert tiny_lm.n_layers == 3


def test_last_layer_lens_reproduces_model_logits(tiny_lm):
    ids = torch.tensor([3, 14, 15, 92, 65, 35])
    res = capture_residuals(tiny_lm, ids)
    assert res.states.shape == (4, 1, 6, 32)
    lens_logits = tiny_lm.adapter.decode(res.states[-1])
    assert (lens_logits - res.logits).abs().max().item() <= 1e-4


def test_layer_zero_is_the_embedding_output(tiny_lm):
    ids = torch.tensor([7, 8, 9])
    res = capture_residuals(tiny_lm, ids)
    emb = tiny_lm.adapter.embed(ids)
    if tiny_lm.adapter.family == "gpt2":  # GPT-2 adds learned position embeddings
        emb = emb + tiny_lm.model.transformer.wpe(torch.arange(3))
    assert torch.allclose(res.states[0, 0], emb, atol=1e-6)


def test_renormalizing_transformers_last_hidden_state_is_wrong(tiny_lm):
    """transformers' last hidden_states entry is already final-normed; norming it again changes the logits."""
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        out = tiny_lm.model(input_ids=ids, output_hidden_states=True)
        already_normed = out.hidden_states[-1]
        once = tiny_lm.adapter.unembed(already_normed)
        twice = tiny_lm.adapter.decode(already_normed)
    assert (once - out.logits).abs().max().item() <= 1e-4
    assert (twice - out.logits).abs().max().item() > 1e-3


def test_result_statistics_are_consistent(tiny_lm):
    result = logit_lens(tiny_lm, "hello there", target="e", top_k=4, keep_logits=True)
    L, T = tiny_lm.n_layers, len("hello there")
    assert result.entropy.shape == (L + 1, T) and result.top_ids.shape == (L + 1, T, 4)
    logp = torch.log_softmax(result.logits, -1)
    p = logp.exp()
    assert torch.allclose(result.entropy, -(p * logp).sum(-1), atol=1e-4)
    kl = (p[-1] * (logp[-1] - logp)).sum(-1)
    assert torch.allclose(result.kl_to_final, kl.clamp_min(0), atol=1e-4)
    assert result.kl_to_final[-1].abs().max().item() < 1e-5
    top_p, top_i = p.topk(4, -1)
    assert torch.equal(result.top_ids, top_i)
    assert torch.allclose(result.top_probs, top_p, atol=1e-6)
    target = ord("e")
    assert torch.allclose(result.target_prob, p[..., target], atol=1e-6)
    expected_rank = (result.logits > result.logits[..., target : target + 1]).sum(-1) + 1
    assert torch.equal(result.target_rank, expected_rank)


def test_chunk_size_does_not_change_results():
    lm = tiny_model("gpt2")
    a = logit_lens(lm, "chunked decoding", target="d", chunk_rows=7)
    b = logit_lens(lm, "chunked decoding", target="d", chunk_rows=10_000)
    assert torch.equal(a.top_ids, b.top_ids)
    assert torch.allclose(a.entropy, b.entropy, atol=1e-5)
    assert torch.allclose(a.kl_to_final, b.kl_to_final, atol=1e-5)


def test_full_logits_only_when_asked():
    lm = tiny_model("llama")
    assert logit_lens(lm, "abc").logits is None
    assert logit_lens(lm, "abc", keep_logits=True).logits.shape == (4, 3, 512)


def test_translator_is_applied_per_layer_but_never_to_the_output():
    lm = tiny_model("llama")
    seen = []

    def translator(layer, h):
        seen.append((layer, h.shape[0]))
        return h * 0 if layer == 0 else h + 1

    res = capture_residuals(lm, torch.tensor([1, 2, 3]))
    stats, _ = read_states(lm, res.states[:, 0], translator=translator, chunk_rows=5)
    plain, _ = read_states(lm, res.states[:, 0], chunk_rows=5)
    assert sorted({layer for layer, _ in seen}) == [0, 1, 2]  # layer 3 is the model's own output
    assert sum(n for _, n in seen) == 3 * 3
    assert torch.equal(stats.top_ids[-1], plain.top_ids[-1])
    assert not torch.allclose(stats.entropy[1], plain.entropy[1])
    # a zero state decodes to the unembedding of norm(0): the same distribution at every position of layer 0
    assert torch.allclose(stats.entropy[0], stats.entropy[0, :1].expand(3), atol=1e-5)
    assert math.isfinite(float(stats.kl_to_final[0].sum()))


def test_json_form(tiny_lm):
    d = logit_lens(tiny_lm, "xy", target="y", top_k=3).to_dict()
    assert set(d) == {"model", "tokens", "target", "layers"}
    assert d["tokens"] == ["x", "y"] and d["target"] == {"text": "y", "id": ord("y")}
    assert [layer["layer"] for layer in d["layers"]] == list(range(tiny_lm.n_layers + 1))
    pos = d["layers"][-1]["positions"][1]
    assert set(pos) == {"top", "entropy", "kl_to_final", "target_prob", "target_rank"}
    assert len(pos["top"]) == 3 and set(pos["top"][0]) == {"token", "id", "prob"}
    assert isinstance(pos["target_rank"], int) and pos["kl_to_final"] == pytest.approx(0, abs=1e-5)


def test_unsupported_model_is_named():
    class Weird(torch.nn.Module):
        config = type("C", (), {"model_type": "bert"})()

    with pytest.raises(LensError, match=r"unsupported model Weird \(model_type='bert'\); supported families: llama"):
        adapter_for(Weird())


def test_bad_prompt_and_target():
    lm = tiny_model("llama")
    with pytest.raises(LensError, match="prompt is empty"):
        logit_lens(lm, "   ")
    with pytest.raises(LensError, match=r"target 'ab' is 2 tokens \('a' \+ 'b'\)"):
        logit_lens(lm, "hello", target="ab")
    with pytest.raises(LensError, match="300 tokens long; this model reads at most 256"):
        logit_lens(lm, "x" * 300)


def test_states_only_capture_stops_before_the_logits(tiny_lm):
    ids = torch.tensor([[4, 5, 6], [7, 8, 9]])
    full = capture_residuals(tiny_lm, ids)
    only = capture_residuals(tiny_lm, ids, states_only=True)
    assert only.logits is None and full.logits.shape == (2, 3, 512)
    assert torch.equal(only.states, full.states)


def test_format_table_is_a_library_name():
    """Notebooks print a result through ``lensref.format_table``; the CLI's old import path is the same function."""
    import lensref
    from lensref.commands import lens as lens_command

    result = logit_lens(tiny_model("llama"), "xyz", target="y")
    assert lensref.format_table(result) == result.format_table()
    assert lensref.format_table(result, 0) == result.format_table(0) != result.format_table()
    assert lens_command.format_table is lensref.format_table
