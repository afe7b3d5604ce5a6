"""The commands of the pipeline: profile, search, train-controller, measure, report, export.

Options of profile, search, train-controller and measure are derived from
their config dataclasses (`rlnas.cli.options`).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rlnas.cli.common import console, duration, reports_errors
from rlnas.cli.options import argument, config_command, option
from rlnas.cli.progress import Bar
from rlnas.errors import EstimatedTableWarning, ForeignTableWarning
from rlnas.hardware.profile import ProfileConfig, plan_profile
from rlnas.hardware.profile import profile as run_profile
from rlnas.results.measure import MeasureConfig, measure_run
from rlnas.search.baseline import BaselineTarget, margin_note, parse_drop
from rlnas.search.config import SearchConfig
from rlnas.search.run_folder import MEASURED, REPORT

RunArg = Annotated[Path, typer.Argument(help="A run folder (written by search/train-controller).")]


def _profile(config: ProfileConfig, dry_run: bool = False) -> None:
    plan = plan_profile(config)
    typer.echo(
        f"{plan.out}: {plan.total} layers in the space, {plan.done} measured, "
        f"{len(plan.todo)} to measure now (about {duration(plan.estimated_s)})"
    )
    if dry_run:
        return
    with Bar(
        TextColumn("profiling"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=console,
    ) as bar:
        task = bar.add_task("", total=len(plan.todo))

        def advance(done: int, todo: int, key: object) -> None:
            bar.update(task, completed=done, description=f"{getattr(key, 'op', '')}")

        result = run_profile(
            config, progress=advance, notify=lambda line: bar.console.print(f"note: {line}")
        )
    state = "complete" if result.complete else "partial (rerun to continue)"
    typer.echo(
        f"wrote {result.out}: {result.rows} rows, {state}; measured {result.measured} in "
        f"{result.wall_s:.1f} s ({result.unstable} flagged unstable)"
    )


profile = reports_errors(
    config_command(
        ProfileConfig,
        _profile,
        extra=[
            option(
                "dry_run",
                bool,
                "Print the layer count and an estimated time only.",
                False,
                "--dry-run",
            )
        ],
        doc="Measure every layer of a space on a device into a lookup table; resumes if "
        "interrupted.",
    )
)


def calibrate_for_host(config: SearchConfig) -> None:
    """Adapts the search's table to this host first, with a progress bar, where it was
    measured on another host and this host has no adaptation of it yet."""
    from rich.progress import TextColumn, TimeElapsedColumn

    from rlnas.hardware.endtoend import calibrates_here, table_for_host
    from rlnas.hardware.host import load_host_fit
    from rlnas.hardware.table import read_meta
    from rlnas.model.space import get_space
    from rlnas.search.sources import table_path

    resolved = config.resolved()
    if not config.sources.table.calibrate or resolved.latency != "table":
        return
    path = table_path(resolved, get_space(config.space))
    meta = read_meta(path)
    if not calibrates_here(meta) or load_host_fit(meta) is not None:
        return
    console.print(
        f"adapting {meta.name} to this host (measured on {meta.host}); once per host, at most "
        f"{config.sources.table.calibration_seconds:.0f} s",
        highlight=False,
    )
    columns = (BarColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Bar(*columns, console=console, transient=True) as bar:
        task = bar.add_task("", total=config.sources.table.calibration_seconds)
        host = table_for_host(
            path,
            progress=lambda done, total, text: bar.update(task, completed=done, description=text),
            seconds=config.sources.table.calibration_seconds,
        )
    console.print(host.summary or f"calibration: {host.calibration}", highlight=False)


def _search(
    config: SearchConfig,
    out: Path | None = None,
    tensorboard: Path | None = None,
    ray_address: str | None = None,
) -> None:
    from rlnas.search.run import run_search

    calibrate_for_host(config)
    with Bar(
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("", total=config.budget)
        with warnings.catch_warnings():
            # Said once, as a note, not as a Python warning with a source line.
            warnings.simplefilter("always", EstimatedTableWarning)
            warnings.simplefilter("always", ForeignTableWarning)
            warnings.showwarning = lambda message, *args, **kwargs: bar.console.print(
                f"note: {message}", markup=False, highlight=False
            )
            result = run_search(
                config,
                out,
                progress=lambda done, total: bar.update(task, completed=done),
                tensorboard=tensorboard,
                ray_address=ray_address,
                notify=lambda line: bar.console.print(f"note: {line}", markup=False),
                status=lambda line: bar.update(task, description=escape(line)),
            )
    frame, best = result.evaluations, result.best
    config = result.config or config
    typer.echo(
        f"run folder {result.out}: {len(frame)} architectures evaluated"
        + (f" ({result.replayed} reused from the interrupted run)" if result.replayed else "")
    )
    if result.stopped:
        typer.echo(
            f"stopped early after {len(frame)} of {config.budget} architectures: {result.stopped}"
        )
    typer.echo(f"Pareto front: {len(result.pareto)} architectures (pareto.parquet, pareto.png)")
    if config.latency_min_ms is not None:
        front = result.pareto[result.pareto["feasible"]]
        for target in np.linspace(config.latency_min_ms, config.target_ms, 5):
            within = front[front["latency_ms"] <= target]
            typer.echo(
                f"  within {target:6.3g} ms: "
                + (
                    f"{config.score_name()} {within['accuracy'].max():.4f}"
                    if len(within)
                    else "none found"
                )
            )
    if result.baseline is not None:
        _baseline_summary(config, result.baseline, best)
    else:
        _best_summary(config, best)
    if best.get("utilization") is not None and not pd.isna(best["utilization"]):
        typer.echo(f"rank 1 uses the accelerator at {best['utilization']:.1%} (MAC-weighted)")


def _best_summary(config: SearchConfig, best: Any) -> None:
    within = bool(best["feasible"]) and best["latency_ms"] <= config.target_ms
    if not within:
        typer.echo(f"no architecture within {config.target_ms:g} ms was found")
    typer.echo(
        f"best (rank 1){' within ' + format(config.target_ms, 'g') + ' ms' if within else ''}: "
        f"{config.score_name()} {best['accuracy']:.4f}, {best['latency_ms']:.3f} ms, "
        f"{best['params']:,} params: {best['arch']}"
    )


def _baseline_summary(config: SearchConfig, a0: BaselineTarget, best: Any) -> None:
    typer.echo(
        f"baseline {a0.name}: {config.score_name()} {a0.accuracy:.4f}, {a0.latency_ms:.3f} ms; "
        f"floor {a0.accuracy_floor:.4f} ({a0.accuracy_drop:.1%} drop), limit "
        f"{a0.target_ms:.3f} ms"
    )
    if not bool(best["feasible"]):
        typer.echo(
            f"no architecture kept {a0.accuracy_floor:.4f} within {a0.target_ms:g} ms; closest "
            f"(rank 1): {best['accuracy']:.4f}, {best['latency_ms']:.3f} ms: {best['arch']}"
        )
        return
    typer.echo(
        f"fastest above the floor (rank 1): {best['latency_ms']:.3f} ms, "
        f"{a0.latency_ms / best['latency_ms']:.2f}x faster than {a0.name} (predicted), "
        f"{config.score_name()} {best['accuracy']:.4f}, {best['params']:,} params: "
        f"{best['arch']}; check it for real with `rlnas verify RUN`"
    )
    note = margin_note(config, a0, best["arch"], best["accuracy"])
    if note:
        typer.echo(f"note: {note}")


_OUT = option("out", Path | None, "Run folder (default: runs/<name>).", None)


def _latency_target(text: str | None) -> dict[str, Any]:
    """`6` -> one target; `4:12` -> every target from 4 to 12 ms in one run;
    `0.6x:mobilenetv2` -> 0.6 x that baseline's latency here; none (with --baseline):
    a0's latency."""
    targets: dict[str, Any] = dict.fromkeys(
        ("latency_ms", "latency_min_ms", "latency_factor", "latency_reference")
    )
    if text is None:
        return targets
    low, colon, high = text.partition(":")
    if low.strip().lower().endswith("x"):
        try:
            factor = float(low.strip()[:-1])
        except ValueError:
            factor = None
        if factor is None or not high.strip():
            raise typer.BadParameter(
                f"{text!r} is not a relative target: give FACTORx:BASELINE, e.g. 0.6x:mobilenetv2",
                param_hint="--latency-ms",
            )
        return {**targets, "latency_factor": factor, "latency_reference": high.strip()}
    try:
        values = [float(v) for v in ((low, high) if colon else (low,))]
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a target in ms: give one (6), a range (4:12) or a factor of "
            "a baseline (0.6x:mobilenetv2)",
            param_hint="--latency-ms",
        ) from None
    return {**targets, "latency_ms": values[-1], "latency_min_ms": values[0] if colon else None}


