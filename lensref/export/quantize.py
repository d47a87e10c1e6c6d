"""Block quantization of weight matrices for the browser's copy of the model.

Both forms quantize each row of a ``[out, in]`` matrix in blocks of 32 consecutive inputs, the layout of the GGUF
file the default model ships as, so weights that came from such a file are recovered exactly:

- :func:`quantize_4bit` (asymmetric, like GGUF's Q4_1): ``w = scale * q + low`` with ``q`` in 0..15, two per byte;
- :func:`quantize_8bit` (symmetric, like GGUF's Q8_0): ``w = scale * q`` with ``q`` in -127..127.

Scales and lows are stored as float16 (GGUF's own precision). Any other weights get plain round-to-nearest
quantization. The ``dequantize_*`` functions compute in float32 exactly as the ONNX graph does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import LensError

BLOCK = 32


@dataclass(frozen=True)
class Quantized:
    """A ``[out, in]`` matrix as integers ``q`` plus per-block float16 ``scale`` (and ``low`` for 4-bit)."""

    q: np.ndarray  # 4-bit: uint8 [out, in / 2], two values per byte (low nibble first); 8-bit: int8 [out, in]
    scale: np.ndarray  # float16 [out, in / BLOCK]
    low: np.ndarray | None  # float16 [out, in / BLOCK], 4-bit only
    shape: tuple[int, int]

    @property
    def nbytes(self) -> int:
        """The stored size in bytes: the codes, their scales and the 4-bit format's low-precision part."""
        return self.q.nbytes + self.scale.nbytes + (0 if self.low is None else self.low.nbytes)


def _blocks(w: np.ndarray) -> np.ndarray:
    out, inner = w.shape
    if inner % BLOCK:
        raise LensError(f"cannot quantize a {out}x{inner} weight: its input width is not a multiple of {BLOCK}")
    return w.astype(np.float32).reshape(out, inner // BLOCK, BLOCK)


def quantize_4bit(w: np.ndarray) -> Quantized:
    """Asymmetric 4-bit: per block, ``low`` = the block's minimum and ``scale`` = its range / 15."""
    blocks = _blocks(w)
    low = blocks.min(-1).astype(np.float16)
    scale = ((blocks.max(-1) - low.astype(np.float32)) / 15).astype(np.float16)
    safe = np.where(scale == 0, 1, scale.astype(np.float32))
    q = np.rint((blocks - low.astype(np.float32)[..., None]) / safe[..., None]).clip(0, 15).astype(np.uint8)
    q = q.reshape(w.shape[0], -1)
    packed = q[:, 0::2] | (q[:, 1::2] << 4)
    return Quantized(q=packed, scale=scale, low=low, shape=(int(w.shape[0]), int(w.shape[1])))


def quantize_8bit(w: np.ndarray) -> Quantized:
    """Symmetric 8-bit: per block, ``scale`` = the block's largest magnitude / 127."""
    blocks = _blocks(w)
    scale = (np.abs(blocks).max(-1) / 127).astype(np.float16)
    safe = np.where(scale == 0, 1, scale.astype(np.float32))
    q = np.rint(blocks / safe[..., None]).clip(-127, 127).astype(np.int8).reshape(w.shape)
    return Quantized(q=q, scale=scale, low=None, shape=(int(w.shape[0]), int(w.shape[1])))


def dequantize(quant: Quantized) -> np.ndarray:
    """The float32 ``[out, in]`` matrix the graph computes from ``quant``."""
    out, inner = quant.shape
    if quant.low is None:
        q = quant.q.astype(np.float32)
    else:
        q = np.empty((out, inner), dtype=np.float32)
        q[:, 0::2], q[:, 1::2] = quant.q & 15, quant.q >> 4
    blocks = q.reshape(out, inner // BLOCK, BLOCK) * quant.scale.astype(np.float32)[..., None]
    if quant.low is not None:
        blocks = blocks + quant.low.astype(np.float32)[..., None]
    return blocks.reshape(out, inner)
