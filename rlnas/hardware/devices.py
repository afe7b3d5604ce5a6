"""Target devices: one record per device holds every fact about it that rlnas needs.

A `Device` names its backend (and the class that implements it, imported only
when used), the vendor packages it imports, its precisions (with their bytes
per element), whether it is a GPU, how its presence is probed, and the time a
layer takes to profile. Adding a device or a backend means one entry in
`DEVICES` (and, for a new backend, its module in `rlnas.hardware.backends`).

Probes look for packages (without importing them) and for the hardware, so
listing devices stays fast on a machine without TensorRT or a GPU; only where a
GPU is found does a GPU probe ask torch whether it can use CUDA.
"""

from __future__ import annotations

import functools
import importlib.util
import platform
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rlnas.errors import DeviceError, did_you_mean, unknown

DEFAULT_DEVICE = "cpu"
# The backend of devices that are formulas, not hardware (`rlnas.hardware.systolic`).
ANALYTIC = "analytic"


@dataclass(frozen=True)
class Precision:
    """A numeric precision.

    Attributes:
        name: fp32, bf16, fp16 or int8.
        bytes_per_element: Size of one weight or activation element.
        marker: Matplotlib marker that shows it in plots.
    """

    name: str
    bytes_per_element: int
    marker: str


PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in [
        Precision("fp32", 4, "o"),
        Precision("bf16", 2, "D"),
        Precision("fp16", 2, "s"),
        Precision("int8", 1, "^"),
    ]
}


def get_precision(name: str) -> Precision:
    if name not in PRECISIONS:
        raise DeviceError(unknown("precision", name, PRECISIONS))
    return PRECISIONS[name]


# Probes: why the hardware is absent, or None when it is here.


def _anywhere() -> str | None:
    return None


def _x86() -> str | None:
    return None if platform.machine() in ("x86_64", "AMD64") else "not an x86-64 CPU"


def _jetson(model: str) -> Callable[[], str | None]:
    def probe() -> str | None:
        if model not in jetson_model():
            return f"this machine is not a Jetson {model}"
        return _cuda_usable()

    return probe


def _cuda_usable() -> str | None:
    """Why this torch cannot run CUDA (a CPU build, say), or None when it can: the GPU
    backends take their buffers, streams and events from torch."""
    import torch

    if torch.cuda.is_available():
        return None
    return f"this torch ({torch.__version__}) cannot use CUDA (a CPU build?); install a CUDA build"


def _nvidia_gpu(model: str = "") -> Callable[[], str | None]:
    def probe() -> str | None:
        gpus = gpu_names()
        if not gpus:
            return "no NVIDIA GPU found (nvidia-smi lists none)"
        if model and not any(model in g for g in gpus):
            return f"no {model} here (GPUs: {', '.join(gpus)})"
        return _cuda_usable()

    return probe


@dataclass(frozen=True)
class Device:
    """A deployment target: one chip with its compiler.

    Attributes:
        name: Name used on the command line.
        backend: Name of the backend that compiles and times models for it.
        backend_class: "module:Class" of that backend, imported only when used ("" for an
            analytic device, which nothing measures).
        precisions: Precisions the backend offers on it, the default first.
        packages: Python modules the backend imports.
        gpu: Whether it is an NVIDIA GPU (the measuring host is then the GPU's name).
        hardware: What must be present, in words.
        description: One line for listings.
        probe: Returns why the hardware is absent here, or None when it is present.
        seconds_per_layer: Rough wall time to profile one layer, by precision, seen on
            the project's 2-core CPU or estimated (BENCHMARKS.md); for `--dry-run`.
    """

    name: str
    backend: str
    backend_class: str
    precisions: tuple[str, ...]
    packages: tuple[str, ...]
    gpu: bool
    hardware: str
    description: str
    probe: Callable[[], str | None] = field(default=_anywhere, repr=False, compare=False)
    seconds_per_layer: dict[str, float] = field(default_factory=dict, compare=False)

    def missing(self) -> str | None:
        """Why this device cannot be measured here, or None if it can."""
        absent = [p for p in self.packages if importlib.util.find_spec(p) is None]
        if absent:
            return f"Python package {', '.join(absent)} is not installed"
        return self.probe()

    def bytes_per_element(self, precision: str) -> int:
        return get_precision(precision).bytes_per_element


_TENSORRT = "rlnas.hardware.backends.tensorrt:TensorRtBackend"

