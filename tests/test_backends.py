from __future__ import annotations

import importlib.util

import pytest

from rlnas.errors import DeviceError
from rlnas.hardware.backends import Workload, backend_names, get_backend
from rlnas.hardware.devices import DEVICES, backend_precisions
from rlnas.hardware.timing import TimingConfig, measure
from rlnas.model.ops import LayerKey, build_layer, input_shapes

SMALL = LayerKey("add", 8, 8, 8, 8)
LARGE = LayerKey("ir", 32, 32, 56, 56, 7, 1, 6, True, "silu")


def usable(name: str) -> str | None:
    """Why backend `name` cannot run here, or None."""
    try:
        backend = get_backend(name)
    except DeviceError as exc:
        return str(exc)
    del backend
    return None


def cases():
    precisions = {d.backend: d.precisions for d in DEVICES.values()}
    gpu = {d.backend for d in DEVICES.values() if d.gpu}
    for name in backend_names():
        reason = usable(name)
        for precision in precisions[name]:
            marks = [pytest.mark.skipif(reason is not None, reason=reason or "")]
            if name in gpu:
                marks.append(pytest.mark.cuda)
            if name == "openvino" and precision == "int8":
                marks.append(
                    pytest.mark.skipif(
                        importlib.util.find_spec("nncf") is None,
                        reason="OpenVINO int8 needs the nncf extra",
                    )
                )
            yield pytest.param(name, precision, marks=marks, id=f"{name}-{precision}")


@pytest.mark.parametrize(("name", "precision"), list(cases()))
def test_backend_times_layers(name, precision):
    backend = get_backend(name)
    assert precision in backend_precisions(name)
    if name == "openvino" and precision == "bf16":
        capabilities = backend.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        if "BF16" not in capabilities:
            pytest.skip("this CPU has no bf16")
    assert backend.version()
    config = TimingConfig(warmup=2, min_runs=10, min_time_ms=5.0)
    medians = {}
    for key in (SMALL, LARGE):
        workload = Workload.random(build_layer(key), input_shapes(key))
        timing = measure(backend.compile(workload, precision).run_timed, config)
        assert timing.runs >= 10
        assert 0 < timing.p10_ms <= timing.median_ms <= timing.p90_ms
        medians[key.op] = timing.median_ms
    # A 56x56 MBConv with SE does far more work than adding two 8x8x8 tensors.
    assert medians["ir"] > 3 * medians["add"]


def test_unknown_backend():
    with pytest.raises(DeviceError, match="Did you mean 'openvino'"):
        get_backend("openvin")


def test_unknown_precision():
    backend = get_backend("onnxruntime")
    workload = Workload.random(build_layer(SMALL), input_shapes(SMALL))
    with pytest.raises(DeviceError, match="precision 'fp16' is not offered by backend"):
        backend.compile(workload, "fp16")


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT present")
def test_tensorrt_absent_is_one_clear_error():
    with pytest.raises(DeviceError, match=r"needs the Python package 'tensorrt'.*shipped table"):
        get_backend("tensorrt")


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="TensorRT not installed")
def test_tensorrt_imports_and_reports_its_version():
    """Where `tensorrt` is installed (PyPI's tensorrt-cu12 installs on x86-64 without a GPU),
    the backend module imports, knows the version's API, and refuses to run without CUDA."""
    import tensorrt as trt

    from rlnas.hardware.backends import tensorrt as backend

    major = backend.major_version(trt.__version__)
    assert major in (8, 10)
    assert backend.network_flags(major) == (
        0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    )
    for version in ("11.0.0", "8.4.3", "7.2.3"):
        with pytest.raises(DeviceError, match=f"TensorRT {version} is not supported"):
            backend.major_version(version)
    assert backend.major_version("8.5.2.2") == 8 and backend.major_version("10.3.0") == 10
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="sees none"):
            get_backend("tensorrt")
