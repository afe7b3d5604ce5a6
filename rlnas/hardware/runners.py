"""The runners a bundle carries to the device, and the reading of what they write.

A bundle (`rlnas.hardware.bundle` for whole networks, `rlnas.hardware.layer_bundle`
for single layers) holds `models/*.onnx`, `bundle.id` (its digest) and three
runners that need nothing of rlnas on the device. Each times every model in its
own run, writes `results/NAME.TOOL.txt` (or `results/NAME.TOOL.failed` with the
log, and goes on), appends the bundle's digest, and skips models already done,
so a runner resumes where it stopped:

- `run_trtexec.sh`: TensorRT's `trtexec` (`TRTEXEC=` or PATH or JetPack's
  `/usr/src/tensorrt/bin/trtexec`), one shared `--timingCacheFile` so the
  builds reuse each other's tactics; `PRECISION=fp32|fp16|int8` (the bundle's
  by default; an int8 bundle's models are already QDQ, so `--int8` builds them
  with their own scales);
- `run_benchmark_app.sh`: OpenVINO's `benchmark_app` (`DEVICE=CPU|GPU|NPU`);
- `run_python.py`: ONNX Runtime or TensorRT's Python API, on Python >= 3.8 with
  numpy and the runtime only (TensorRT's buffers and events through the CUDA
  runtime library, by ctypes).

The runners' texts and `write_runners` are in `rlnas.hardware.runner_scripts`.
`parse_result` reads one result file: the median (and what else the tool
gives), the tool's version and the device as the output states them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rlnas.errors import TableError

BUNDLE_ID = "bundle.id"
# Result suffix -> tool. `.onnxruntime.txt` is what bundles before `run_python.py` wrote.
TOOLS = {
    ".trtexec.txt": "trtexec",
    ".benchmark_app.txt": "benchmark_app",
    ".python.txt": "python",
    ".onnxruntime.txt": "onnxruntime",
}
FAILED = ".failed"
DIGEST_LINE = re.compile(r"^rlnas-bundle:\s*(\S+)\s*$", re.MULTILINE)

_NUMBER = r"([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)"
# trtexec (8.x and 10.x): "GPU Compute Time: min = 0.1 ms, max = ..., mean = ..., median =
# ..., percentile(90%) = ..., ..." in its performance summary.
# (Not "Total GPU Compute Time: 3.2 s", which follows it.)
_TRT_GPU = re.compile(r"(?<!Total )GPU Compute Time: (.*)")
_TRT_STAT = re.compile(r"(min|max|mean|median|percentile\(90%\))\s*=\s*" + _NUMBER + r"\s*ms")
_TRT_VERSION = re.compile(r"TensorRT version:\s*([0-9][0-9.]*)")
_TRT_DEVICE = re.compile(r"(?:Selected Device|Device):\s*(.+?)\s*$", re.MULTILINE)
# benchmark_app (2022.1 onwards): "[ INFO ]    Median:  1.23 ms" under "Latency:"; recent
# releases print small latencies in microseconds ("Median:  68.24 us").
_OV_STAT = re.compile(
    r"\b(Median|Average|Min|Max)\s*:\s*" + _NUMBER + r"\s*(ms|us|µs|s)\b", re.IGNORECASE
)
_TO_MS = {"ms": 1.0, "us": 1e-3, "µs": 1e-3, "s": 1e3}
_OV_VERSION = re.compile(r"Build\s*\.+\s*([0-9][^\s]*)")
_OV_DEVICE = re.compile(r"\[ INFO \]\s*(CPU|GPU(?:\.\d)?|NPU)\s*$", re.MULTILINE)
# run_python.py and the older run_onnxruntime.py: "key = value" lines.
_PY_LINE = re.compile(r"^(\w+)\s*=\s*(.+?)\s*$", re.MULTILINE)
_ERROR = re.compile(r"(?:\[E\]|ERROR|Error|error)[^\n]*")


@dataclass(frozen=True)
class Result:
    """One model's timing as its runner wrote it.

    Attributes:
        median_ms: The median latency.
        tool: trtexec, benchmark_app, python or onnxruntime.
        p10_ms, p90_ms, mean_ms, std_ms, runs: What else the tool reports (NaN or 0 where
            it reports none; trtexec gives no 10th percentile, its minimum stands in).
        tool_version: The runtime's version as the output states it ("" if not stated).
        device: The device as the output states it ("" if not stated).
        digest: The bundle digest the runner appended ("" for older bundles).
    """

    median_ms: float
    tool: str
    p10_ms: float = float("nan")
    p90_ms: float = float("nan")
    mean_ms: float = float("nan")
    std_ms: float = float("nan")
    runs: int = 0
    tool_version: str = ""
    device: str = ""
    digest: str = ""


class ResultError(ValueError):
    """A result file that holds no timing: why, in one line."""


def find_result(results: Path, name: str) -> Path | None:
    """The result file of model `name` (a failure record counts), or None if not run yet."""
    for suffix in (*TOOLS, *(f".{t}{FAILED}" for t in dict.fromkeys(TOOLS.values()))):
        path = results / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def collect_results(
    results: Path, names: Iterable[str], digest: str, label: str = ""
) -> tuple[dict[str, Result], list[str]]:
    """The results of the named models (those not run yet are absent), and one line per model
    whose result holds no timing (`label` goes before its name).

    Raises:
        TableError: A result of another bundle (its digest is not `digest`; "" checks none).
    """
    timed: dict[str, Result] = {}
    problems: list[str] = []
    for name in names:
        path = find_result(results, name)
        if path is None:
            continue
        try:
            result = parse_result(path)
        except ResultError as exc:
            problems.append(f"{label}{name}: {exc} ({path})")
            continue
        if digest and result.digest and result.digest != digest:
            raise TableError(
                f"{path} belongs to another bundle (digest {result.digest}, this one's "
                f"{digest}); read that bundle's results from its own folder"
            )
        timed[name] = result
    return timed, problems


def parse_result(path: Path) -> Result:
    """Reads one result file.

    Raises:
        ResultError: A failure record, an empty file, or no median in it (with the
            tool's first error line where it printed one).
    """
    text = path.read_text(errors="replace")
    tool = next((t for s, t in TOOLS.items() if path.name.endswith(s)), "")
    if path.name.endswith(FAILED):
        tool = path.name[: -len(FAILED)].rsplit(".", 1)[-1]
        raise ResultError(f"{tool} failed ({_first_error(text)})")
    if not text.strip():
        raise ResultError(f"{tool} wrote an empty file (the run was cut short?)")
    digest_match = DIGEST_LINE.search(text)
    digest = digest_match.group(1) if digest_match else ""
    if tool == "trtexec":
        return _trtexec(text, digest)
    if tool == "benchmark_app":
        return _benchmark_app(text, digest)
    return _python(text, tool, digest)


def _first_error(text: str) -> str:
    match = _ERROR.search(text)
    line = match.group(0) if match else (text.strip().splitlines() or ["no output"])[-1]
    return line.strip()[:200]


def _trtexec(text: str, digest: str) -> Result:
    lines = _TRT_GPU.findall(text)
    stats = {k: float(v) for k, v in _TRT_STAT.findall(lines[-1])} if lines else {}
    if "median" not in stats:
        raise ResultError(f"trtexec printed no GPU Compute Time median ({_first_error(text)})")
    version = _TRT_VERSION.search(text)
    device = _TRT_DEVICE.search(text)
    return Result(
        stats["median"],
        "trtexec",
        p10_ms=stats.get("min", float("nan")),
        p90_ms=stats.get("percentile(90%)", float("nan")),
        mean_ms=stats.get("mean", float("nan")),
        tool_version=f"TensorRT {version.group(1)}" if version else "",
        device=device.group(1) if device else "",
        digest=digest,
    )


def _benchmark_app(text: str, digest: str) -> Result:
    # The latency block comes after "Latency:"; a throughput-only run has none.
    block = text.split("Latency:", 1)[1] if "Latency:" in text else ""
    stats = {k.lower(): float(v) * _TO_MS[u.lower()] for k, v, u in _OV_STAT.findall(block)}
    if "median" not in stats:
        raise ResultError(f"benchmark_app printed no median latency ({_first_error(text)})")
    version = _OV_VERSION.search(text)
    device = _OV_DEVICE.search(text)
    return Result(
        stats["median"],
        "benchmark_app",
        p10_ms=stats.get("min", float("nan")),
        p90_ms=stats.get("max", float("nan")),
        mean_ms=stats.get("average", float("nan")),
        tool_version=f"OpenVINO {version.group(1)}" if version else "",
        device=device.group(1) if device else "",
        digest=digest,
    )


def _python(text: str, tool: str, digest: str) -> Result:
    values = dict(_PY_LINE.findall(text))
    try:
        median = float(values["median_ms"])
    except (KeyError, ValueError):
        raise ResultError(f"{tool} result has no median_ms line") from None

    def number(key: str) -> float:
        try:
            return float(values[key])
        except (KeyError, ValueError):
            return float("nan")

    return Result(
        median,
        tool,
        p10_ms=number("p10_ms"),
        p90_ms=number("p90_ms"),
        mean_ms=number("mean_ms"),
        std_ms=number("std_ms"),
        runs=int(number("runs")) if values.get("runs", "").isdigit() else 0,
        tool_version=values.get("tool_version", ""),
        device=values.get("device", ""),
        digest=digest or values.get("bundle", ""),
    )
