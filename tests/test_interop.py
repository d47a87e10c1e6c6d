"""Models from the tools people already use: a TransformerLens ``TransformerBridge`` and an nnsight
``LanguageModel`` (both installed from the registry) and a bare transformers model are read by every lens function
and agree with lensref on the same weights, and with each tool's own hooks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lensref import LensError, logit_lens, tiny_model
from lensref.dla import direct_logit_attribution
from lensref.interop import as_loaded_model
from lensref.logitdiff import logit_diff
from lensref.patchscope import patchscope
from lensref.residual import capture_residuals
from lensref.tuned import TrainConfig, train_tuned_lens

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from byte_tokenizer import byte_tokenizer, save_tiny  # noqa: E402

PROMPT = "The cat sat on the"


@pytest.fixture(scope="module")
def lm():
    return tiny_model("llama")


@pytest.fixture(scope="module")
def folder(lm, tmp_path_factory):
    return save_tiny(lm, tmp_path_factory.mktemp("interop") / "tiny-llama")


@pytest.fixture(scope="module")
def bridge(lm, folder):
    from transformer_lens.model_bridge import TransformerBridge

    return TransformerBridge.boot_transformers(str(folder), hf_model=lm.model, tokenizer=byte_tokenizer(), device="cpu")


@pytest.fixture(scope="module")
def language_model(lm):
    import warnings

    from nnsight import LanguageModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nnsight 0.8 calls LanguageModel deprecated in favour of TransformersModel
        return LanguageModel(lm.model, tokenizer=byte_tokenizer())


def ids(text=PROMPT):
    return torch.tensor([list(text.encode())])


@pytest.fixture(params=["bridge", "language_model", "transformers"])
def foreign(request, lm):
    if request.param == "transformers":
        return lm.model, byte_tokenizer()
    return request.getfixturevalue(request.param), None


def test_the_foreign_model_is_read_on_the_same_modules(foreign, lm):
    model, tokenizer = foreign
    wrapped = as_loaded_model(model, tokenizer)
    assert wrapped.model is lm.model and wrapped.adapter.family == "llama"


def test_every_lens_function_agrees_with_lensref(foreign, lm):
    model, tokenizer = foreign
    wrapped = as_loaded_model(model, tokenizer) if tokenizer is not None else model
    for site in ("pre", "mid", "post"):
        theirs, ours = (
            logit_lens(wrapped, PROMPT, keep_logits=True, site=site),
            logit_lens(lm, PROMPT, keep_logits=True, site=site),
        )
        assert theirs.token_ids == ours.token_ids
        assert torch.allclose(theirs.logits, ours.logits, atol=1e-5)
    assert torch.allclose(logit_diff(wrapped, PROMPT, "a", "b").diff, logit_diff(lm, PROMPT, "a", "b").diff, atol=1e-5)
    dla = direct_logit_attribution(wrapped, PROMPT, "a", "b")
    assert abs(dla.total - direct_logit_attribution(lm, PROMPT, "a", "b").model_logit_diff) < 1e-4
    read = patchscope(wrapped, PROMPT, layers=[1], n_tokens=2)
    same = patchscope(lm, PROMPT, layers=[1], n_tokens=2).continuations[0]
    assert read.continuations[0].tokens == same.tokens
    assert read.continuations[0].first_prob == pytest.approx(same.first_prob, abs=1e-6)
    chunks = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(0))
    config = TrainConfig(max_tokens=24, seq_len=12, steps=1, batch_tokens=8, cache_batch=2)
    lens, _ = train_tuned_lens(wrapped, chunks, config, progress=False)
    assert lens.n_layers == lm.n_layers


def test_the_bridge_states_are_its_own_hook_points(bridge, lm):
    """lensref's pre / mid / post rows are TransformerLens's hook_resid_pre / hook_resid_mid / hook_resid_post."""
    logits, cache = bridge.run_with_cache(ids())
    wrapped = as_loaded_model(bridge)
    for site, hook in (("pre", "hook_resid_pre"), ("mid", "hook_resid_mid"), ("post", "hook_resid_post")):
        states = capture_residuals(wrapped, ids()[0], site=site).states[:, 0]
        for layer in range(lm.n_layers):
            assert torch.allclose(states[layer], cache[f"blocks.{layer}.{hook}"][0], atol=1e-6), (site, layer)
    lens = logit_lens(bridge, PROMPT, keep_logits=True)
    assert torch.allclose(lens.logits[-1], logits[0], atol=1e-5)


def test_the_nnsight_states_are_its_own_trace(language_model, lm):
    saved = []
    with language_model.trace(ids()):
        for layer in range(lm.n_layers):
            saved.append(language_model.model.layers[layer].input.save())
        output = language_model.output.save()
    states = capture_residuals(as_loaded_model(language_model), ids()[0]).states[:, 0]
    for layer in range(lm.n_layers):
        assert torch.allclose(states[layer], saved[layer][0], atol=1e-6), layer
    lens = logit_lens(language_model, PROMPT, keep_logits=True)
    assert torch.allclose(lens.logits[-1], output.logits[0], atol=1e-5)


def test_a_bridge_in_compatibility_mode_is_refused(folder):
    from transformer_lens.model_bridge import TransformerBridge

    other = tiny_model("llama", seed=1)
    compat = TransformerBridge.boot_transformers(
        str(folder), hf_model=other.model, tokenizer=byte_tokenizer(), device="cpu"
    )
    compat.enable_compatibility_mode()
    with pytest.raises(LensError, match=r"^this TransformerBridge is in compatibility mode: it runs folded"):
        logit_lens(compat, PROMPT)


def test_transformer_lens_4_has_no_hooked_transformer():
    """Why only the bridge is read: TransformerLens 4 removed HookedTransformer (its own re-implementation)."""
    import transformer_lens

    with pytest.raises(ImportError, match="HookedTransformer"):
        transformer_lens.HookedTransformer  # noqa: B018


def test_a_bare_model_without_a_tokenizer_and_other_objects_are_refused(lm):
    with pytest.raises(LensError, match=r"^LlamaForCausalLM carries no tokenizer; pass one"):
        logit_lens(lm.model, PROMPT)
    with pytest.raises(LensError, match=r"^cannot read a str: pass a lensref LoadedModel, a transformers causal LM"):
        logit_lens("gpt2", PROMPT)


def test_lensref_imports_neither_tool_until_asked():
    code = "import sys, lensref, lensref.lens, lensref.interop; print(sorted({'transformer_lens', 'nnsight'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
