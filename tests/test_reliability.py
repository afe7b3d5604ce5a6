"""Careless and hostile input to every command: a clean one-line error, and no user file changed.

Each case prepares files in an empty working folder, runs one command there and
checks:
- a non-zero exit and exactly one line on stderr, `error: ...`, that names the
  bad value (the case's `names`) and a fix (the case's `fix`);
- no traceback, and no exception other than the exit;
- every file in the folder unchanged (by hash), and no file added.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rlnas.cli import app
from rlnas.hardware.catalog import shipped_tables_dir, user_tables_dir
from rlnas.hardware.table import load_table, save_table
from rlnas.search.config import SearchConfig
from rlnas.search.run import run_search

runner = CliRunner()
RESNET = "cpu_fp32_resnet_224_b1"


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """A small finished run on the shipped cpu table (random search, 4 architectures)."""
    out = tmp_path_factory.mktemp("base") / "run"
    run_search(SearchConfig(latency_ms=6, strategy="random", budget=4), out)
    return out


# ---------------------------------------------------------------------------
# Set-ups: each writes the files a case needs into the working folder.

Setup = Callable[[Path, Path], None]


def nothing(work: Path, run: Path) -> None:
    pass


def a_run(work: Path, run: Path) -> None:
    shutil.copytree(run, work / "run")


def run_with(name: str, content: bytes | Callable[[Path], None]) -> Setup:
    """A copy of the run whose file `name` is replaced by bytes or by a function of its path."""

    def setup(work: Path, run: Path) -> None:
        a_run(work, run)
        target = work / "run" / name
        if callable(content):
            content(target)
        else:
            target.write_bytes(content)

    return setup


def run_without(name: str) -> Setup:
    def setup(work: Path, run: Path) -> None:
        a_run(work, run)
        (work / "run" / name).unlink()

    return setup


def truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def evaluations_without(column: str) -> Callable[[Path], None]:
    def change(path: Path) -> None:
        pd.read_parquet(path).drop(columns=[column]).to_parquet(path)

    return change


def evaluations_with(column: str, value: object) -> Callable[[Path], None]:
    def change(path: Path) -> None:
        frame = pd.read_parquet(path)
        frame[column] = value
        frame.to_parquet(path)

    return change


def journal_damaged_in_the_middle(path: Path) -> None:
    lines = path.read_text().splitlines()
    lines[1] = lines[1][:20]
    path.write_text("\n".join(lines) + "\n")


def measured_file(content: bytes) -> Setup:
    def setup(work: Path, run: Path) -> None:
        a_run(work, run)
        (work / "run" / "measured.parquet").write_bytes(content)

    return setup


def table_file(
    name: str = "bad.parquet",
    rows: Callable[[pd.DataFrame], None] | None = None,
    meta: dict[str, object] | None = None,
    folder: Callable[[Path], Path] = lambda work: work,
) -> Setup:
    """A copy of the shipped resnet cpu table with rows or metadata changed."""

    def setup(work: Path, run: Path) -> None:
        table = load_table(shipped_tables_dir() / f"{RESNET}.parquet")
        frame = table.frame.copy()
        if rows is not None:
            rows(frame)
        target = folder(work) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        save_table(dataclasses.replace(table.meta, **(meta or {})), frame, target)

    return setup


def set_value(column: str, value: float) -> Callable[[pd.DataFrame], None]:
    def change(frame: pd.DataFrame) -> None:
        frame.loc[3, column] = value

    return change


def file(name: str, content: bytes) -> Setup:
    def setup(work: Path, run: Path) -> None:
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)

    return setup


def frame_file(name: str, frame: pd.DataFrame) -> Setup:
    def setup(work: Path, run: Path) -> None:
        path = work / name
        if name.endswith(".csv"):
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path)

    return setup


def both(*setups: Setup) -> Setup:
    def setup(work: Path, run: Path) -> None:
        for each in setups:
            each(work, run)

    return setup


def user_table_hiding_shipped(work: Path, run: Path) -> None:
    """A user table with a shipped table's name (RLNAS_HOME points inside `work`)."""
    table_file(
        f"{RESNET}.parquet",
        rows=set_value("latency_ms", -1.0),
        folder=lambda w: user_tables_dir(),
    )(work, run)


