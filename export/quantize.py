"""int8 ONNX through onnxruntime's dynamic quantization."""

from __future__ import annotations

from pathlib import Path


def quantize_int8(float_model: Path, out: Path) -> None:
    """Write an int8 copy of `float_model`: weights stored int8, activations quantized at run time.

    Dynamic quantization needs no calibration data, which suits a one-layer model
    whose only large tensor is the Dense kernel.
    """
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # it advises "pre-processing" on root for every model: noise here
    try:
        quantize_dynamic(str(float_model), str(out), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
