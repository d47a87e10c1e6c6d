"""Exporting the logit lens for other runtimes: one ONNX graph (model + lens statistics) for ONNX Runtime Web."""

from .bundle import Bundle, default_bundle, export_bundle
from .onnx_lens import OUTPUTS, build_lens_graph
from .quantize import Quantized, dequantize, quantize_4bit, quantize_8bit

__all__ = [
    "OUTPUTS",
    "Bundle",
    "Quantized",
    "build_lens_graph",
    "default_bundle",
    "dequantize",
    "export_bundle",
    "quantize_4bit",
    "quantize_8bit",
]
