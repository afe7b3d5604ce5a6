"""Target devices: which backend and precisions each uses, and whether it is usable here.

Checks only look for packages (without importing them) and for the hardware,
so listing devices stays fast on a machine without TensorRT or a GPU.
"""

from __future__ import annotations

import functools
import importlib.util
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from rlnas.errors import DeviceError, did_you_mean, unknown

DEFAULT_DEVICE = "cpu"


@dataclass(frozen=True)
class Device:
    """A deployment target: one chip with its compiler.

    Attributes:
        name: Name used on the command line.
        backend: Backend that compiles and times models for it.
        precisions: Precisions the backend offers on it.
        packages: Python modules the backend imports.
        hardware: What must be present, in words.
        description: One line for listings.
    """

    name: str
    backend: str
    precisions: tuple[str, ...]
    packages: tuple[str, ...]
    hardware: str
    description: str

    def missing(self) -> str | None:
        """Why this device cannot be measured here, or None if it can."""
        absent = [p for p in self.packages if importlib.util.find_spec(p) is None]
        if absent:
            return f"Python package {', '.join(absent)} is not installed"
        return _hardware_missing(self.name)


DEVICES: dict[str, Device] = {
    d.name: d
    for d in [
        Device(
            "cpu",
            "onnxruntime",
            ("fp32", "int8"),
            ("onnxruntime",),
            "any CPU",
            "ONNX Runtime, CPU execution provider (the default)",
        ),
        Device(
            "intel-cpu",
            "openvino",
            ("fp32", "bf16", "int8"),
            ("openvino",),
            "an x86-64 CPU (Intel Core/Xeon; others run but are recorded as measured)",
            "OpenVINO CPU plugin; int8 needs the optional nncf extra",
        ),
        Device(
            "t4",
            "tensorrt",
            ("fp32", "fp16", "int8"),
            ("tensorrt",),
            "an NVIDIA T4 GPU with TensorRT",
            "TensorRT engines on an NVIDIA T4",
        ),
        Device(
            "xavier-nx",
            "tensorrt",
            ("fp32", "fp16", "int8"),
            ("tensorrt",),
            "a Jetson Xavier NX with JetPack's TensorRT",
            "TensorRT on the Jetson itself",
        ),
        Device(
            "cuda",
            "torch-cuda",
            ("fp32", "fp16"),
            ("torch",),
            "any NVIDIA GPU",
            "PyTorch on CUDA, for GPUs without TensorRT",
        ),
    ]
}


def measuring_host(device: Device, allow_other: bool = False, action: str = "measure") -> str:
    """The hardware that will measure, or a DeviceError saying why it cannot."""
    missing = device.missing()
    gpus = gpu_names()
    if missing is not None:
        other_gpu = device.name == "t4" and gpus and "not installed" not in missing
        if not (allow_other and other_gpu):
            hint = " (or --allow-other-device to measure on this GPU)" if other_gpu else ""
            raise DeviceError(
                f"cannot {action} device '{device.name}' here: {missing}; search with a shipped "
                f"table instead (`rlnas tables list`){hint}"
            )
    if device.backend in ("tensorrt", "torch-cuda"):
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


def list_devices() -> list[str]:
    return list(DEVICES)


def get_device(name: str) -> Device:
    if name not in DEVICES:
        raise DeviceError(unknown("device", name, DEVICES))
    return DEVICES[name]


def _hardware_missing(name: str) -> str | None:
    if name == "cpu":
        return None
    if name == "intel-cpu":
        return None if platform.machine() in ("x86_64", "AMD64") else "not an x86-64 CPU"
    if name == "xavier-nx":
        model = Path("/proc/device-tree/model")
        text = model.read_text(errors="ignore") if model.exists() else ""
        return None if "Xavier NX" in text else "this machine is not a Jetson Xavier NX"
    gpus = gpu_names()
    if not gpus:
        return "no NVIDIA GPU found (nvidia-smi lists none)"
    if name == "t4" and not any("T4" in g for g in gpus):
        return f"no T4 here (GPUs: {', '.join(gpus)})"
    return None


@functools.cache
def gpu_names() -> tuple[str, ...]:
    """Names of the NVIDIA GPUs that nvidia-smi lists, or () if none."""
    if shutil.which("nvidia-smi") is None:
        return ()
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
