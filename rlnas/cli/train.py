"""`rlnas train`: train an architecture (a string, a baseline, or a run's rank K) on image data;
`rlnas verify`: train and time a run's best candidates against the baselines."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

from rlnas.accuracy.recipe import Recipe
from rlnas.accuracy.training import ONNX, WEIGHTS, Trainer, read_result
from rlnas.cli.common import console, reports_errors
from rlnas.cli.options import argument, config_command, option
from rlnas.cli.progress import Bar
from rlnas.cluster import ray_address
from rlnas.errors import RlnasError
from rlnas.model.arch import Architecture
from rlnas.results.verify import VerifyConfig
from rlnas.search.run_folder import VERIFIED, VERIFIED_REPORT


def resolve_arch(
    arch: str | None, baseline: str | None, run: Path | None, rank: int, space: str
) -> Architecture:
    """The architecture named by exactly one of a string, a baseline, or a run and rank."""
    given = [
        name for name, value in (("ARCH", arch), ("--baseline", baseline), ("--run", run)) if value
    ]
    if len(given) != 1:
        raise RlnasError(
            "give exactly one of ARCH (a canonical string), --baseline NAME or --run RUN "
            f"[--rank K]; got {', '.join(given) or 'none'}"
        )
    if baseline:
        from rlnas.model.baselines import get_baseline

        return get_baseline(baseline).architecture()
    if run is not None:
        from rlnas.model.space import get_space
        from rlnas.search.run_folder import RunFolder

        folder = RunFolder.open(run)
        return Architecture.decode(
            str(folder.candidate(rank)["arch"]), get_space(folder.config.space)
        )
    return Architecture.decode(str(arch), space)


def _train(
    recipe: Recipe,
    arch: str | None = None,
    baseline: str | None = None,
    run: Path | None = None,
    rank: int = 1,
    space: str = "mobilenet",
    data: Path | None = None,
    out: Path | None = None,
    device: str = "cpu",
    cluster: str | None = None,
) -> None:
    if data is None:
        raise RlnasError("--data is required: an .npz (x_train, y_train) or an image folder")
    target = resolve_arch(arch, baseline, run, rank, space)
    name = baseline or (f"{Path(run).name}-rank{rank}" if run else f"arch-{target.index % 10**8}")
    out = out or Path("runs") / "train" / f"{name}-e{recipe.epochs}-s{recipe.seed}"
    trainer = Trainer(target, data, recipe, out, device)
    address = ray_address(cluster)
    if address and read_result(out) is None:
        from rlnas import cluster as ray_cluster
        from rlnas.accuracy.trained import train_on_cluster

        pool = functools.partial(ray_cluster.run_tasks, ray_cluster.connect(address))
        typer.echo(f"training {name} on the Ray cluster at {address} ({recipe.epochs} epochs)")
        with console.status("training on the cluster"):
            list(train_on_cluster(pool, [(target, out)], data, recipe, device, trainer.data))
        # The folder is now a finished one: the loop below only reads it and reports.
    typer.echo(
        f"training {name} ({target.space.name}) on {data}: {len(trainer.split.train_y)} training "
        f"and {len(trainer.split.val_y)} validation images, {trainer.split.num_classes} classes, "
        f"{recipe.resolution}px, {recipe.epochs} epochs of {trainer.steps_per_epoch} steps"
    )
    with Bar(
        TextColumn("epoch {task.fields[epoch]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("", total=recipe.epochs * trainer.steps_per_epoch, epoch=1)

        def advance(epoch: int, step: int, steps: int) -> None:
            bar.update(task, completed=epoch * steps + step, epoch=epoch + 1)

        def report(result: Any) -> None:
            bar.console.print(
                f"epoch {result.epoch}/{recipe.epochs}: train loss {result.train_loss:.3f}, "
                f"train top-1 {result.train_top1:.3f}, val top-1 {result.val_top1:.3f}, "
                f"lr {result.lr:.4f}, {result.images_per_s:.0f} img/s",
                highlight=False,
            )

        history = trainer.train(advance, report)
    last, result = history[-1], read_result(out) or {}
    test = f", test top-1 {result['test_top1']:.4f}" if "test_top1" in result else ""
    typer.echo(
        f"validation top-1 {last.val_top1:.4f}{test} after {last.epoch} epochs; folder {out} "
        f"({WEIGHTS}, {ONNX}, history.parquet, result.json)"
    )


train = reports_errors(
    config_command(
        Recipe,
        _train,
        extra=[
            argument("arch", str | None, "A canonical architecture string.", None),
            option(
                "baseline", str | None, "A baseline by name (e.g. mobilenetv2).", None, "--baseline"
            ),
            option(
                "run", Path | None, "A run folder: train its architecture at --rank.", None, "--run"
            ),
            option("rank", int, "Rank in --run (1 = best).", 1, "--rank"),
            option("space", str, "Space of ARCH.", "mobilenet", "--space"),
            option(
                "data",
                Path | None,
                "Images: an .npz (x_train, y_train) or a folder.",
                None,
                "--data",
            ),
            option(
                "out", Path | None, "Training folder (default runs/train/<name>).", None, "--out"
            ),
            option("device", str, "cpu or cuda (AMP and channels_last).", "cpu", "--device"),
            option(
                "cluster",
                str | None,
                "A Ray cluster (or auto; default RAY_ADDRESS): train there, on a node with a "
                "GPU for cuda; the finished folder comes back to --out.",
                None,
                "--ray-address",
            ),
        ],
        doc="Train an architecture on image data; resumes an interrupted training folder.",
    )
)


def _verify(config: VerifyConfig, run: Path) -> None:
    from rlnas.results.verify import verify_run

    if config.truth is not None:
        _truth(config, run)
        return

    with Bar(
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=console,
    ) as bar:
        task = bar.add_task("timing end to end", total=None)

        def notice(arch: Architecture, what: str) -> None:
            bar.update(task, description=f"{what} {arch.space.name} network")

        frame = verify_run(
            run,
            config,
            progress=lambda done, total, what: bar.update(
                task, completed=done, total=total, description=f"trained {what}"
            ),
            notice=notice,
            notify=lambda line: bar.console.print(f"note: {line}", markup=False),
            status=lambda line: bar.update(task, description=escape(line)),
        )
    for _, row in frame.sort_values("measured_ms").iterrows():
        held = row["constraint_held"]
        verdict = {True: "held at both", False: "MISSED"}.get(held, "not settled")
        typer.echo(
            f"{row['name']:>16}  measured {row['measured_ms']:7.2f} ms  trained top-1 "
            f"{row['top1_mean']:.4f} ({row['epochs']} epochs), {row['long_top1_mean']:.4f} "
            f"({row['long_epochs']} epochs), n={row['seeds']}"
            + ("" if row["held_short"] is None else f"  constraint {verdict}")
        )
    typer.echo(f"results: {run / VERIFIED}; report: {run / VERIFIED_REPORT}, verified.png")


def _truth(config: VerifyConfig, run: Path) -> None:
    from rlnas.results.truth import TRUTH, check_truth
    from rlnas.search.run_folder import RunFolder

    check = check_truth(RunFolder.open(run), config.truth or "", config.truth_file)
    for line in check.lines():
        typer.echo(line)
    typer.echo(f"results: {run / TRUTH}")


verify = reports_errors(
    config_command(
        VerifyConfig,
        _verify,
        extra=[argument("run", Path, "A run folder (written by search/train-controller).")],
        doc="Train a run's best candidates and the baselines (several seeds) and time them end "
        "to end; write verified.parquet and its report. Resumes after a kill.",
    )
)


def register(app: Any) -> None:
    app.command("train")(train)
    app.command("verify")(verify)
