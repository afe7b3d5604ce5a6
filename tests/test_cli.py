from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rlnas.cli import app

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("spaces", "devices"):
        assert command in result.output


def test_spaces_lists_all():
    result = runner.invoke(app, ["spaces"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ("mobilenet", "nb201", "resnet"):
        assert name in result.output
    assert "15,625" in result.output


def test_space_details():
    result = runner.invoke(app, ["spaces", "nb201"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "edge 0->1" in result.output
    assert "17 unique layers" in result.output


def test_unknown_space_is_one_line():
    result = runner.invoke(app, ["spaces", "mobilnet"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "Did you mean 'mobilenet'" in lines[0]


def test_devices():
    result = runner.invoke(app, ["devices"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ("cpu", "intel-cpu", "t4", "xavier-nx", "cuda"):
        assert name in result.output


@pytest.mark.parametrize("device", ["t4", "xavier-nx"])
def test_profile_gpu_device_refused_in_one_line(device, tmp_path):
    from rlnas.hardware.devices import get_device

    if get_device(device).missing() is None:
        pytest.skip(f"{device} is present here")
    result = runner.invoke(
        app, ["profile", "--device", device, "--out", str(tmp_path / "t.parquet")]
    )
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "tensorrt" in lines[0].lower() and "shipped table" in lines[0]


def test_profile_dry_run(tmp_path):
    out = tmp_path / "t.parquet"
    result = runner.invoke(app, ["profile", "--device", "cpu", "--dry-run", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "3089 layers in the space, 0 measured, 3089 to measure now" in result.output
    assert not out.exists()


def test_profile_unknown_device_suggests():
    result = runner.invoke(app, ["profile", "--device", "xavier", "--dry-run"])
    assert result.exit_code == 2
    assert "Did you mean 'xavier-nx'" in result.stderr


def test_profile_then_tables_commands(tmp_path):
    out = tmp_path / "nb.parquet"
    result = runner.invoke(app, ["profile", "--space", "nb201", "--limit", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 rows, partial" in result.output

    shown = runner.invoke(app, ["tables", "show", str(out)])
    assert shown.exit_code == 0
    assert "onnxruntime" in shown.output and "measured" in shown.output

    check = runner.invoke(app, ["tables", "check", str(out), "--space", "nb201"])
    assert check.exit_code == 1
    assert "lacks 14 layer(s)" in check.stderr

    runner.invoke(app, ["profile", "--space", "nb201", "--out", str(out)])
    check = runner.invoke(app, ["tables", "check", str(out), "--space", "nb201"])
    assert check.exit_code == 0, check.stderr
    assert "covers all 17 layers" in check.output

    listed = runner.invoke(app, ["tables", "list", "--dir", str(tmp_path)], env={"COLUMNS": "250"})
    assert listed.exit_code == 0
    assert "nb" in listed.output and "onnxruntime" in listed.output


@pytest.mark.parametrize("terminal", [False, True])
def test_the_bar_prints_plain_lines_only_off_a_terminal(terminal, monkeypatch):
    import io

    from rich.console import Console

    from rlnas.cli import progress
    from rlnas.cli.progress import Bar

    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=80)
    clock = iter([0.0, 10.0, 40.0, 41.0])
    monkeypatch.setattr(progress, "monotonic", lambda: next(clock))
    with Bar(console=console) as bar:
        task = bar.add_task("", total=4)
        for done in range(1, 5):
            bar.update(task, completed=done, description=f"trained net {done}")
        bar.update(task, completed=4, description="trained net 4 again")  # once done: no line
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    plain = [line for line in lines if line[:1].isdigit()]
    if terminal:
        assert plain == []
    else:
        # the first, then not before 30 s have passed, and the last, once
        assert plain == ["1/4 trained net 1", "3/4 trained net 3", "4/4 trained net 4"]
