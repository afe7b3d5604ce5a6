"""`scripts/gpu_check.sh --device cpu --smoke`: every step of the GPU check runs, on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.sh"
FILES = {
    "gpu_check.log",
    "summary.json",
    "table.parquet",
    "fidelity.json",
    "fidelity.csv",
    "throughput.json",
    "histories.csv",
    "pytest.txt",
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("OUT", None)
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, check=False
    )


@pytest.mark.slow
def test_the_smoke_runs_every_step_and_writes_what_comes_back(tmp_path, shared_data):
    out = tmp_path / "out"
    done = run("--device", "cpu", "--smoke", "--out", str(out), "--shared", str(shared_data))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert {p.name for p in out.iterdir()} == FILES  # the lent machine returns at most 8
    summary = json.loads((out / "summary.json").read_text())
    steps = {s["step"]: s["rc"] for s in summary["steps"]}
    assert steps == dict.fromkeys(
        ["profile", "fidelity", "throughput", "tests", "search", "train"], 0
    )
    assert set(summary["train"]) == {"mobilenetv2-e1", "mobilenetv2-e2", "rank1-e1", "rank1-e2"}
    assert isinstance(summary["search"], dict), summary["search"]
    assert summary["search"]["baseline"]["accuracy_drop"] == 0.01
    assert len(summary["search"]["top3"]) == 3
    assert summary["fidelity"]["archs"] == 4


def test_bad_input_is_one_line_and_touches_nothing(tmp_path, shared_data):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("keep")
    cases = [
        (["--device", "tpu"], "--device must be cuda or cpu, got 'tpu'"),
        (["--out", str(busy), "--shared", str(shared_data)], "is not empty"),
        (["--shared", str(tmp_path / "nowhere")], "pass --shared DIR"),
        (["--fast"], "unknown option '--fast'"),
    ]
    for args, message in cases:
        done = run(*args)
        assert done.returncode == 2 and message in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert [p.name for p in busy.iterdir()] == ["mine.txt"]