# ---------------------------------------------------------------------------
# The cases.


@dataclass(frozen=True)
class Case:
    """One careless input: its set-up, its command, and what the error must name."""

    id: str
    args: list[str]
    names: tuple[str, ...]
    setup: Setup = nothing


SEARCH = ["search", "--strategy", "random", "--budget", "3", "--out", "out"]
TARGET = ["--latency-ms", "6"]
NB_ACC = pd.DataFrame({"arch_index": [0, 1, 2], "acc": [91.0, 0.5, 93.0]})

CASES = [
    # --- run folders with damaged files: export, report, measure, resume --------------------
    *[
        Case(f"{command[0]}-{label}", [*command], names, setup)
        for command in (["export", "run"], ["report", "run"], ["measure", "run", "--top", "1"])
        for label, setup, names in [
            (
                "evals-truncated",
                run_with("evaluations.parquet", truncated),
                ("evaluations.parquet", "rerun"),
            ),
            ("evals-empty", run_with("evaluations.parquet", b""), ("evaluations.parquet",)),
            ("evals-text", run_with("evaluations.parquet", b"hello"), ("evaluations.parquet",)),
            (
                "evals-no-reward",
                run_with("evaluations.parquet", evaluations_without("reward")),
                ("reward", "rerun"),
            ),
            (
                "evals-no-arch",
                run_with("evaluations.parquet", evaluations_without("arch")),
                ("arch", "rerun"),
            ),
            (
                "evals-text-latency",
                run_with("evaluations.parquet", evaluations_with("latency_ms", "fast")),
                ("latency_ms", "rerun"),
            ),
            (
                "evals-nan-accuracy",
                run_with("evaluations.parquet", evaluations_with("accuracy", math.nan)),
                ("accuracy", "rerun"),
            ),
            ("evals-missing", run_without("evaluations.parquet"), ("evaluations.parquet",)),
            ("config-truncated", run_with("config.json", b'{"search": {"lat'), ("config.json",)),
            ("config-list", run_with("config.json", b"[]"), ("config.json",)),
            ("config-empty-object", run_with("config.json", b"{}"), ("config.json",)),
            ("config-empty", run_with("config.json", b""), ("config.json",)),
            ("config-binary", run_with("config.json", b"\xff\xfe\x00"), ("config.json",)),
            (
                "config-bad-value",
                run_with("config.json", b'{"search": {"latency_ms": "x"}}'),
                ("config.json",),
            ),
            (
                "config-negative-target",
                run_with("config.json", b'{"search": {"latency_ms": -3}}'),
                ("config.json", "latency_ms"),
            ),
            ("config-missing", run_without("config.json"), ("not a run folder",)),
            ("not-a-folder", file("run", b"x"), ("run",)),
            ("no-such-run", nothing, ("run",)),
        ]
    ],
    Case("report-measured-text", ["report", "run"], ("measured.parquet",), measured_file(b"hi")),
    Case("report-measured-empty", ["report", "run"], ("measured.parquet",), measured_file(b"")),
    Case(
        "report-measured-columns",
        ["report", "run"],
        ("measured.parquet", "measure"),
        run_with("measured.parquet", lambda p: pd.DataFrame({"x": [1]}).to_parquet(p)),
    ),
    Case("export-rank-too-high", ["export", "run", "--rank", "99"], ("rank 99",), a_run),
    Case("export-rank-zero", ["export", "run", "--rank", "0"], ("--rank",), a_run),
    Case("export-bad-format", ["export", "run", "--format", "tflite"], ("tflite",), a_run),
    *[
        Case(
            f"resume-{label}",
            ["search", "--strategy", "random", "--budget", "4", *TARGET, "--out", "run"],
            names,
            setup,
        )
        for label, setup, names in [
            ("config-list", run_with("config.json", b"[]"), ("config.json",)),
            ("config-truncated", run_with("config.json", b'{"sea'), ("config.json",)),
            ("config-empty", run_with("config.json", b""), ("config.json",)),
            (
                "journal-damaged",
                run_with("evaluations.jsonl", journal_damaged_in_the_middle),
                ("evaluations.jsonl", "line 2"),
            ),
            ("journal-binary", run_with("evaluations.jsonl", b"\xff\xfe\n{}\n"), ("jsonl",)),
        ]
    ],
    Case(
        "resume-other-settings",
        ["search", "--strategy", "random", "--budget", "9", *TARGET, "--out", "run"],
        ("budget", "--out"),
        a_run,
    ),
    # --- files that would be overwritten ---------------------------------------------------
    Case(
        "export-existing-onnx",
        ["export", "run", "--out", "model.onnx"],
        ("model.onnx", "--force"),
        both(a_run, file("model.onnx", b"my model")),
    ),
    Case(
        "export-existing-json",
        ["export", "run", "--format", "json", "--out", "notes.json"],
        ("notes.json", "--force"),
        both(a_run, file("notes.json", b"{}")),
    ),
    Case(
        "export-over-run-config",
        ["export", "run", "--out", "run/config.json"],
        ("config.json", "--force"),
        a_run,
    ),
    Case(
        "estimate-existing-text",
        ["tables", "estimate", "--device", "t4", "--out", "notes.txt"],
        ("notes.txt", "--force"),
        file("notes.txt", b"my notes"),
    ),
    Case(
        "estimate-existing-user-table",
        ["tables", "estimate", "--device", "t4"],
        ("t4_fp16_mobilenet_224_b1", "--force"),
        table_file("t4_fp16_mobilenet_224_b1.parquet", folder=lambda w: user_tables_dir()),
    ),
    Case(
        "profile-over-text",
        ["profile", "--space", "resnet", "--out", "notes.parquet"],
        ("notes.parquet",),
        file("notes.parquet", b"my notes"),
    ),
    Case(
        "profile-over-other-table",
        ["profile", "--space", "nb201", "--out", "t.parquet"],
        ("t.parquet", "--out"),
        table_file("t.parquet"),
    ),
    # --- bad --out paths -------------------------------------------------------------------
    Case("export-out-folder", ["export", "run", "--out", "run"], ("run", "folder"), a_run),
    Case(
        "export-out-under-file",
        ["export", "run", "--out", "notes.txt/m.onnx"],
        ("notes.txt", "file"),
        both(a_run, file("notes.txt", b"x")),
    ),
    Case("export-out-proc", ["export", "run", "--out", "/proc/m.onnx"], ("/proc/m.onnx",), a_run),
    Case(
        "estimate-out-folder",
        ["tables", "estimate", "--device", "t4", "--out", "sub"],
        ("sub", "folder"),
        file("sub/keep.txt", b"x"),
    ),
    Case(
        "estimate-out-under-file",
        ["tables", "estimate", "--device", "t4", "--out", "notes.txt/t.parquet"],
        ("notes.txt",),
        file("notes.txt", b"x"),
    ),
    Case(
        "estimate-out-proc",
        ["tables", "estimate", "--device", "t4", "--out", "/proc/t.parquet"],
        ("/proc/t.parquet",),
    ),
    Case(
        "search-out-file",
        ["search", *TARGET, "--out", "notes.txt"],
        ("notes.txt", "file"),
        file("notes.txt", b"x"),
    ),
    Case(
        "search-out-under-file",
        ["search", *TARGET, "--out", "notes.txt/run"],
        ("notes.txt",),
        file("notes.txt", b"x"),
    ),
    Case(
        "search-out-other-folder",
        ["search", *TARGET, "--out", "photos"],
        ("photos", "config.json"),
        file("photos/cat.jpg", b"x"),
    ),
    Case("search-out-proc", ["search", *TARGET, "--out", "/proc/run"], ("/proc",)),
    Case(
        "profile-out-folder",
        ["profile", "--space", "resnet", "--out", "sub"],
        ("sub", "folder"),
        file("sub/keep.txt", b"x"),
    ),
    Case(
        "profile-out-under-file",
        ["profile", "--space", "resnet", "--out", "notes.txt/t.parquet"],
        ("notes.txt",),
        file("notes.txt", b"x"),
    ),
    # --- invalid tables --------------------------------------------------------------------
    *[
        Case(f"{label}-{command[0]}-{command[1]}", [*command, "bad.parquet"], names, setup)
        for command in (["tables", "show"], ["tables", "check"])
        for label, setup, names in [
            ("nan", table_file(rows=set_value("latency_ms", math.nan)), ("latency_ms", "nan")),
            ("negative", table_file(rows=set_value("latency_ms", -0.5)), ("latency_ms", "-0.5")),
            ("inf", table_file(rows=set_value("latency_ms", math.inf)), ("latency_ms", "inf")),
            (
                "negative-overhead",
                table_file(rows=set_value("overhead_ms", -1.0)),
                ("overhead_ms",),
            ),
            ("nan-p90", table_file(rows=set_value("p90_ms", math.nan)), ("p90_ms",)),
            ("meta-overhead", table_file(meta={"overhead_ms": -2.0}), ("overhead_ms",)),
            ("text", file("bad.parquet", b"not a table"), ("bad.parquet", "rlnas profile")),
            ("empty", file("bad.parquet", b""), ("bad.parquet",)),
            (
                "plain-parquet",
                frame_file("bad.parquet", pd.DataFrame({"a": [1]})),
                ("not an rlnas table",),
            ),
        ]
    ],
    Case("show-missing-file", ["tables", "show", "nothere.parquet"], ("nothere.parquet",)),
    Case("show-unknown-name", ["tables", "show", "cpu_fp32_mobilnet"], ("cpu_fp32_mobilnet",)),
    Case("show-folder", ["tables", "show", "sub"], ("sub", "folder"), file("sub/x", b"")),
    Case(
        "check-other-space",
        ["tables", "check", RESNET, "--space", "nb201"],
        ("nb201", "rlnas profile"),
    ),
    Case(
        "predict-nan-table",
        ["predict", "--baseline", "resnet18", "--table", "bad.parquet"],
        ("latency_ms",),
        table_file(rows=set_value("latency_ms", math.nan)),
    ),
    Case(
        "search-negative-table",
        [*SEARCH, *TARGET, "--space", "resnet", "--table", "bad.parquet"],
        ("latency_ms", "-1"),
        table_file(rows=set_value("latency_ms", -1.0)),
    ),
    Case(
        "search-inf-table",
        [*SEARCH, *TARGET, "--space", "resnet", "--table", "bad.parquet"],
        ("latency_ms", "inf"),
        table_file(rows=set_value("latency_ms", math.inf)),
    ),
    Case(
        "predict-mislabelled-user-table",
        ["predict", "--baseline", "resnet18"],
        (f"{RESNET}.parquet", "t4"),
        table_file(f"{RESNET}.parquet", meta={"device": "t4"}, folder=lambda w: user_tables_dir()),
    ),
    Case(
        "search-mislabelled-user-table",
        [*SEARCH, *TARGET, "--space", "resnet"],
        (f"{RESNET}.parquet", "t4"),
        table_file(f"{RESNET}.parquet", meta={"device": "t4"}, folder=lambda w: user_tables_dir()),
    ),
    Case(
        "search-table-of-other-device",
        [*SEARCH, *TARGET, "--space", "resnet", "--table", "bad.parquet"],
        ("bad.parquet", "t4", "--device t4"),
        table_file(meta={"device": "t4"}),
    ),
    Case(
        "show-user-table-hides-shipped",
        ["tables", "show", RESNET],
        ("latency_ms", str(Path("home"))),
        user_table_hiding_shipped,
    ),
    Case(
        "check-user-table-hides-shipped",
        ["tables", "check", RESNET, "--space", "resnet"],
        ("latency_ms", str(Path("home"))),
        user_table_hiding_shipped,
    ),
    Case(
        "predict-table-folder", ["predict", "--baseline", "resnet18", "--table", "."], ("folder",)
    ),
    Case(
        "predict-precision-typo",
        ["predict", "--baseline", "mobilenetv2", "--device", "cpu", "--precision", "fp322"],
        ("fp322", "Did you mean 'fp32'"),
    ),
    Case(
        "predict-table-missing",
        ["predict", "--baseline", "resnet18", "--table", "t.parquet"],
        ("t.parquet", "tables list"),
    ),
    # --- values ----------------------------------------------------------------------------
    Case("latency-inf", [*SEARCH, "--latency-ms", "inf"], ("latency_ms", "inf")),
    Case("latency-nan", [*SEARCH, "--latency-ms", "nan"], ("latency_ms", "nan")),
    Case("latency-zero", [*SEARCH, "--latency-ms", "0"], ("latency_ms", "0")),
    Case("latency-negative", [*SEARCH, "--latency-ms", "-6"], ("latency_ms", "-6")),
    Case("latency-word", [*SEARCH, "--latency-ms", "six"], ("--latency-ms", "--help")),
    Case("latency-missing", [*SEARCH], ("--latency-ms",)),
    Case("seed-negative", [*SEARCH, *TARGET, "--seed", "-1"], ("seed", "-1")),
    Case("seed-huge", [*SEARCH, *TARGET, "--seed", str(2**40)], ("seed", str(2**40))),
    Case("budget-zero", [*SEARCH, *TARGET, "--budget", "0"], ("budget", "0")),
    Case("budget-negative", [*SEARCH, *TARGET, "--budget", "-3"], ("budget", "-3")),
    Case("memory-negative", [*SEARCH, *TARGET, "--memory-mb", "-1"], ("memory_mb", "-1")),
    Case("memory-nan", [*SEARCH, *TARGET, "--memory-mb", "nan"], ("memory_mb", "nan")),
    Case("precision-typo", [*SEARCH, *TARGET, "--precision", "fp322"], ("fp322", "fp32")),
    Case("precision-not-offered", [*SEARCH, *TARGET, "--precision", "fp16"], ("fp16", "cpu")),
    Case("resolution-negative", [*SEARCH, *TARGET, "--resolution", "-224"], ("-224", ">= 8")),
    Case("resolution-zero", [*SEARCH, *TARGET, "--resolution", "0"], ("resolution 0",)),
    Case("resolution-odd", [*SEARCH, *TARGET, "--resolution", "225"], ("225", "rlnas profile")),
    Case("resolution-no-table", [*SEARCH, *TARGET, "--resolution", "160"], ("160", "profile")),
    Case("device-typo", [*SEARCH, *TARGET, "--device", "xavier"], ("xavier", "xavier-nx")),
    Case("space-typo", [*SEARCH, *TARGET, "--space", "mobilnet"], ("mobilnet", "mobilenet")),
    Case("space-no-table", [*SEARCH, *TARGET, "--space", "nb201"], ("nb201", "rlnas profile")),
    Case("strategy-typo", [*SEARCH, *TARGET, "--strategy", "evolutoin"], ("evolutoin",)),
    Case("reward-typo", [*SEARCH, *TARGET, "--reward", "hardd"], ("hardd", "hard")),
    Case("proxy-typo", [*SEARCH, *TARGET, "--proxy", "synflw"], ("synflw", "synflow")),
    Case(
        "evolution-sample-size",
        ["search", "--strategy", "evolution", *TARGET, "--evolution-sample-size", "50"],
        ("sample_size",),
    ),
    Case(
        "ppo-minibatches",
        ["train-controller", *TARGET, "--ppo-minibatches", "3"],
        ("minibatches",),
    ),
    Case("unknown-option", [*SEARCH, *TARGET, "--latncy-ms", "5"], ("--latncy-ms",)),
    Case("unknown-latency-source", [*SEARCH, *TARGET, "--latency", "5"], ("'5'", "table")),
    Case("unknown-command", ["serach"], ("serach", "search")),
    Case(
        "predict-resolution-zero",
        ["predict", "--baseline", "mobilenetv2", "--resolution", "0"],
        ("resolution 0",),
    ),
    Case("predict-unknown-token", ["predict", "relu|c16:ir_k9_e1"], ("ir_k9_e1",)),
    Case("predict-garbage", ["predict", "hello"], ("hello",)),
    Case("predict-unknown-baseline", ["predict", "--baseline", "mobilenetv9"], ("mobilenetv9",)),
    Case("predict-nothing", ["predict"], ("--baseline",)),
    Case("predict-device-typo", ["predict", "--baseline", "resnet18", "--device", "gpu"], ("gpu",)),
    Case("spaces-typo", ["spaces", "mobilnet"], ("mobilnet", "mobilenet")),
    Case("spaces-resolution", ["spaces", "nb201", "--resolution", "-1"], ("resolution -1",)),
    Case("profile-precision-typo", ["profile", "--precision", "fp322"], ("fp322", "fp32")),
    Case("profile-resolution", ["profile", "--resolution", "-224"], ("-224",)),
    Case("profile-batch-zero", ["profile", "--batch", "0"], ("batch", "0")),
    Case("profile-seed-negative", ["profile", "--seed", "-1"], ("seed", "-1")),
    Case("profile-limit-zero", ["profile", "--limit", "0"], ("limit", "0")),
    Case("profile-space-file-missing", ["profile", "--space", "my.toml"], ("my.toml",)),
    Case(
        "profile-bad-space-file",
        ["profile", "--space", "my.toml"],
        ("my.toml",),
        file("my.toml", b"[[x"),
    ),
    Case("estimate-cpu", ["tables", "estimate", "--device", "cpu"], ("cpu",)),
    Case(
        "estimate-fp32", ["tables", "estimate", "--device", "t4", "--precision", "fp32"], ("fp32",)
    ),
    Case(
        "estimate-resolution",
        ["tables", "estimate", "--device", "t4", "--resolution", "0"],
        ("resolution 0",),
    ),
    Case("format-typo", ["devices", "--format", "xml"], ("xml",)),
    # --- accuracy and latency files --------------------------------------------------------
    *[
        Case(
            f"accuracy-file-{label}",
            [
                *SEARCH,
                *TARGET,
                "--space",
                "nb201",
                "--latency-file",
                "lat.csv",
                "--latency-column",
                "ms",
                "--accuracy-file",
                name,
                "--accuracy-column",
                "acc",
            ],
            names,
            both(
                frame_file("lat.csv", pd.DataFrame({"arch_index": range(3), "ms": [1.0, 2, 3]})),
                setup,
            ),
        )
        for label, name, setup, names in [
            ("missing", "acc.csv", nothing, ("acc.csv",)),
            (
                "garbage-csv",
                "acc.csv",
                file("acc.csv", b'\x00\xff\x00garbage\n"unclosed'),
                ("acc.csv",),
            ),
            ("empty-csv", "acc.csv", file("acc.csv", b""), ("acc.csv",)),
            (
                "no-key",
                "acc.csv",
                frame_file("acc.csv", pd.DataFrame({"acc": [1.0]})),
                ("arch_index",),
            ),
            (
                "no-column",
                "acc.csv",
                frame_file("acc.csv", pd.DataFrame({"arch_index": [0], "top1": [1.0]})),
                ("acc", "top1"),
            ),
            (
                "text-column",
                "acc.csv",
                frame_file("acc.csv", pd.DataFrame({"arch_index": [0], "acc": ["high"]})),
                ("acc", "numbers"),
            ),
            (
                "text-keys",
                "acc.csv",
                frame_file("acc.csv", pd.DataFrame({"arch_index": ["a"], "acc": [1.0]})),
                ("arch_index",),
            ),
            (
                "duplicate-keys",
                "acc.csv",
                frame_file("acc.csv", pd.DataFrame({"arch_index": [0, 0], "acc": [1.0, 2.0]})),
                ("repeated",),
            ),
            (
                "over-100",
                "acc.csv",
                frame_file("acc.csv", pd.DataFrame({"arch_index": [0, 1], "acc": [50.0, 250.0]})),
                ("acc", "250"),
            ),
            (
                "negative",
                "acc.csv",
                frame_file("acc.csv", pd.DataFrame({"arch_index": [0, 1], "acc": [0.5, -0.1]})),
                ("acc", "-0.1"),
            ),
            ("txt", "acc.txt", file("acc.txt", b"0,1\n"), ("acc.txt", ".csv")),
            ("parquet-text", "acc.parquet", file("acc.parquet", b"hello"), ("acc.parquet",)),
            ("folder", "sub", file("sub/x", b""), ("sub",)),
        ]
    ],
    Case(
        "accuracy-unit-typo",
        [*SEARCH, *TARGET, "--accuracy-unit", "percents"],
        ("percents", "percent"),
    ),
    Case(
        "fraction-unit-on-percent",
        [
            *SEARCH,
            *TARGET,
            "--space",
            "nb201",
            "--latency-file",
            "acc.csv",
            "--latency-column",
            "acc",
            "--accuracy-file",
            "acc.csv",
            "--accuracy-column",
            "acc",
            "--accuracy-unit",
            "fraction",
        ],
        ("acc", "fraction"),
        frame_file("acc.csv", NB_ACC),
    ),
    Case(
        "latency-file-negative",
        [
            *SEARCH,
            *TARGET,
            "--space",
            "nb201",
            "--latency-file",
            "lat.csv",
            "--latency-column",
            "ms",
            "--accuracy-file",
            "lat.csv",
            "--accuracy-column",
            "acc",
        ],
        ("ms", "negative"),
        frame_file(
            "lat.csv", pd.DataFrame({"arch_index": [0, 1], "ms": [1.0, -2.0], "acc": [0.5, 0.6]})
        ),
    ),
    Case(
        "latency-file-no-column",
        [*SEARCH, *TARGET, "--space", "nb201", "--latency-file", "lat.csv"],
        ("--latency-column",),
        frame_file("lat.csv", pd.DataFrame({"arch_index": [0, 1], "ms": [1.0, 2.0]})),
    ),
    Case(
        "data-missing", [*SEARCH, *TARGET, "--proxy", "snip", "--data", "none.npz"], ("none.npz",)
    ),
    Case(
        "data-not-npz",
        [*SEARCH, *TARGET, "--proxy", "snip", "--data", "d.npz"],
        ("d.npz",),
        file("d.npz", b"not an archive"),
    ),
]


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_at_least_100_cases():
    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_clean_error_and_nothing_changed(case, base_run, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("RLNAS_HOME", str(work / "home"))
    monkeypatch.chdir(work)
    case.setup(work, base_run)
    before = snapshot(work)

    result = runner.invoke(app, case.args)

    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for name in case.names:
        assert name in lines[0], f"{name!r} not in: {lines[0]}"
    assert snapshot(work) == before, "a file was changed, added or removed"


# ---------------------------------------------------------------------------
# Careless input that must give the correct result.


def test_force_replaces_an_existing_export(base_run, tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"my model")
    result = runner.invoke(app, ["export", str(base_run), "--out", str(target), "--force"])
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] != b"my model" and target.stat().st_size > 1000


