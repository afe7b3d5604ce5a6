from __future__ import annotations

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
