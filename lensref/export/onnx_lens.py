"""The logit lens of a Llama-style model as one ONNX graph, for ONNX Runtime (Python, or Web in the browser).

Inputs: ``input_ids`` (int64 ``[T]``), ``target_id`` (int64 scalar; any id when no target is wanted) and ``first``
(int64 scalar: the first position to read; 0 for all). The graph runs the model over all ``T`` tokens, stacks the residual states ``[L+1, T, d]`` exactly as :func:`lensref.residual.capture_residuals`
defines them (layer 0 = the embeddings, layer ``l`` = what block ``l`` reads, layer ``L`` = the last block's output
before the final norm), and decodes every one from position ``first`` on with the model's final norm and tied or untied unembedding, as
:func:`lensref.logit_lens` does. Outputs, indexed ``[layer, position]``:

``top_ids`` (int64, ``[..., k]``), ``top_probs``, ``entropy`` (nats), ``kl_to_final`` (KL(final || layer), nats),
``target_prob`` and ``target_rank`` (1 = top). A long prompt is read in chunks of positions (``first`` = 0, 16, 32,
... on growing prefixes of the prompt): the model is causal, so a chunk's numbers equal the whole prompt's, and the
``[L+1, positions, vocab]`` tensors of one run stay small enough for the browser's memory.

Weights are stored block-quantized (:mod:`lensref.export.quantize`: 4-bit for the blocks' matrices, 8-bit for the
embedding, which the lookup and the unembedding share) and dequantized by plain ONNX operators on constants, which
ONNX Runtime folds into float32 weights once when it loads the model; everything after runs in float32. With
``quantize=False`` the weights are stored as float32 (for tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from ..errors import LensError
from ..models import LoadedModel
from .quantize import BLOCK, Quantized, dequantize, quantize_4bit, quantize_8bit

OPSET = 18
OUTPUTS = ("top_ids", "top_probs", "entropy", "kl_to_final", "target_prob", "target_rank")


@dataclass
class _Graph:
    """Nodes and initializers being collected, with fresh names."""

    nodes: list[onnx.NodeProto] = field(default_factory=list)
    inits: list[onnx.TensorProto] = field(default_factory=list)
    count: int = 0
    weight_bytes: int = 0
    max_weight_error: float = 0.0

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        """Add a node with one output; return the output's name."""
        return self.ops(op_type, *inputs, n_out=1, **attrs)[0]

    def ops(self, op_type: str, *inputs: str, n_out: int, **attrs: Any) -> list[str]:
        """Add a node with ``n_out`` outputs; return their names."""
        self.count += 1
        outs = [f"{op_type.lower()}_{self.count}_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=outs[0], **attrs))
        return outs

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        self.weight_bytes += value.nbytes
        return name

    def ints(self, *values: int) -> str:
        self.count += 1
        return self.const(f"ints_{self.count}", np.array(values, dtype=np.int64))

    def scalar(self, value: float) -> str:
        self.count += 1
        return self.const(f"f_{self.count}", np.array(value, dtype=np.float32))


def _weight(g: _Graph, name: str, w: torch.Tensor, bits: int | None) -> str:
    """A float32 ``[out, in]`` weight in the graph: stored as it is, or quantized and dequantized by operators."""
    array = w.detach().float().cpu().numpy()
    if bits is None:
        return g.const(name, array)
    quant: Quantized = quantize_4bit(array) if bits == 4 else quantize_8bit(array)
    g.max_weight_error = max(g.max_weight_error, float(np.abs(dequantize(quant) - array).max()))
    out, inner = quant.shape
    q = g.const(name + ".q", quant.q)
    if bits == 4:  # two values per byte, low nibble first
        low_nibble = g.op("BitwiseAnd", q, g.const(name + ".mask", np.array(15, dtype=np.uint8)))
        high_nibble = g.op("BitShift", q, g.const(name + ".shift", np.array(4, dtype=np.uint8)), direction="RIGHT")
        pairs = g.op(
            "Concat", g.op("Unsqueeze", low_nibble, g.ints(-1)), g.op("Unsqueeze", high_nibble, g.ints(-1)), axis=-1
        )
        q = pairs
    values = g.op("Reshape", g.op("Cast", q, to=TensorProto.FLOAT), g.ints(out, inner // BLOCK, BLOCK))
    scale = g.op("Cast", g.const(name + ".scale", quant.scale[..., None]), to=TensorProto.FLOAT)
    values = g.op("Mul", values, scale)
    if quant.low is not None:
        values = g.op("Add", values, g.op("Cast", g.const(name + ".low", quant.low[..., None]), to=TensorProto.FLOAT))
    return g.op("Reshape", values, g.ints(out, inner))


def _linear(g: _Graph, x: str, module: Any, name: str, bits: int | None) -> str:
    """``x @ W.T`` for an ``nn.Linear`` without bias."""
    if getattr(module, "bias", None) is not None:
        raise LensError(f"exporting to ONNX supports bias-free linear layers only; {name} has a bias")
    return g.op("MatMul", x, g.op("Transpose", _weight(g, name, module.weight, bits), perm=[1, 0]))


def _rms_norm(g: _Graph, x: str, norm: Any, name: str) -> str:
    """Llama's RMSNorm: ``x / sqrt(mean(x^2) + eps) * weight`` over the last axis."""
    eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", None))
    if eps is None or getattr(norm, "bias", None) is not None:
        raise LensError(f"exporting to ONNX supports RMSNorm only; {name} is a {type(norm).__name__}")
    mean_square = g.op("ReduceMean", g.op("Mul", x, x), g.ints(-1), keepdims=1)
    inv = g.op("Reciprocal", g.op("Sqrt", g.op("Add", mean_square, g.scalar(float(eps)))))
    weight = g.const(name + ".weight", norm.weight.detach().float().cpu().numpy())
    return g.op("Mul", g.op("Mul", x, inv), weight)


def _rotate(g: _Graph, x: str, cos: str, sin: str, half: int) -> str:
    """Rotary embedding ``x * cos + rotate_half(x) * sin`` on ``x [heads, T, head_dim]``."""
    x1 = g.op("Slice", x, g.ints(0), g.ints(half), g.ints(-1))
    x2 = g.op("Slice", x, g.ints(half), g.ints(2 * half), g.ints(-1))
    rotated = g.op("Concat", g.op("Neg", x2), x1, axis=-1)
    return g.op("Add", g.op("Mul", x, cos), g.op("Mul", rotated, sin))


def _heads(g: _Graph, x: str, n_heads: int, head_dim: int) -> str:
    """``[T, n_heads * head_dim]`` -> ``[n_heads, T, head_dim]``."""
    return g.op("Transpose", g.op("Reshape", x, g.ints(0, n_heads, head_dim)), perm=[1, 0, 2])


def _check_model(lm: LoadedModel) -> tuple[Any, Any]:
    model: Any = lm.model
    cfg = model.config
    if getattr(cfg, "model_type", None) not in ("llama", "mistral"):
        raise LensError(f"exporting to ONNX supports Llama-style models only, not {getattr(cfg, 'model_type', '?')!r}")
    if getattr(cfg, "hidden_act", "silu") != "silu":
        raise LensError(f"exporting to ONNX supports SiLU MLPs only, not {cfg.hidden_act!r}")
    if lm.adapter.logit_scale != 1.0 or lm.adapter.softcap is not None:
        raise LensError("exporting to ONNX does not support scaled or soft-capped logits")
    return model.model, cfg


def build_lens_graph(lm: LoadedModel, top_k: int = 5, quantize: bool = True) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """The ONNX model of ``lm``'s logit lens and a summary (weight bytes, largest weight error after quantizing)."""
    inner, cfg = _check_model(lm)
    vocab, d = inner.embed_tokens.weight.shape
    if not 1 <= top_k <= vocab:
        raise LensError(f"top_k must be between 1 and the vocabulary size {vocab}, got {top_k}")
    n_heads, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or d // n_heads
    g = _Graph()
    block_bits, embed_bits = (4, 8) if quantize else (None, None)

    embed = _weight(g, "embed", inner.embed_tokens.weight, embed_bits)
    unembed_module = lm.adapter.unembed
    tied = unembed_module.weight.data_ptr() == inner.embed_tokens.weight.data_ptr()
    if getattr(unembed_module, "bias", None) is not None:
        raise LensError("exporting to ONNX supports an unembedding without bias only")
    unembed = embed if tied else _weight(g, "unembed", unembed_module.weight, embed_bits)

    x = g.op("Gather", embed, "input_ids", axis=0)  # [T, d]
    # Rotary tables [T, head_dim] from the model's own inverse frequencies, in float32 as transformers computes them.
    rotary = inner.rotary_emb
    seq = g.op("Shape", "input_ids")
    positions = g.op("Cast", g.op("Range", g.ints(0), g.op("Squeeze", seq, g.ints(0)), g.ints(1)), to=TensorProto.FLOAT)
    inv_freq = g.const("inv_freq", rotary.inv_freq.detach().float().cpu().numpy()[None, :])
    freqs = g.op("Mul", g.op("Unsqueeze", positions, g.ints(1)), inv_freq)
    angles = g.op("Concat", freqs, freqs, axis=-1)
    scaling = g.scalar(float(getattr(rotary, "attention_scaling", 1.0)))
    cos, sin = g.op("Mul", g.op("Cos", angles), scaling), g.op("Mul", g.op("Sin", angles), scaling)
    # Causal mask [T, T]: -inf above the diagonal (and, with a sliding window w, where query - key >= w).
    index = g.op("Range", g.ints(0), g.op("Squeeze", seq, g.ints(0)), g.ints(1))
    query, key = g.op("Unsqueeze", index, g.ints(1)), g.op("Unsqueeze", index, g.ints(0))
    hidden = g.op("Greater", key, query)
    window = getattr(cfg, "sliding_window", None)
    if window:
        hidden = g.op("Or", hidden, g.op("Greater", g.op("Sub", query, key), g.ints(int(window) - 1)))
    mask = g.op("Where", hidden, g.scalar(float("-inf")), g.scalar(0.0))

    states = [x]
    for layer, block in enumerate(inner.layers):
        attn, mlp, p = block.self_attn, block.mlp, f"layers.{layer}"
        h = _rms_norm(g, x, block.input_layernorm, p + ".input_norm")
        q = _heads(g, _linear(g, h, attn.q_proj, p + ".q", block_bits), n_heads, head_dim)
        k = _heads(g, _linear(g, h, attn.k_proj, p + ".k", block_bits), n_kv, head_dim)
        v = _heads(g, _linear(g, h, attn.v_proj, p + ".v", block_bits), n_kv, head_dim)
        q, k = _rotate(g, q, cos, sin, head_dim // 2), _rotate(g, k, cos, sin, head_dim // 2)
        if n_kv != n_heads:  # grouped-query attention: query head i reads key/value head i // (n_heads / n_kv)
            shape = g.ints(1, n_heads // n_kv, 1, 1)
            k = g.op("Reshape", g.op("Tile", g.op("Unsqueeze", k, g.ints(1)), shape), g.ints(n_heads, -1, head_dim))
            v = g.op("Reshape", g.op("Tile", g.op("Unsqueeze", v, g.ints(1)), shape), g.ints(n_heads, -1, head_dim))
        scores = g.op("Mul", g.op("MatMul", q, g.op("Transpose", k, perm=[0, 2, 1])), g.scalar(float(attn.scaling)))
        weights = g.op("Softmax", g.op("Add", scores, mask), axis=-1)
        mixed = g.op(
            "Reshape", g.op("Transpose", g.op("MatMul", weights, v), perm=[1, 0, 2]), g.ints(0, n_heads * head_dim)
        )
        x = g.op("Add", x, _linear(g, mixed, attn.o_proj, p + ".o", block_bits))
        h = _rms_norm(g, x, block.post_attention_layernorm, p + ".post_attention_norm")
        gate = _linear(g, h, mlp.gate_proj, p + ".gate", block_bits)
        up = _linear(g, h, mlp.up_proj, p + ".up", block_bits)
        act = g.op("Mul", g.op("Mul", gate, g.op("Sigmoid", gate)), up)
        x = g.op("Add", x, _linear(g, act, mlp.down_proj, p + ".down", block_bits))
        states.append(x)

    # The lens: every state through the final norm and the unembedding.
    stack = g.op("Concat", *[g.op("Unsqueeze", s, g.ints(0)) for s in states], axis=0)  # [L+1, T, d]
    first = g.op("Unsqueeze", "first", g.ints(0))
    stack = g.op("Slice", stack, first, g.ints(2**62), g.ints(1))  # positions first..T-1
    normed = _rms_norm(g, stack, inner.norm, "final_norm")
    logits = g.op("MatMul", normed, g.op("Transpose", unembed, perm=[1, 0]))  # [L+1, T, V]
    top_z, top_ids = g.ops("TopK", logits, g.ints(top_k), axis=-1, n_out=2)
    lse = g.op("ReduceLogSumExp", logits, g.ints(-1), keepdims=1)
    logp = g.op("Sub", logits, lse)
    probs = g.op("Exp", logp)
    entropy = g.op("Neg", g.op("ReduceSum", g.op("Mul", probs, logp), g.ints(-1), keepdims=0))
    n_layers = len(states) - 1
    last = g.ints(n_layers), g.ints(n_layers + 1), g.ints(0)
    # KL(final || layer) = sum_v p_final (log p_final - log p_layer): summing these terms, not two cross-entropies
    # of ~10 nats each, keeps float32's rounding small next to the KL itself.
    final_p, final_logp = g.op("Slice", probs, *last), g.op("Slice", logp, *last)  # [1, T, V]
    gap = g.op("Mul", final_p, g.op("Sub", final_logp, logp))
    kl = g.op("Max", g.op("ReduceSum", gap, g.ints(-1), keepdims=0), g.scalar(0.0))
    target_z = g.op("Unsqueeze", g.op("Gather", logits, "target_id", axis=-1), g.ints(-1))  # [L+1, T, 1]
    above = g.op(
        "ReduceSum", g.op("Cast", g.op("Greater", logits, target_z), to=TensorProto.FLOAT), g.ints(-1), keepdims=0
    )
    outputs = {
        "top_ids": g.op("Identity", top_ids),
        "top_probs": g.op("Exp", g.op("Sub", top_z, lse)),
        "entropy": entropy,
        "kl_to_final": kl,
        "target_prob": g.op("Squeeze", g.op("Exp", g.op("Sub", target_z, lse)), g.ints(-1)),
        "target_rank": g.op("Add", above, g.scalar(1.0)),
    }
    for name, value in outputs.items():
        g.nodes.append(helper.make_node("Identity", [value], [name]))
    grid = ["layers", "T"]
    graph = helper.make_graph(
        g.nodes,
        "logit_lens",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["T"]),
            helper.make_tensor_value_info("target_id", TensorProto.INT64, []),
            helper.make_tensor_value_info("first", TensorProto.INT64, []),
        ],
        [
            helper.make_tensor_value_info("top_ids", TensorProto.INT64, [*grid, top_k]),
            helper.make_tensor_value_info("top_probs", TensorProto.FLOAT, [*grid, top_k]),
            *[helper.make_tensor_value_info(n, TensorProto.FLOAT, grid) for n in OUTPUTS[2:]],
        ],
        g.inits,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="lensref")
    proto.ir_version = 8
    summary = {
        "n_layers": n_layers,
        "vocab_size": int(vocab),
        "top_k": top_k,
        "quantized": quantize,
        "weight_bytes": g.weight_bytes,
        "max_weight_error": g.max_weight_error,
    }
    return proto, summary
