"""The result parsers on real output of trtexec (TensorRT 8.5 and 10.x) and benchmark_app
(fixtures/runners/README.md names each source), failures included."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from rlnas.hardware.runners import ResultError, parse_result

FIXTURES = Path(__file__).parent / "fixtures" / "runners"


def test_trtexec_85_on_a_jetson_with_lines_cut_short():
    result = parse_result(FIXTURES / "trtexec_8.5.2_xavier_agx.trtexec.txt")
    assert result.tool == "trtexec"
    # The GPU's own time, not the host latency (0.385986 ms) printed above it.
    assert result.median_ms == 0.369873
    assert result.p90_ms == 0.373779 and result.mean_ms == 0.369765
    assert result.p10_ms == 0.35675  # trtexec prints no 10th percentile: its minimum


def test_trtexec_10():
    result = parse_result(FIXTURES / "trtexec_10_rtx5070ti.trtexec.txt")
    assert (result.median_ms, result.p90_ms) == (140.855, 142.144)
    assert math.isnan(result.std_ms) and result.runs == 0


@pytest.mark.parametrize(
    ("fixture", "says"),
    [
        ("trtexec_8.5.1_build_failed", "Error[2]: [fusedConvActRunner.cpp"),
        ("trtexec_8.5.1_unsupported_op", "While parsing node number 6074 [SoftmaxCrossEntropyLoss"),
        ("trtexec_8.6.3_header", "Loading standard plugins"),  # no error: its last line
    ],
)
def test_trtexec_without_a_timing_says_why_in_one_line(fixture, says):
    with pytest.raises(ResultError) as caught:
        parse_result(FIXTURES / f"{fixture}.trtexec.txt")
    message = str(caught.value)
    assert message.startswith("trtexec printed no GPU Compute Time median")
    assert says in message and "\n" not in message


def test_benchmark_app():
    result = parse_result(FIXTURES / "benchmark_app_2026.4.1_cpu.benchmark_app.txt")
    assert result.tool == "benchmark_app"
    assert result.median_ms == pytest.approx(0.06824)  # printed in microseconds: 68.24 us
    assert result.p10_ms <= result.median_ms <= result.p90_ms  # its min and max
    assert result.tool_version.startswith("OpenVINO 2026.4.1")


def test_failure_records_and_empty_files(tmp_path):
    failed = tmp_path / "L0001.trtexec.failed"
    shutil.copy(FIXTURES / "trtexec_8.5.1_build_failed.trtexec.txt", failed)
    with pytest.raises(ResultError, match=r"^trtexec failed \(\[E\] Error\[2\]"):
        parse_result(failed)
    empty = tmp_path / "L0002.python.txt"
    empty.write_text("")
    with pytest.raises(ResultError, match="python wrote an empty file"):
        parse_result(empty)
    no_median = tmp_path / "L0003.python.txt"
    no_median.write_text("runs = 20\n")
    with pytest.raises(ResultError, match="python result has no median_ms line"):
        parse_result(no_median)