DEVICES: dict[str, Device] = {
    d.name: d
    for d in [
        Device(
            "cpu",
            "onnxruntime",
            "rlnas.hardware.backends.onnxruntime:OnnxRuntimeBackend",
            ("fp32", "int8"),
            ("onnxruntime",),
            gpu=False,
            hardware="any CPU",
            description="ONNX Runtime, CPU execution provider (the default)",
            seconds_per_layer={"fp32": 0.15, "int8": 0.30},
        ),
        Device(
            "intel-cpu",
            "openvino",
            "rlnas.hardware.backends.openvino:OpenVinoBackend",
            ("fp32", "bf16", "int8"),
            ("openvino",),
            gpu=False,
            hardware="an x86-64 CPU (Intel Core/Xeon; others run but are recorded as measured)",
            description="OpenVINO CPU plugin; int8 needs the optional nncf extra",
            probe=_x86,
            seconds_per_layer={"fp32": 0.15, "bf16": 0.15, "int8": 1.0},
        ),
        Device(
            "t4",
            "tensorrt",
            _TENSORRT,
            ("fp32", "fp16", "int8"),
            ("tensorrt",),
            gpu=True,
            hardware="an NVIDIA T4 GPU with TensorRT",
            description="TensorRT engines on an NVIDIA T4",
            probe=_nvidia_gpu("T4"),
            seconds_per_layer={"fp32": 3.0, "fp16": 3.0, "int8": 4.0},
        ),
        Device(
            "xavier-nx",
            "tensorrt",
            _TENSORRT,
            ("fp32", "fp16", "int8"),
            ("tensorrt",),
            gpu=True,
            hardware="a Jetson Xavier NX with JetPack's TensorRT",
            description="TensorRT on the Jetson itself",
            probe=_jetson("Xavier NX"),
            seconds_per_layer={"fp32": 3.0, "fp16": 3.0, "int8": 4.0},
        ),
        Device(
            "systolic",
            "analytic",
            "",
            ("int8", "fp16"),
            (),
            gpu=False,
            hardware="nothing: an analytic model (U-Boost's systolic-array runtime and "
            "utilization)",
            description="a TPU-like s1 x s2 systolic array; tables come from `rlnas tables "
            "estimate --device systolic --array 128x128`",
        ),
        Device(
            "cuda",
            "torch-cuda",
            "rlnas.hardware.backends.torch_cuda:TorchCudaBackend",
            ("fp32", "fp16"),
            ("torch",),
            gpu=True,
            hardware="any NVIDIA GPU",
            description="PyTorch on CUDA, for GPUs without TensorRT",
            probe=_nvidia_gpu(),
            seconds_per_layer={"fp32": 0.3, "fp16": 0.3},
        ),
    ]
}


def list_devices() -> list[str]:
    return list(DEVICES)


def get_device(name: str) -> Device:
    if name not in DEVICES:
        raise DeviceError(unknown("device", name, DEVICES))
    return DEVICES[name]


def backend_devices(backend: str) -> list[Device]:
    """The devices that a backend serves; raises DeviceError for an unknown backend."""
    devices = [d for d in DEVICES.values() if d.backend == backend]
    if not devices:
        raise DeviceError(
            unknown("backend", backend, dict.fromkeys(d.backend for d in DEVICES.values()))
        )
    return devices


def backend_precisions(backend: str) -> tuple[str, ...]:
    """Every precision a backend offers on some device."""
    found = [p for d in backend_devices(backend) for p in d.precisions]
    return tuple(dict.fromkeys(found))


def measuring_host(device: Device, allow_other: bool = False, action: str = "measure") -> str:
    """The hardware that will measure, or a DeviceError saying why it cannot."""
    if device.backend == ANALYTIC:
        raise DeviceError(
            f"device '{device.name}' is an analytic model with nothing to {action}; write its "
            f"table with `rlnas tables estimate --device {device.name} --array 128x128`"
        )
    missing = device.missing()
    gpus = gpu_names()
    if missing is not None:
        other_gpu = device.gpu and bool(gpus) and "not installed" not in missing
        if not (allow_other and other_gpu):
            hint = " (or --allow-other-device to measure on this GPU)" if other_gpu else ""
            raise DeviceError(
                f"cannot {action} device '{device.name}' here: {missing}; search with a shipped "
                f"table instead (`rlnas tables list`), or time whole networks on the device "
                f"(`rlnas bundle --device {device.name}`, then `rlnas tables fit --from-dir`)"
                f"{hint}"
            )
    if device.gpu:
        return gpus[0] if gpus else "unknown NVIDIA GPU"
    return cpu_name()


def resolve_precision(device: Device, precision: str | None) -> str:
    """`precision`, or the device's first when None; raises DeviceError if not offered."""
    precision = precision or device.precisions[0]
    if precision not in device.precisions:
        raise DeviceError(
            f"precision '{precision}' is not offered on device '{device.name}'; allowed: "
            f"{', '.join(device.precisions)}.{did_you_mean(precision, device.precisions)}"
        )
    return precision


DEVICE_TREE_MODEL = Path("/proc/device-tree/model")


def jetson_model() -> str:
    """The Jetson's model from its device tree (e.g. 'NVIDIA Jetson Xavier NX Developer Kit'),
    or "" on any other machine; a Jetson has no nvidia-smi."""
    try:
        model = DEVICE_TREE_MODEL.read_bytes().decode(errors="ignore").strip("\x00 \n")
    except OSError:
        return ""
    return model if "Jetson" in model else ""


@functools.cache
def gpu_names() -> tuple[str, ...]:
    """Names of the NVIDIA GPUs that nvidia-smi lists, a Jetson's model, or () if none."""
    if shutil.which("nvidia-smi") is None:
        jetson = jetson_model()
        return (jetson,) if jetson else ()
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(line.strip() for line in out.stdout.splitlines() if line.strip())


@functools.cache
def cpu_name() -> str:
    """The CPU model as the OS reports it."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
