"""The ONNX export of the logit lens (lensref.export): ONNX Runtime's numbers against lensref's, on tiny models."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from lensref import LensError, logit_lens, tiny_model
from lensref.export import build_lens_graph, dequantize, quantize_4bit, quantize_8bit

ort = pytest.importorskip("onnxruntime")

PROMPTS = [("hello world, the", "e"), ("Lenses read layers.", None)]


def run_graph(proto, token_ids, target_id, first=0):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {
        "input_ids": np.array(token_ids, dtype=np.int64),
        "target_id": np.array(target_id or 0, dtype=np.int64),
        "first": np.array(first, dtype=np.int64),
    }
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))


def assert_matches_lens(lm, proto, tol):
    for prompt, target in PROMPTS:
        ref = logit_lens(lm, prompt, target=target)
        out = run_graph(proto, ref.token_ids, ref.target_id)
        assert out["top_ids"].shape == tuple(ref.top_ids.shape)
        assert np.array_equal(out["top_ids"][..., 0], ref.top_ids[..., 0].numpy())
        assert np.abs(out["top_probs"] - ref.top_probs.numpy()).max() <= tol
        assert np.abs(out["entropy"] - ref.entropy.numpy()).max() <= 10 * tol
        assert np.abs(out["kl_to_final"] - ref.kl_to_final.numpy()).max() <= 10 * tol
        assert np.all(out["kl_to_final"][-1] == 0)
        if target is not None:
            assert np.abs(out["target_prob"] - ref.target_prob.numpy()).max() <= tol
            assert np.array_equal(out["target_rank"].astype(np.int64), ref.target_rank.numpy())


@pytest.mark.parametrize("family", ["llama", "mistral"])  # tied and untied unembeddings
def test_float32_graph_reproduces_the_lens(family):
    lm = tiny_model(family)
    proto, summary = build_lens_graph(lm, quantize=False)
    assert summary["n_layers"] == 3 and summary["max_weight_error"] == 0.0
    assert_matches_lens(lm, proto, tol=1e-5)


def test_a_chunk_of_positions_on_a_prefix_equals_the_whole_prompts_numbers():
    lm = tiny_model("llama")
    proto, _ = build_lens_graph(lm, quantize=False)
    ref = logit_lens(lm, "hello world, the", target="e")
    whole = run_graph(proto, ref.token_ids, ref.target_id)
    chunk = run_graph(proto, ref.token_ids[:9], ref.target_id, first=5)  # positions 5..8 only
    assert chunk["top_ids"].shape[:2] == (4, 4)
    assert np.array_equal(chunk["top_ids"], whole["top_ids"][:, 5:9])
    for name in ("top_probs", "entropy", "kl_to_final", "target_prob", "target_rank"):
        assert np.abs(chunk[name] - whole[name][:, 5:9]).max() <= 1e-5, name


def test_sliding_window_attention_is_masked_as_transformers_does():
    lm = tiny_model("mistral")
    lm.model.config.sliding_window = 4  # shorter than the prompts, so the window changes the lens's numbers
    proto, _ = build_lens_graph(lm, quantize=False)
    assert_matches_lens(lm, proto, tol=1e-5)


def snap_to_grid(lm):
    """Round every block matrix to 4 bits and the embeddings to 8 bits, as a GGUF file would hold them."""
    with torch.no_grad():
        for name, param in lm.model.named_parameters():
            if param.dim() == 2:
                quant = quantize_8bit if "embed" in name or "lm_head" in name else quantize_4bit
                param.copy_(torch.from_numpy(dequantize(quant(param.numpy()))))


def test_quantized_graph_is_exact_for_weights_on_the_grid():
    lm = tiny_model("llama", seed=3)
    snap_to_grid(lm)
    proto, summary = build_lens_graph(lm, quantize=True)
    assert summary["max_weight_error"] == 0.0
    assert_matches_lens(lm, proto, tol=1e-5)


def test_quantized_graph_of_off_grid_weights_is_close_not_exact():
    lm = tiny_model("llama", seed=3)
    proto, summary = build_lens_graph(lm, quantize=True)
    assert 0 < summary["max_weight_error"] < 0.01
    ref = logit_lens(lm, PROMPTS[0][0])
    out = run_graph(proto, ref.token_ids, None)
    assert 0 < np.abs(out["top_probs"] - ref.top_probs.numpy()).max() < 0.01


def test_4bit_round_trip_recovers_grid_values_exactly():
    rng = np.random.default_rng(0)
    q = rng.integers(0, 16, size=(6, 64)).astype(np.float32)
    q[:, ::32], q[:, 1::32] = 0, 15  # every block spans the full 4-bit range, as a GGUF Q4_1 block does
    scale = rng.uniform(0.001, 0.1, size=(6, 2, 1)).astype(np.float16).astype(np.float32)
    low = rng.uniform(-1, 0, size=(6, 2, 1)).astype(np.float16).astype(np.float32)
    w = (q.reshape(6, 2, 32) * scale + low).reshape(6, 64)
    quant = quantize_4bit(w)
    assert quant.q.dtype == np.uint8 and quant.q.shape == (6, 32) and quant.nbytes == 6 * 32 + 2 * 6 * 2 * 2
    assert np.array_equal(dequantize(quant), w)


def test_8bit_round_trip_and_rounding_error():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(4, 96)).astype(np.float32)
    quant = quantize_8bit(w)
    back = dequantize(quant)
    step = quant.scale.astype(np.float32).repeat(32, axis=1)
    assert np.all(np.abs(back - w) <= step / 2 + 1e-6)
    assert np.array_equal(dequantize(quantize_8bit(back)), back)


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(LensError, match="multiple of 32"):
        quantize_4bit(np.zeros((2, 40), dtype=np.float32))
    with pytest.raises(LensError, match="Llama-style models only"):
        build_lens_graph(tiny_model("gpt2"))
    with pytest.raises(LensError, match="top_k"):
        build_lens_graph(tiny_model("llama"), top_k=0)


def test_the_site_build_step_names_a_missing_npm_in_one_line(tmp_path, monkeypatch):
    """book/_ext/try_lens.py installs the page's runtime with npm; without npm the build stops with one clear line."""
    from sphinx.errors import ExtensionError

    path = Path(__file__).resolve().parents[1] / "book" / "_ext" / "try_lens.py"
    spec = importlib.util.spec_from_file_location("try_lens_ext", path)
    assert spec is not None and spec.loader is not None
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    monkeypatch.setattr(ext, "NODE_MODULES", tmp_path / "node_modules")  # nothing installed yet
    monkeypatch.setattr(ext, "STAMP", tmp_path / "node_modules" / "stamp")
    monkeypatch.setattr(ext.shutil, "which", lambda name: None)
    with pytest.raises(ExtensionError, match=r"^npm is not installed: .*\(apt install npm\)$"):
        ext.install_runtime()
