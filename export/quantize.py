"""int8 ONNX through onnxruntime's dynamic quantization."""

from __future__ import annotations

import logging
from pathlib import Path


class _DropPreprocessingAdvice(logging.Filter):
    """onnxruntime advises "pre-processing before quantization" on the root logger for every model.

    The advice is for models with shapes to infer; ours has none to gain. Filtering
    that one message, rather than raising the root logger's level, leaves every
    other record of the process alone.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but the advice."""
        return "pre-processing before quantization" not in record.getMessage()


def quantize_int8(float_model: Path, out: Path) -> None:
    """Write an int8 copy of `float_model`: weights stored int8, activations quantized at run time.

    Dynamic quantization needs no calibration data, which suits a one-layer model
    whose only large tensor is the Dense kernel.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root, advice = logging.getLogger(), _DropPreprocessingAdvice()
    root.addFilter(advice)
    try:
        quantize_dynamic(str(float_model), str(out), weight_type=QuantType.QInt8)
    finally:
        root.removeFilter(advice)
