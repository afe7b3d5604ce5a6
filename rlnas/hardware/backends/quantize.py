"""Static post-training INT8 quantization of ONNX models into QDQ form (ONNX Runtime's tool).

The QDQ graph is what ONNX Runtime runs in INT8 and what TensorRT builds as an
explicitly quantized INT8 engine.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np


def quantize_qdq(model: bytes, calibration: Sequence[tuple[np.ndarray, ...]]) -> bytes:
    """INT8 QDQ model (per-channel int8 weights, int8 activations) calibrated on `calibration`."""
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
        return _quantize(model, calibration, names, Reader)
    finally:
        root.setLevel(level)


def _quantize(
    model: bytes, calibration: Sequence[tuple[np.ndarray, ...]], names: list[str], reader: type
) -> bytes:
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
        )
        return target.read_bytes()
