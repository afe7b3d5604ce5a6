"""Static post-training INT8 quantization of ONNX models into QDQ form (ONNX Runtime's tool).

The QDQ graph is what ONNX Runtime runs in INT8 and what TensorRT builds as an
explicitly quantized INT8 engine. TensorRT refuses ONNX Runtime's default graph
(asymmetric activations with non-zero zero points: "TRT only supports
symmetric quantization" on 8.5, "Non-zero zero point is not supported" on
10.x; INT32 biases fed to DequantizeLinear; INT8 weight initializers), so for
TensorRT (`for_tensorrt=True`) activations and weights are quantized
symmetrically, biases stay in float, and the weights keep float initializers
with a Q/DQ pair after them.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

# ONNX Runtime's quantizer options for a graph TensorRT builds (its documented keys).
TENSORRT_OPTIONS = {
    "ActivationSymmetric": True,
    "WeightSymmetric": True,
    "QuantizeBias": False,
    "AddQDQPairToWeight": True,
}


def quantize_qdq(
    model: bytes, calibration: Sequence[tuple[np.ndarray, ...]], for_tensorrt: bool = False
) -> bytes:
    """INT8 QDQ model (per-channel int8 weights, int8 activations) calibrated on `calibration`;
    with `for_tensorrt`, in the form TensorRT accepts (see the module docstring)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader

    proto = onnx.load_from_string(model)
    names = [i.name for i in proto.graph.input]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches: Iterator[tuple[np.ndarray, ...]] = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else dict(zip(names, batch, strict=True))

    root = logging.getLogger()
    level = root.level
    # The quantizer logs a pre-processing suggestion on every call: the exported graphs
    # are already shape-inferred and constant-folded, so it is noise here.
    root.setLevel(logging.ERROR)
    try:
        return _quantize(model, names, Reader, for_tensorrt)
    finally:
        root.setLevel(level)


def _quantize(model: bytes, names: list[str], reader: type, for_tensorrt: bool) -> bytes:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    with tempfile.TemporaryDirectory(prefix="rlnas-q-") as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(model)
        quantize_static(
            str(source),
            str(target),
            reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options=TENSORRT_OPTIONS if for_tensorrt else {},
        )
        return target.read_bytes()