_LATENCY: dict[str, tuple[inspect.Parameter, Callable[[Any], dict[str, Any]]]] = {
    "latency_ms": (
        option(
            "latency_ms",
            str | None,
            "Latency target T in ms; or FACTORx:BASELINE (0.6x:mobilenetv2): that factor "
            "of the baseline's latency on this host's calibrated table, so the target "
            "means the same on every host; or a range LO:HI in ms: one controller for "
            "every target in it, and the Pareto front over the range (ppo only). "
            "Required, except with --baseline (default there: the baseline's own latency).",
            None,
            "--latency-ms",
        ),
        _latency_target,
    ),
    "accuracy_drop": (
        option(
            "accuracy_drop",
            str,
            "With --baseline: the accuracy a candidate may lose, as a percentage (1%) or a "
            "fraction (0.01) of the baseline's.",
            "1%",
            "--accuracy-drop",
        ),
        lambda text: {"accuracy_drop": parse_drop(text)},
    ),
}
_TENSORBOARD = option(
    "tensorboard",
    Path | None,
    "Log the PPO controller's training to this TensorBoard folder (pip install "
    "'rlnas\\[tensorboard]'; `tensorboard --logdir DIR`).",
    None,
)

_RAY = option(
    "ray_address",
    str | None,
    "A Ray cluster (or auto; default RAY_ADDRESS): batches of proposals are scored there in "
    "parallel, with the same evaluations as without it (pip install 'rlnas\\[ray]').",
    None,
)

