"""`rlnas predictor fit`: a few-shot accuracy predictor from known accuracies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rlnas.cli.common import reports_errors
from rlnas.errors import RlnasError

predictor_app = typer.Typer(help="Few-shot accuracy predictors.", no_args_is_help=True)


@predictor_app.command("fit")
@reports_errors
def fit(
    out: Annotated[Path, typer.Option(help="The predictor file to write (.parquet).")],
    space: Annotated[str, typer.Option(help="Space name or file.")] = "mobilenet",
    from_file: Annotated[
        Path | None,
        typer.Option(help="Known accuracies: a benchmark file (arch_index or arch_str keyed)."),
    ] = None,
    column: Annotated[str, typer.Option(help="Its accuracy column.")] = "accuracy",
    unit: Annotated[str, typer.Option(help="Its unit: auto, percent or fraction.")] = "auto",
    sample: Annotated[
        int | None, typer.Option(help="Use a seeded sample of K rows of --from-file.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of --sample.")] = 0,
    trained: Annotated[
        Path | None,
        typer.Option(
            help="Known accuracies: finished `rlnas train` folders under this folder "
            "(default, without --from-file: the trained source's cache)."
        ),
    ] = None,
    proxy: Annotated[
        list[str] | None, typer.Option(help="A proxy to use as a feature (repeatable).")
    ] = None,
    data: Annotated[Path | None, typer.Option(help="Images for data-dependent proxies.")] = None,
    model: Annotated[
        str,
        typer.Option(
            help="ridge (Bayesian ridge), forest (a random forest), blend (their mean), or "
            "auto: the one that ranks held-out folds of the known networks best."
        ),
    ] = "auto",
    force: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Fit a predictor on known accuracies; search with it by `--predictor FILE`."""
    from rlnas.accuracy.predictor import FOLDS, MODELS
    from rlnas.files import check_output
    from rlnas.model.space import get_space
    from rlnas.search.sources.predictor import fit_predictor, known_from_file, known_from_trainings

    if from_file is not None and trained is not None:
        raise RlnasError("give --from-file or --trained, not both")
    if model not in (*MODELS, "auto"):
        raise RlnasError(f"unknown --model '{model}'; choose one of auto, {', '.join(MODELS)}")
    out = check_output(out, force)
    resolved = get_space(space)
    if from_file is not None:
        archs, accuracy = known_from_file(resolved, from_file, column, unit, sample, seed)
    else:
        archs, accuracy = known_from_trainings(resolved, trained)
    predictor, scores = fit_predictor(space, archs, accuracy, list(proxy or []), data, model)
    predictor.save(out)
    if scores:
        folds = ", ".join(f"{m} {rho:.3f}" for m, rho in scores.items())
        typer.echo(f"Spearman on {FOLDS} held-out folds of the known networks: {folds}")
    typer.echo(
        f"wrote {out}: a {predictor.kind} predictor from K = {len(archs)} architectures of "
        f"{resolved.name} "
        f"(accuracy {min(accuracy):.2f}..{max(accuracy):.2f}%), features: encoding, params, "
        f"MACs{', ' + ', '.join(proxy) if proxy else ''}"
    )


@predictor_app.command("next")
@reports_errors
def next_networks(
    run: Annotated[Path, typer.Argument(help="A baseline-relative run with --predictor.")],
    count: Annotated[int, typer.Option(help="How many networks to name.")] = 5,
    out: Annotated[Path | None, typer.Option(help="Also write them here (.csv).")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """The networks of a run worth training next: those most likely to keep the floor and
    be faster than the fastest known to (expected gain). Train them, refit, search again."""
    from rlnas.files import check_output
    from rlnas.search.acquisition import next_to_train
    from rlnas.search.run_folder import RunFolder

    if out is not None:
        out = check_output(out, force)
    found = next_to_train(RunFolder.open(run), count)
    table = found.table
    source = "a0's trained accuracy" if found.trained else "a0's predicted accuracy (train a0 too)"
    typer.echo(f"floor {found.floor:.2f}% from {source}")
    if found.best is not None:
        typer.echo(
            f"fastest network of the run known to keep it: {found.best} ({found.best_ms:.3f} ms)"
        )
    if table.empty:
        typer.echo(
            "no network of this run promises to keep the floor faster than the fastest known "
            "keeper: search again after a refit, or widen the search"
        )
        return
    typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if out is not None:
        table.to_csv(out, index=False)
        typer.echo(f"wrote {out}")
    typer.echo(
        "train them (`rlnas train ARCH --space SPACE --data IMAGES`), then refit (`rlnas "
        "predictor fit --trained FOLDER ...`) and search again"
    )


def register(app: Any) -> None:
    app.add_typer(predictor_app, name="predictor")
