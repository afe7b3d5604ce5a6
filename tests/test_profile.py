from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlnas.errors import DeviceError, TableError
from rlnas.hardware.profile import ProfileConfig, plan_profile, profile
from rlnas.hardware.table import load_table
from rlnas.hardware.timing import TimingConfig
from rlnas.model.layers import enumerate_layers
from rlnas.model.ops import KEY_FIELDS

FAST = TimingConfig(warmup=1, min_runs=3, min_time_ms=1.0, retries=0)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def keys_of(path: Path) -> list[tuple]:
    frame = load_table(path).frame
    return sorted(frame[list(KEY_FIELDS)].itertuples(index=False, name=None))


def test_limit_then_resume(tmp_path):
    out = tmp_path / "t.parquet"
    first = profile(ProfileConfig(device="cpu", space="nb201", out=out, limit=5, timing=FAST))
    assert (first.measured, first.rows, first.complete) == (5, 5, False)
    plan = plan_profile(ProfileConfig(device="cpu", space="nb201", out=out))
    assert (plan.total, plan.done, len(plan.todo)) == (17, 5, 12)
    second = profile(ProfileConfig(device="cpu", space="nb201", out=out, timing=FAST))
    assert (second.measured, second.rows, second.complete) == (12, 17, True)
    assert not out.with_name(out.name + ".journal").exists()
    assert len(keys_of(out)) == len(set(keys_of(out))) == 17


def test_rerun_of_complete_table_measures_nothing(tmp_path):
    out = tmp_path / "t.parquet"
    profile(ProfileConfig(device="cpu", space="nb201", out=out, timing=FAST))
    before = keys_of(out)
    result = profile(ProfileConfig(device="cpu", space="nb201", out=out, timing=FAST))
    assert result.measured == 0
    assert keys_of(out) == before


KILLED_RUN = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from rlnas.hardware.profile import ProfileConfig, profile
    from rlnas.hardware.timing import TimingConfig
    timing = TimingConfig(warmup=2, min_runs=20, min_time_ms=20.0, retries=0)
    profile(ProfileConfig(device="cpu", space="nb201", resolution=64, out=Path(sys.argv[1]),
                          timing=timing, checkpoint_every=4))
    """
)


def rows_on_disk(out: Path) -> int:
    journal = out.with_name(out.name + ".journal")
    rows = len(pq.read_table(out)) if out.exists() else 0
    if journal.exists():
        rows += max(0, len(journal.read_text().splitlines()) - 1)
    return rows


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_matches_uninterrupted(tmp_path):
    reference = tmp_path / "reference.parquet"
    subprocess.run([sys.executable, "-c", KILLED_RUN, str(reference)], check=True)

    out = tmp_path / "killed.parquet"
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(out)])
    deadline = time.monotonic() + 120
    while rows_on_disk(out) < 6 and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = rows_on_disk(out)
    assert 6 <= killed_at < 17, "the run must be killed mid-way"

    subprocess.run([sys.executable, "-c", KILLED_RUN, str(out)], check=True)
    assert keys_of(out) == keys_of(reference)
    assert len(load_table(out)) == len(load_table(reference)) == 17


def test_truncated_journal_line_is_remeasured(tmp_path):
    out = tmp_path / "t.parquet"
    profile(ProfileConfig(device="cpu", space="nb201", out=out, limit=3, timing=FAST))
    frame = load_table(out).frame
    out.unlink()
    journal = out.with_name(out.name + ".journal")
    header = {
        "device": "cpu",
        "precision": "fp32",
        "space_digest": load_digest(),
        "resolution": 32,
        "batch": 1,
        "threads": 1,
    }
    lines = [json.dumps(header)] + [json.dumps(r) for r in frame.to_dict("records")]
    journal.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:25])
    plan = plan_profile(ProfileConfig(device="cpu", space="nb201", out=out))
    assert plan.done == 2


def load_digest() -> str:
    from rlnas.model.space import get_space

    return get_space("nb201").digest


def test_refuses_to_overwrite_foreign_file(tmp_path):
    out = tmp_path / "mine.parquet"
    pq.write_table(pa.table({"x": [1.0]}), out)
    before = digest(out)
    with pytest.raises(TableError, match="refusing to write over"):
        profile(ProfileConfig(device="cpu", space="nb201", out=out, timing=FAST))
    assert digest(out) == before


def test_refuses_table_of_other_precision(tmp_path):
    out = tmp_path / "t.parquet"
    profile(ProfileConfig(device="cpu", space="nb201", out=out, limit=2, timing=FAST))
    before = digest(out)
    with pytest.raises(TableError, match=r"holds another table \(precision=fp32 \(want int8\)"):
        profile(ProfileConfig(device="cpu", precision="int8", space="nb201", out=out))
    assert digest(out) == before


@pytest.mark.parametrize("device", ["t4", "xavier-nx"])
def test_gpu_devices_refused_here(device, tmp_path):
    from rlnas.hardware.devices import get_device

    if get_device(device).missing() is None:
        pytest.skip(f"{device} is present here")
    with pytest.raises(DeviceError, match=f"cannot profile device '{device}' here.*shipped"):
        profile(ProfileConfig(device=device, out=tmp_path / "t.parquet"))
    assert not (tmp_path / "t.parquet").exists()


def test_precision_not_on_device():
    with pytest.raises(DeviceError, match="precision 'fp16' is not offered on device 'cpu'"):
        plan_profile(ProfileConfig(device="cpu", precision="fp16"))


def test_default_space_key_count_matches_plan(tmp_path):
    plan = plan_profile(ProfileConfig(device="cpu", out=tmp_path / "t.parquet", limit=10))
    assert plan.total == len(enumerate_layers("mobilenet"))
    assert len(plan.todo) == 10
    assert plan.estimated_s > 0
    assert not (tmp_path / "t.parquet").exists()  # planning writes nothing
