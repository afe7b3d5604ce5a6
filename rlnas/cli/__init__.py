"""The `rlnas` command line. Each command parses its arguments and calls the library."""

from __future__ import annotations

import functools
import inspect
import typing
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rlnas import __version__
from rlnas.errors import EstimatedTableWarning, RlnasError
from rlnas.hardware.catalog import default_precision, find_tables, locate_table, resolve_table

app = typer.Typer(
    help="Hardware-aware neural architecture search with per-device latency tables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()


def _fail(exc: RlnasError) -> typer.Exit:
    """Prints a user error as one line and returns the exit to raise."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=2)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rlnas {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Hardware-aware neural architecture search with per-device latency tables."""


@app.command()
def spaces(
    name: Annotated[
        str | None, typer.Argument(help="A space name or a space file (.toml): show its decisions.")
    ] = None,
    resolution: Annotated[
        int | None,
        typer.Option(help="Input resolution for counting layers (default: each space's own)."),
    ] = None,
) -> None:
    """List the search spaces, or show one space's decisions."""
    from rlnas.model.baselines import BASELINES
    from rlnas.model.layers import enumerate_layers
    from rlnas.model.space import get_space, list_spaces

    try:
        if name is None:
            table = Table(title="search spaces")
            for column in (
                "space",
                "kind",
                "decisions",
                "architectures",
                "resolution",
                "unique layers",
                "description",
            ):
                table.add_column(column)
            for space_name in list_spaces():
                space = get_space(space_name)
                layers = enumerate_layers(space, resolution)
                table.add_row(
                    space.name,
                    space.kind,
                    str(space.num_decisions),
                    _count(space.size),
                    str(resolution or space.resolution),
                    str(len(layers)),
                    space.description,
                )
            console.print(table)
            return
        space = get_space(name)
        layers = enumerate_layers(space, resolution)
    except RlnasError as exc:
        raise _fail(exc) from None
    console.print(f"[bold]{space.name}[/bold] ({space.kind}): {space.description}")
    console.print(
        f"{space.num_decisions} decisions, {_count(space.size)} architectures, "
        f"{len(layers)} unique layers at {resolution or space.resolution}px, "
        f"digest {space.digest}"
    )
    table = Table()
    table.add_column("#")
    table.add_column("decision")
    table.add_column("choices")
    for i, decision in enumerate(space.decisions):
        table.add_row(str(i), decision.name, " ".join(decision.tokens))
    console.print(table)
    members = [b for b in BASELINES.values() if b.space == space.name]
    for baseline in members:
        console.print(f"baseline {baseline.name}: {baseline.arch}")


@app.command()
def devices() -> None:
    """List target devices, their backends and precisions, and what each needs here."""
    from rlnas.hardware.devices import DEVICES

    table = Table(title="devices")
    for column in ("device", "backend", "precisions", "needs", "usable here"):
        table.add_column(column)
    for device in DEVICES.values():
        missing = device.missing()
        table.add_row(
            device.name,
            device.backend,
            ", ".join(device.precisions),
            device.hardware,
            "yes" if missing is None else f"no: {missing}",
        )
    console.print(table)


@app.command()
def profile(
    device: Annotated[str, typer.Option(help="Target device (see `rlnas devices`).")] = "cpu",
    precision: Annotated[
        str | None, typer.Option(help="fp32, bf16, fp16 or int8 (default: fp32).")
    ] = None,
    space: Annotated[str, typer.Option(help="Space name or space file.")] = "mobilenet",
    resolution: Annotated[
        int | None, typer.Option(help="Input resolution (default: the space's).")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Batch size.")] = 1,
    threads: Annotated[int, typer.Option(min=1, help="Intra-op threads on CPUs.")] = 1,
    out: Annotated[
        Path | None, typer.Option(help="Output table (default: ~/.rlnas/tables/<name>.parquet).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Measure at most this many new layers.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the layer count and an estimated time only.")
    ] = False,
    allow_other_device: Annotated[
        bool,
        typer.Option(
            "--allow-other-device",
            help="Measure a GPU device's table on another GPU (recorded as such).",
        ),
    ] = False,
) -> None:
    """Measure every layer of a space on a device into a lookup table; resumes if interrupted."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from rlnas.hardware.profile import ProfileConfig, plan_profile
    from rlnas.hardware.profile import profile as run_profile

    config = ProfileConfig(
        device=device,
        precision=precision,
        space=space,
        resolution=resolution,
        batch=batch,
        threads=threads,
        out=out,
        limit=limit,
        allow_other_device=allow_other_device,
    )
    try:
        plan = plan_profile(config)
        typer.echo(
            f"{plan.out}: {plan.total} layers in the space, {plan.done} measured, "
            f"{len(plan.todo)} to measure now (about {_duration(plan.estimated_s)})"
        )
        if dry_run:
            return
        with Progress(
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

            result = run_profile(config, progress=advance)
    except RlnasError as exc:
        raise _fail(exc) from None
    state = "complete" if result.complete else "partial (rerun to continue)"
    typer.echo(
        f"wrote {result.out}: {result.rows} rows, {state}; measured {result.measured} in "
        f"{result.wall_s:.1f} s ({result.unstable} flagged unstable)"
    )


PrecisionOpt = Annotated[
    str | None,
    typer.Option(help="Precision of the lookup table (default: the device's first with a table)."),
]


@app.command()
def predict(
    arch: Annotated[
        list[str] | None, typer.Argument(help="Architecture strings of the space.")
    ] = None,
    baseline: Annotated[
        list[str] | None, typer.Option(help="A baseline by name (repeatable), e.g. mobilenetv2.")
    ] = None,
    device: Annotated[str, typer.Option(help="Target device.")] = "cpu",
    precision: PrecisionOpt = None,
    space: Annotated[str, typer.Option(help="Space of the architecture strings.")] = "mobilenet",
    resolution: Annotated[int | None, typer.Option(help="Resolution (default: space's).")] = None,
    table: Annotated[
        str | None, typer.Option(help="Table name or file (default: by device and precision).")
    ] = None,
) -> None:
    """Predict architectures' latency on a device from its lookup table."""
    from rlnas.hardware.table import LatencyTable, load_table
    from rlnas.model.arch import Architecture
    from rlnas.model.baselines import get_baseline
    from rlnas.model.network import build_network, count_params

    try:
        targets = [(text, Architecture.decode(text, space)) for text in arch or []]
        targets += [(name, get_baseline(name).architecture()) for name in baseline or []]
        if not targets:
            raise RlnasError("give architecture strings or --baseline NAME (e.g. mobilenetv2)")
        rows = []
        tables: dict[Path, LatencyTable] = {}
        for label, target in targets:
            res = resolution or target.space.resolution
            if table is not None:
                path = resolve_table(table)
            else:
                chosen = precision or default_precision(device, target.space.name, res)
                _, path = locate_table(device, chosen, target.space.name, res)
            if path not in tables:
                tables[path] = load_table(path)
            loaded = tables[path]
            latency = loaded.predict_ms(target)
            params = count_params(build_network(target, res))
            rows.append((label, target.space.name, path.stem, latency, params))
    except RlnasError as exc:
        raise _fail(exc) from None
    out = Table(title=f"predicted latency on {device}")
    for column in ("architecture", "space", "table", "predicted ms", "params"):
        out.add_column(column)
    for label, space_name, stem, latency, params in rows:
        shown = label if len(label) <= 40 else label[:37] + "..."
        out.add_row(shown, space_name, stem, f"{latency:.3f}", f"{params:,}")
    console.print(out)


# Options shared by `search` and `train-controller`.
LatencyMs = Annotated[float, typer.Option("--latency-ms", help="Latency target T in ms.")]
DeviceOpt = Annotated[str, typer.Option(help="Target device (picks the lookup table).")]
SpaceOpt = Annotated[str, typer.Option(help="Space name or space file.")]
RewardOpt = Annotated[str, typer.Option(help="mnas, tunas or hard.")]
ProxyOpt = Annotated[str, typer.Option(help="Accuracy proxy, or ensemble.")]
DataOpt = Annotated[Path | None, typer.Option(help="Images for data proxies (.npz/folder).")]
BudgetOpt = Annotated[int, typer.Option(min=1, help="Unique architectures to evaluate.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the strategy.")]
OutOpt = Annotated[Path | None, typer.Option(help="Run folder (default: runs/<name>).")]
TableOpt = Annotated[Path | None, typer.Option(help="Use this table file instead.")]
MemoryOpt = Annotated[float | None, typer.Option(help="Limit on parameter MB.")]
FileOpt = Annotated[Path | None, typer.Option(help="Benchmark file (.parquet/.csv).")]
ColumnOpt = Annotated[str | None, typer.Option(help="Column of that file.")]


@app.command()
def search(
    latency_ms: LatencyMs,
    strategy: Annotated[str, typer.Option(help="ppo, random or evolution.")] = "random",
    device: DeviceOpt = "cpu",
    precision: PrecisionOpt = None,
    space: SpaceOpt = "mobilenet",
    reward: RewardOpt = "mnas",
    proxy: ProxyOpt = "synflow",
    data: DataOpt = None,
    budget: BudgetOpt = 1000,
    seed: SeedOpt = 0,
    out: OutOpt = None,
    table: TableOpt = None,
    memory_mb: MemoryOpt = None,
    accuracy_file: FileOpt = None,
    accuracy_column: ColumnOpt = None,
    latency_file: FileOpt = None,
    latency_column: ColumnOpt = None,
) -> None:
    """Search with a strategy: ppo (the controller), random or evolution; writes a run folder."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from rlnas.search.run import SearchConfig, run_search

    try:
        config = SearchConfig(
            latency_ms=latency_ms,
            strategy=strategy,
            device=device,
            precision=precision,
            space=space,
            reward=reward,
            proxy=proxy,
            data=data,
            budget=budget,
            seed=seed,
            table=table,
            memory_mb=memory_mb,
            accuracy_file=accuracy_file,
            accuracy_column=accuracy_column or "cifar10_test_acc",
            latency_file=latency_file,
            latency_column=latency_column,
        )
        with Progress(
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("", total=config.budget)
            with warnings.catch_warnings():
                # Said once, as a note, not as a Python warning with a source line.
                warnings.simplefilter("always", EstimatedTableWarning)
                warnings.showwarning = lambda message, *args, **kwargs: bar.console.print(
                    f"note: {message}", markup=False, highlight=False
                )
                result = run_search(
                    config, out, progress=lambda done, total: bar.update(task, completed=done)
                )
    except RlnasError as exc:
        raise _fail(exc) from None
    frame = result.evaluations
    within = frame[frame["feasible"] & (frame["latency_ms"] <= config.latency_ms)]
    best = within.sort_values("accuracy").iloc[-1] if len(within) else None
    typer.echo(
        f"run folder {result.out}: {len(frame)} architectures evaluated"
        + (f" ({result.replayed} reused from the interrupted run)" if result.replayed else "")
    )
    typer.echo(f"Pareto front: {len(result.pareto)} architectures (pareto.parquet, pareto.png)")
    if best is None:
        typer.echo(f"no architecture within {config.latency_ms:g} ms was found")
    else:
        typer.echo(
            f"most accurate within {config.latency_ms:g} ms: score {best['accuracy']:.4f}, "
            f"{best['latency_ms']:.3f} ms, {best['params']:,} params: {best['arch']}"
        )


def _controller_command() -> Callable[..., None]:
    """`search` with the strategy fixed to ppo (same options, same run folder)."""
    signature = inspect.signature(search)
    hints = typing.get_type_hints(search, include_extras=True)
    parameters = [
        p.replace(annotation=hints[p.name])
        for p in signature.parameters.values()
        if p.name != "strategy"
    ]

    @functools.wraps(search)
    def train_controller(**settings: Any) -> None:
        search(strategy="ppo", **settings)

    train_controller.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=parameters, return_annotation=None
    )
    del train_controller.__wrapped__
    train_controller.__annotations__ = {p.name: p.annotation for p in parameters}
    return train_controller


app.command(
    "train-controller",
    help="Train the PPO controller on a device's latency table; writes a run folder.",
)(_controller_command())


RunArg = Annotated[Path, typer.Argument(help="A run folder (written by search/train-controller).")]


@app.command("measure")
def measure_command(
    run: RunArg,
    device: Annotated[str, typer.Option(help="Device to measure on.")] = "cpu",
    precision: Annotated[
        str | None, typer.Option(help="Precision (default: the run's own).")
    ] = None,
    top: Annotated[int, typer.Option(min=0, help="Best candidates to measure (by reward).")] = 5,
    baselines: Annotated[
        bool, typer.Option(help="Also measure MobileNetV2, EfficientNet-B0 and ResNet-18.")
    ] = True,
    threads: Annotated[int, typer.Option(min=1, help="Intra-op threads (CPU backends).")] = 1,
    passes: Annotated[int, typer.Option(min=1, help="Timing passes per network.")] = 2,
) -> None:
    """Compile and time a run's best candidates and the baselines end to end; write the report."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from rlnas.results.measure import MeasureConfig, measure_run

    config = MeasureConfig(
        device=device,
        precision=precision,
        top=top,
        baselines=baselines,
        threads=threads,
        passes=passes,
    )
    try:
        with Progress(
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
    except RlnasError as exc:
        raise _fail(exc) from None
    for _, row in frame.sort_values("measured_ms").iterrows():
        typer.echo(
            f"{row['name']:>16}  predicted {row['predicted_ms']:7.2f} ms  measured "
            f"{row['measured_ms']:7.2f} ms  error {row['error_pct']:+6.1f}%  "
            f"score {row['score']:.3f}"
        )
    typer.echo(f"results: {run / 'measured.parquet'}; report: {run / 'report.md'}, report.png")


@app.command("report")
def report_command(run: RunArg) -> None:
    """Write the report (report.md, report.png) of a measured run."""
    from rlnas.results.report import write_report

    try:
        markdown, figure = write_report(run)
    except RlnasError as exc:
        raise _fail(exc) from None
    typer.echo(f"wrote {markdown} and {figure}")


@app.command("export")
def export_command(
    run: RunArg,
    rank: Annotated[int, typer.Option(min=1, help="Rank in the run (1 = best reward).")] = 1,
    format: Annotated[str, typer.Option("--format", help="onnx, torch (.pt2) or json.")] = "onnx",
    out: Annotated[
        Path | None, typer.Option(help="Output file (default: RUN/export/rank<K>.<ext>).")
    ] = None,
) -> None:
    """Export the architecture at a rank of a run as ONNX, a torch.export program or JSON."""
    from rlnas.results.export import export_run

    try:
        path = export_run(run, rank, format, out)
    except RlnasError as exc:
        raise _fail(exc) from None
    typer.echo(f"wrote {path}")


tables_app = typer.Typer(help="List, show and check lookup tables.", no_args_is_help=True)
app.add_typer(tables_app, name="tables")


@tables_app.command("list")
def tables_list(
    directory: Annotated[
        list[Path] | None, typer.Option("--dir", help="Also list tables in this folder.")
    ] = None,
) -> None:
    """Shipped and user tables with their provenance."""
    from rlnas.hardware.table import read_meta

    table = Table(title="lookup tables")
    for column in (
        "table",
        "origin",
        "device",
        "backend",
        "precision",
        "space",
        "res",
        "batch",
        "source",
        "host",
        "created",
    ):
        table.add_column(column)
    for origin, path in find_tables(tuple(directory or ())):
        try:
            meta = read_meta(path)
        except RlnasError as exc:
            table.add_row(path.stem, origin, f"[red]unreadable: {exc}[/red]")
            continue
        table.add_row(
            path.stem,
            origin,
            meta.device,
            meta.backend,
            meta.precision,
            meta.space,
            str(meta.resolution),
            str(meta.batch),
            meta.source,
            meta.host,
            meta.created,
        )
    console.print(table)


@tables_app.command("show")
def tables_show(
    name: Annotated[str, typer.Argument(help="Table name (see `tables list`) or file.")],
) -> None:
    """A table's metadata and a summary of its rows."""
    from rlnas.hardware.table import load_table

    try:
        loaded = load_table(resolve_table(name))
    except RlnasError as exc:
        raise _fail(exc) from None
    for key, value in vars(loaded.meta).items():
        if key == "calibration":
            value = loaded.calibration.describe() if loaded.calibration else "none"
        typer.echo(f"{key:16} {value}")
    frame = loaded.frame
    typer.echo(f"{'rows':16} {len(frame)} ({int(frame['unstable'].sum())} flagged unstable)")
    summary = frame.groupby("op")["latency_ms"].describe()[["count", "min", "50%", "max"]]
    typer.echo(summary.to_string(float_format=lambda v: f"{v:.4f}"))


@tables_app.command("check")
def tables_check(
    name: Annotated[str, typer.Argument(help="Table name (see `tables list`) or file.")],
    space: Annotated[str, typer.Option(help="Space name or file it must cover.")] = "mobilenet",
    resolution: Annotated[int | None, typer.Option(help="Resolution it must cover.")] = None,
) -> None:
    """Check that a table is valid and covers a space; exit 1 if it does not."""
    from rlnas.hardware.table import load_table
    from rlnas.model.layers import enumerate_layers
    from rlnas.model.space import get_space

    try:
        loaded = load_table(resolve_table(name))
        target = get_space(space)
        loaded.check_space(target, resolution)
        keys = enumerate_layers(target, resolution)
        missing = loaded.missing(keys)
        if missing:
            raise loaded.missing_error(missing)
    except RlnasError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"ok: {loaded.path} covers all {len(keys)} layers of space '{target.name}'")


@tables_app.command("calibrate")
def tables_calibrate(
    name: Annotated[str, typer.Argument(help="Table name (see `tables list`) or file.")],
    archs: Annotated[int, typer.Option(min=3, help="Random networks to measure end to end.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of those networks.")] = 2026,
) -> None:
    """Fit a table's prediction to end-to-end measurements here; store it in the table."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from rlnas.results.measure import calibrate_table

    try:
        path = resolve_table(name)
        with Progress(
            BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
        ) as bar:
            task = bar.add_task("", total=archs)
            result = calibrate_table(
                path,
                archs,
                seed,
                progress=lambda done, total, arch: bar.update(task, completed=done),
            )
    except RlnasError as exc:
        raise _fail(exc) from None
    typer.echo(f"{path}: {result.calibration.describe()}")


@tables_app.command("estimate")
def tables_estimate(
    device: Annotated[str, typer.Option(help="t4 or xavier-nx.")],
    precision: Annotated[str, typer.Option(help="fp16 or int8.")] = "fp16",
    space: Annotated[str, typer.Option(help="Space name or file.")] = "mobilenet",
    resolution: Annotated[int | None, typer.Option(help="Resolution (default: space's).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output table file.")] = None,
    published: Annotated[
        Path | None,
        typer.Option(help="Published latencies CSV (default: the Deci white paper's, shipped)."),
    ] = None,
) -> None:
    """Write an estimated table (roofline model fitted on published latencies) for a device."""
    from rlnas.hardware.estimate import estimate_table

    try:
        path, calibrated = estimate_table(device, precision, space, resolution, 1, out, published)
    except RlnasError as exc:
        raise _fail(exc) from None
    typer.echo(calibrated.errors.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    typer.echo(f"wrote {path} (source: estimated; {calibrated.describe()})")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _count(n: int) -> str:
    return f"{n:,}" if n < 10**9 else f"{n:.3e}"


if __name__ == "__main__":
    app()
