"""Claims the lesson makes, checked on the real default model (SmolLM2-135M-Instruct)."""
import pytest
import torch

from lensref import capture_residuals, logit_lens
from lensref.tokens import encode_prompt

from lensref.examples import EIFFEL

pytestmark = pytest.mark.real_model


def test_default_model_shape(real_lm):
    cfg = real_lm.model.config
    assert (real_lm.adapter.family, real_lm.n_layers, real_lm.adapter.d_model, cfg.vocab_size) == ("llama", 30, 576, 49152)
    assert real_lm.model.lm_head.weight.data_ptr() == real_lm.model.model.embed_tokens.weight.data_ptr()


def test_prompt_tokens_have_no_bos(real_lm):
    result = logit_lens(real_lm, EIFFEL, top_k=1)
    assert result.tokens == ["The", " E", "iffel", " Tower", " is", " located", " in", " the", " city", " of"]


def test_paris_emerges_late(real_lm):
    result = logit_lens(real_lm, EIFFEL, target=" Paris")
    assert result.top1(result.n_layers) == " Paris"
    ranks = result.target_rank[:, -1].tolist()
    assert all(rank > 1 for rank in ranks[:20]), ranks
    first = result.first_top1_layer()
    assert first is not None and first >= 2 * result.n_layers // 3


def test_last_layer_matches_model_and_double_norm_does_not(real_lm):
    ids = encode_prompt(real_lm.tokenizer, EIFFEL)
    res = capture_residuals(real_lm, ids)
    assert (real_lm.adapter.decode(res.states[-1]) - res.logits).abs().max().item() <= 1e-4
    with torch.no_grad():
        out = real_lm.model(input_ids=ids[None], output_hidden_states=True)
        twice = real_lm.adapter.decode(out.hidden_states[-1])
    assert (twice - out.logits).abs().max().item() > 1.0
