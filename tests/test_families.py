"""Every family of the adapters table on a tiny random model built from its transformers config: the lens is
exact at the last layer (the model's own logits, soft-cap and logit scale included), KL is what the logits say,
each variant runs or refuses in one line, and the three reading sites fit together."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from lensref import LensError, logit_lens, tiny_model
from lensref.adapters import adapter_for
from lensref.dla import direct_logit_attribution
from lensref.hooks import capture_block_writes
from lensref.logitdiff import logit_diff
from lensref.models import ALL_TINY_FAMILIES, TINY_FAMILIES
from lensref.patchscope import generate_patched, patchscope
from lensref.residual import capture_residuals
from lensref.tokens import encode_prompt
from lensref.tuned import TrainConfig, TunedLens, train_tuned_lens
from lensref.unembed import Unembed

NEW_FAMILIES = [f for f in ALL_TINY_FAMILIES if f not in TINY_FAMILIES]
PARALLEL = {"tiny-cohere", "tiny-falcon", "tiny-gptj"}  # attention and MLP read the same input: no mid site
SOFTCAPPED = {"gemma2"}
PROMPT = "The cat sat on"


@pytest.fixture(scope="module")
def models():
    return {family: tiny_model(family) for family in NEW_FAMILIES}


@pytest.fixture(params=NEW_FAMILIES)
def lm(request, models):
    return models[request.param]


def ids_of(lm, text=PROMPT):
    return encode_prompt(lm.tokenizer, text, lm.max_context)


def test_every_new_family_has_a_row_of_its_own(models):
    assert {lm.adapter.family for lm in models.values()} == {
        "gemma", "gemma2", "gemma3", "cohere", "granite", "phi3", "olmo2", "mixtral", "qwen2_moe", "falcon", "gptj",
        "opt", "bloom",
    }  # fmt: skip


def test_the_extra_unembedding_steps_are_read_from_the_config(models):
    assert models["cohere"].adapter.logit_scale == 0.25
    assert models["granite"].adapter.logit_scale == 1 / 4.0  # 1 / logits_scaling
    assert models["granite"].adapter.write_multiplier == 0.5
    assert models["gemma2"].adapter.softcap == 30.0
    assert models["gemma3"].adapter.softcap is None
    assert models["llama" if "llama" in models else "phi3"].adapter.logit_scale == 1.0


def test_last_layer_is_the_models_own_logits(lm):
    result = logit_lens(lm, PROMPT, keep_logits=True)
    own = lm.model(input_ids=ids_of(lm)[None]).logits[0]
    assert result.logits is not None
    assert torch.allclose(result.logits[-1], own, atol=1e-5, rtol=1e-5), lm.name
    assert float(result.kl_to_final[-1].abs().max()) < 1e-6


def test_kl_and_entropy_are_those_of_the_logits(lm):
    """The readout's shortcuts (KL through p @ W, the scale folded in, a second pass when soft-capped) against
    plain maths on the full logits."""
    result = logit_lens(lm, PROMPT, keep_logits=True)
    logp = torch.log_softmax(result.logits.double(), -1)
    final = logp[-1]
    kl = (final.exp() * (final - logp)).sum(-1)
    entropy = -(logp.exp() * logp).sum(-1)
    assert torch.allclose(result.kl_to_final.double(), kl, atol=2e-5), lm.name
    assert torch.allclose(result.entropy.double(), entropy, atol=2e-5), lm.name


def test_logit_diff_ends_at_the_models_difference(lm):
    result = logit_diff(lm, PROMPT, "a", "b")
    assert torch.allclose(result.diff[-1], result.model_logit_diff, atol=1e-5)
    assert not torch.allclose(result.diff[0], result.diff[-1])


def test_block_writes_add_up_to_the_final_residual(lm):
    writes = capture_block_writes(lm, ids_of(lm))
    rebuilt = writes.embed + writes.attn.sum(0) + writes.mlp.sum(0)
    assert torch.allclose(rebuilt, writes.final, atol=1e-5), lm.name


def test_dla_sums_to_the_real_difference_or_refuses(lm):
    if lm.adapter.family in SOFTCAPPED:
        with pytest.raises(LensError, match=r"^direct logit attribution needs logits linear .* soft-caps them"):
            direct_logit_attribution(lm, PROMPT, "a", "b")
        return
    result = direct_logit_attribution(lm, PROMPT, "a", "b")
    assert abs(result.total - result.model_logit_diff) < 1e-4, (lm.name, result.total, result.model_logit_diff)
    assert torch.allclose(result.heads.sum(1) + result.attn_bias, result.attn, atol=1e-5), lm.name
    assert result.reconstruction_error < 1e-5


def test_a_mixture_of_experts_is_one_mlp_component(models):
    for family in ("mixtral", "qwen2_moe"):
        lm = models[family]
        assert type(lm.adapter.mlp(0)).__name__.endswith("SparseMoeBlock")
        result = direct_logit_attribution(lm, PROMPT, "a", "b")
        assert result.mlp.shape == (lm.n_layers,)


def test_the_tuned_lens_trains_and_reads(lm):
    chunks = torch.randint(0, 256, (4, 16), generator=torch.Generator().manual_seed(0))
    config = TrainConfig(max_tokens=64, seq_len=16, steps=2, batch_tokens=16, cache_batch=4)
    lens, report = train_tuned_lens(lm, chunks, config, progress=False)
    assert isinstance(lens, TunedLens) and len(report.losses) == 2
    tuned = logit_lens(lm, PROMPT, translator=lens, keep_logits=True)
    plain = logit_lens(lm, PROMPT, keep_logits=True)
    states = capture_residuals(lm, ids_of(lm)).states[:, 0]
    assert torch.allclose(tuned.logits[1], Unembed.of(lm)(lens(1, states[1])), atol=1e-5)
    assert torch.allclose(tuned.logits[-1], plain.logits[-1])


def test_patchscope_patching_a_state_into_its_own_place_changes_nothing(lm):
    """The patch hook, the key/value cache and greedy decoding on each family: writing a state back where it was
    read leaves the continuation as the model's own."""
    ids = ids_of(lm)
    states = capture_residuals(lm, ids).states[:, 0, -1]  # [L+1, d]
    layers = [0, lm.n_layers // 2, lm.n_layers]
    patched, _ = generate_patched(lm, ids, len(ids) - 1, layers, states[layers], 3)
    zeroed, _ = generate_patched(lm, ids, len(ids) - 1, [1], torch.zeros_like(states[:1]) + 5.0, 3)
    plain = lm.model.generate(ids[None], max_new_tokens=3, do_sample=False, pad_token_id=0)[0, len(ids) :].tolist()
    assert patched == [plain] * len(layers), lm.name
    assert zeroed != [plain]  # a patch does reach the model
    read = patchscope(lm, PROMPT, layers=[0, lm.n_layers], n_tokens=2)  # the whole variant, identity prompt
    assert [r.layer for r in read.continuations] == [0, lm.n_layers] and all(r.tokens for r in read.continuations)


def test_sites_fit_together(lm):
    ids = ids_of(lm)
    pre = capture_residuals(lm, ids, site="pre").states[:, 0]
    post = capture_residuals(lm, ids, site="post").states[:, 0]
    L = lm.n_layers
    assert torch.allclose(post[:L], pre[1:], atol=1e-6)  # a block's output is the next block's input
    assert torch.equal(post[L], pre[L])
    if lm.name in PARALLEL:
        with pytest.raises(LensError, match=r"^site 'mid' needs a point between attention and the MLP.*parallel"):
            capture_residuals(lm, ids, site="mid")
        return
    mid = capture_residuals(lm, ids, site="mid").states[:, 0]
    writes = capture_block_writes(lm, ids)
    assert torch.allclose(mid[:L], pre[:L] + writes.attn, atol=1e-5), lm.name  # after attention's write
    assert torch.allclose(post[:L], mid[:L] + writes.mlp, atol=1e-5), lm.name  # then the MLP's
    assert torch.equal(mid[L], pre[L])


def test_a_sequential_falcon_has_a_mid_site(models):
    assert models["falcon"].adapter.mid_refusal() is not None
    assert models["falcon_sequential"].adapter.mid_refusal() is None


def test_a_model_without_a_final_norm_is_refused_in_one_line():
    config = AutoConfig.for_model(
        "opt", vocab_size=64, hidden_size=16, num_hidden_layers=1, ffn_dim=32, num_attention_heads=2,
        word_embed_proj_dim=16, do_layer_norm_before=False,
    )  # fmt: skip
    with pytest.raises(LensError, match=r"^OPTForCausalLM has no final norm \(a post-norm opt model"):
        adapter_for(AutoModelForCausalLM.from_config(config))


def test_a_tight_soft_cap_is_still_exact():
    """With the cap at 0.5 logit the tanh bends every logit, so the readout's linear KL shortcut would be wrong: its
    own pass over the logits must give the KL of the logits the model itself produces."""
    lm = tiny_model("gemma2", seed=3)
    lm.model.config.final_logit_softcapping = 0.5
    result = logit_lens(lm, PROMPT, keep_logits=True)
    own = lm.model(input_ids=ids_of(lm)[None]).logits[0]
    assert float(own.abs().max()) < 0.5 and torch.allclose(result.logits[-1], own, atol=1e-6)
    logp = torch.log_softmax(result.logits.double(), -1)
    kl = (logp[-1].exp() * (logp[-1] - logp)).sum(-1)
    assert torch.allclose(result.kl_to_final.double(), kl, atol=1e-6)
    assert float(kl[0].max()) > 1e-4  # the layers do differ