def test_piped_listings_never_cut_names():
    """Output to a pipe is not a terminal: names stay whole even at 80 columns."""
    result = runner.invoke(app, ["tables", "list"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    stems = [p.stem for p in shipped_tables_dir().glob("*.parquet")]
    for stem in stems:
        assert stem in result.output
    assert "…" not in result.output
    assert "onnxruntime" in result.output and "intel-cpu_bf16_mobilenet_224_b1" in result.output


@pytest.mark.parametrize(
    "command", [["tables", "list"], ["devices"], ["spaces"], ["spaces", "nb201"]]
)
def test_listings_as_csv_and_json(command):
    as_csv = runner.invoke(app, [*command, "--format", "csv"])
    as_json = runner.invoke(app, [*command, "--format", "json"])
    assert as_csv.exit_code == 0 and as_json.exit_code == 0

    frame = pd.read_csv(io.StringIO(as_csv.stdout))
    records = json.loads(as_json.stdout)
    assert len(frame) == len(records) > 0
    assert list(frame.columns) == list(records[0])


def test_predict_as_json_keeps_the_whole_architecture():
    arch = (
        "relu|c64:basic_k3,basic_k3,skip|c128:basic_k3,basic_k3,skip,skip|"
        "c256:basic_k3,basic_k3,skip,skip,skip,skip|c512:basic_k3,basic_k3,skip"
    )
    result = runner.invoke(app, ["predict", arch, "--space", "resnet", "--format", "json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["architecture"] == arch and row["predicted_ms"] > 0


def test_user_table_with_a_shipped_name_is_the_one_shown_and_used(tmp_path):
    table = load_table(shipped_tables_dir() / f"{RESNET}.parquet")
    frame = table.frame.copy()
    frame["latency_ms"] *= 2
    mine = user_tables_dir() / f"{RESNET}.parquet"
    save_table(table.meta, frame, mine)
    shown = runner.invoke(app, ["tables", "show", RESNET])
    assert shown.exit_code == 0
    assert str(mine) in shown.stdout
    listed = runner.invoke(app, ["tables", "list", "--format", "json"])
    rows = {(r["table"], r["origin"]): r for r in json.loads(listed.stdout)}
    assert rows[(RESNET, "user")]["status"] == "ok"
    assert rows[(RESNET, "shipped")]["status"] == "hidden by the user's table"
    predicted = runner.invoke(app, ["predict", "--baseline", "resnet18", "--format", "json"])
    assert json.loads(predicted.stdout)[0]["table"] == str(mine)


def test_accuracy_unit_is_decided_once_per_column(tmp_path):
    """Chance-level cells of a percent column (0.5%) are 0.005, not 50%."""
    from rlnas.model.arch import Architecture
    from rlnas.search.sources import BenchmarkAccuracy

    path = tmp_path / "acc.csv"
    NB_ACC.to_csv(path, index=False)
    source = BenchmarkAccuracy(path, "acc")
    assert source.unit == "percent"
    low = Architecture.from_index(1, "nb201")
    assert source.accuracy(low) == pytest.approx(0.005)
    assert source.accuracy(Architecture.from_index(0, "nb201")) == pytest.approx(0.91)
    fractions = tmp_path / "fractions.csv"
    pd.DataFrame({"arch_index": [0, 1], "acc": [0.91, 0.005]}).to_csv(fractions, index=False)
    assert BenchmarkAccuracy(fractions, "acc").accuracy(low) == pytest.approx(0.005)
    assert BenchmarkAccuracy(path, "acc", "percent").accuracy(low) == pytest.approx(0.005)


def test_nan_table_never_reaches_a_reward(tmp_path):
    """The issue's case: a search on a table with a NaN used to write NaN rewards."""
    bad = tmp_path / "bad.parquet"
    table_file(rows=set_value("latency_ms", math.nan))(tmp_path, tmp_path)
    from rlnas.errors import TableError

    with pytest.raises(TableError, match="latency_ms"):
        run_search(
            SearchConfig(latency_ms=20, strategy="random", budget=2, space="resnet", table=bad),
            tmp_path / "run",
        )
    assert not (tmp_path / "run").exists()
    assert np.isnan(pd.read_parquet(bad)["latency_ms"]).any()  # the user's file is untouched