search = reports_errors(
    config_command(
        SearchConfig,
        _search,
        exclude=["latency_min_ms", "latency_factor", "latency_reference"],
        parsed=_LATENCY,
        extra=[_OUT, _TENSORBOARD, _RAY],
        doc="Search with a strategy: ppo (the controller), random or evolution; writes a run "
        "folder.",
    )
)
train_controller = reports_errors(
    config_command(
        SearchConfig,
        _search,
        exclude=["strategy", "latency_min_ms", "latency_factor", "latency_reference"],
        fixed={"strategy": "ppo"},
        parsed=_LATENCY,
        extra=[_OUT, _TENSORBOARD, _RAY],
        doc="Train the PPO controller on a device's latency table; writes a run folder.",
    )
)


def _measure(config: MeasureConfig, run: Path) -> None:
    with Bar(
        BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"), console=console
    ) as bar:
        task = bar.add_task("", total=None)
        frame = measure_run(
            run,
            config,
            progress=lambda done, total, name: bar.update(
                task, completed=done, total=total, description=name
            ),
        )
    for _, row in frame.sort_values("measured_ms").iterrows():
        typer.echo(
            f"{row['name']:>16}  predicted {row['predicted_ms']:7.2f} ms  measured "
            f"{row['measured_ms']:7.2f} ms  error {row['error_pct']:+6.1f}%  "
            f"score {row['score']:.3f}"
        )
    typer.echo(f"results: {run / MEASURED}; report: {run / REPORT}, report.png")


measure = reports_errors(
    config_command(
        MeasureConfig,
        _measure,
        extra=[argument("run", Path, "A run folder (written by search/train-controller).")],
        doc="Compile and time a run's best candidates and the baselines end to end; write the "
        "report.",
    )
)


@reports_errors
def report(run: RunArg) -> None:
    """Write the report (report.md, report.png) of a measured run."""
    from rlnas.results.report import write_report

    markdown, figure = write_report(run)
    typer.echo(f"wrote {markdown} and {figure}")


@reports_errors
def export(
    run: RunArg,
    rank: Annotated[int, typer.Option(min=1, help="Rank in the run (1 = best).")] = 1,
    format: Annotated[str, typer.Option("--format", help="onnx, torch (.pt2) or json.")] = "onnx",
    out: Annotated[
        Path | None, typer.Option(help="Output file (default: RUN/export/rank<K>.<ext>).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
    weights: Annotated[
        Path | None,
        typer.Option(help="A finished `rlnas train` folder of this rank: export trained weights."),
    ] = None,
) -> None:
    """Export the architecture at a rank of a run as ONNX, a torch.export program or JSON
    (untrained weights, or trained ones with --weights)."""
    from rlnas.results.export import export_run

    path = export_run(run, rank, format, out, force, weights)
    typer.echo(f"wrote {path}{' with the weights of ' + str(weights) if weights else ''}")


def register(app: Any) -> None:
    app.command("profile")(profile)
    app.command("search")(search)
    app.command("train-controller")(train_controller)
    app.command("measure")(measure)
    app.command("report")(report)
    app.command("export")(export)
