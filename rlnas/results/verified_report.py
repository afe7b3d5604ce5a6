"""The report of `rlnas verify`: trained top-1 against measured latency, candidates and baselines.

`write_verified_report(run)` reads `<run>/verified.parquet` and writes
`verified.md` and `verified.png`. The markdown follows the tables of Deci's
white paper: the candidates in latency bands whose edges are the baselines'
measured latencies, and under each candidate the baselines it is faster than,
with the latency improvement (% and x) and the accuracy difference (points of
trained top-1). In a baseline-relative run it says whether the accuracy
constraint held for real at both training budgets (E and 2E epochs) and what
became of the search's own pick (rank 1; candidates are never re-picked after
training). Beside the verdict it says whether the regime settled (the same
verdicts and order at both budgets), and if not, by how much, and the budget at
which a0's learning curve flattens, and where the pick's margin over the floor is within
two standard errors of the seeds' spread (the seeds cannot tell). The plot shows
trained top-1 (mean, with the spread over seeds) against measured latency, the Pareto
front of those points, each network's predicted point (search score, table latency)
linked to its measured one, and its top-1 at 2E epochs (squares) with the floor of each
budget.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from rlnas.errors import RlnasError
from rlnas.files import atomic_write, atomic_write_text
from rlnas.results.regime import is_settled, settled
from rlnas.results.report import band
from rlnas.search.run_folder import (
    VERIFIED,
    VERIFIED_PLOT,
    VERIFIED_REPORT,
    RunFolder,
    read_frame,
)
from rlnas.search.sources import accuracy_kind

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# The columns the report reads (see `rlnas.results.verify.verified_frame`).
VERIFIED_COLUMNS = {
    "name": "text",
    "kind": "text",
    "arch": "text",
    "score": "number?",
    "predicted_ms": "number?",
    "measured_ms": "number",
    "params": "number",
    "seeds": "number",
    "top1_split": "text",
    "top1_mean": "number?",
    "top1_std": "number?",
    "is_a0": "bool",
}

COLORS = {"candidate": "tab:red", "baseline": "tab:blue"}


# Columns of the long budget and the verdicts, absent from files of one budget (before
# verify trained two): read as not trained yet.
LATER_COLUMNS = {
    "long_seeds": 0,
    "long_top1_mean": float("nan"),
    "long_top1_std": float("nan"),
    "long_epochs": None,
    "held_short": None,
    "held_long": None,
    "a0_settles_epochs": float("nan"),
    "a0_reference": None,
}


def load_verified(run_path: Path) -> pd.DataFrame:
    path = Path(run_path) / VERIFIED
    if not path.is_file():
        raise RlnasError(f"run {run_path} has no {VERIFIED}; run `rlnas verify {run_path}` first")
    fix = f"move it away and rerun `rlnas verify {run_path}` (trainings are cached)"
    frame = read_frame(path, VERIFIED_COLUMNS, fix)
    for column, value in LATER_COLUMNS.items():
        if column not in frame.columns:
            frame[column] = value
    return frame


def _top1(row: pd.Series, prefix: str = "") -> str:
    if not row[f"{prefix}seeds"]:
        return "not trained yet"
    std = row[f"{prefix}top1_std"]
    spread = "" if pd.isna(std) else f" ± {std:.3f}"
    return f"{row[f'{prefix}top1_mean']:.4f}{spread} (n={row[f'{prefix}seeds']})"


def _held(value: bool | None, settled: bool = True) -> str:
    if value is None or value != value:
        return "n/a"
    if not value:
        return "**no**"
    return "yes" if settled else "yes at both, regime not settled"


def wins(candidate: pd.Series, baselines: pd.DataFrame) -> list[str]:
    """The baselines slower than `candidate` (measured), with the improvements over each."""
    out = []
    for _, base in baselines[baselines["measured_ms"] > candidate["measured_ms"]].iterrows():
        gain = (1 - candidate["measured_ms"] / base["measured_ms"]) * 100
        speedup = base["measured_ms"] / candidate["measured_ms"]
        points = (candidate["top1_mean"] - base["top1_mean"]) * 100
        out.append(
            f"{base['name']} ({base['measured_ms']:.2f} ms, top-1 {base['top1_mean']:.4f}): "
            f"latency -{gain:.1f}% ({speedup:.2f}x), accuracy {points:+.2f} points"
        )
    return out


def verdict(run: RunFolder, frame: pd.DataFrame) -> list[str]:
    """Whether the baseline constraint held for real at both budgets, with the numbers."""
    a0 = run.provenance.baseline
    base = frame[frame["is_a0"]]
    if a0 is None or base.empty:
        return []
    base_row = base.iloc[0]
    floor = (1 - a0.accuracy_drop) * base_row["top1_mean"]
    floor_long = (1 - a0.accuracy_drop) * base_row["long_top1_mean"]
    candidates = frame[frame["kind"] == "candidate"].sort_values("rank")
    both, short, long = (
        sum(v is not None and v == v and bool(v) for v in candidates[column])
        for column in ("constraint_held", "held_short", "held_long")
    )
    lines = [
        "",
        "## The constraint, for real",
        "",
        f"a0 = {a0.name}: trained top-1 {_top1(base_row)} at {base_row['epochs']} epochs, "
        f"{_top1(base_row, 'long_')} at {base_row['long_epochs']}; measured "
        f"{base_row['measured_ms']:.2f} ms. Floor: (1 - {a0.accuracy_drop:g}) x a0 = "
        f"{floor:.4f} and {floor_long:.4f}. The search's own floor was "
        f"{a0.accuracy_floor:.4f} on its source ({a0.accuracy_source}).",
        "",
        f"{both} of {len(candidates)} candidates kept the floor at both budgets "
        f"({short} at {base_row['epochs']} epochs, {long} at {base_row['long_epochs']}); "
        + (
            "only those count as held."
            if is_settled(frame)
            else "the regime has not settled (below), so none is claimed to hold."
        ),
    ]
    if len(candidates):
        pick = candidates.iloc[0]
        held = pick["constraint_held"]
        outcome = {
            True: "held at both budgets"
            + ("" if is_settled(frame) else ", but the regime has not settled (below)"),
            False: "missed",
        }.get(held, "not known yet (the long budget is not trained)")
        lines.append(
            f"The search's pick, rank {int(pick['rank'])} ({pick['name']}): {outcome}; measured "
            f"{pick['measured_ms']:.2f} ms, {base_row['measured_ms'] / pick['measured_ms']:.2f}x "
            f"faster than a0. Candidates are ranked by the search, not re-picked after "
            "training."
        )
        for prefix in ("", "long_"):
            noise = seed_noise(pick, base_row, a0.accuracy_drop, prefix)
            if noise:
                lines.append(noise)
    return lines


def seed_noise(pick: pd.Series, a0: pd.Series, drop: float, prefix: str = "") -> str | None:
    """A sentence where the pick's margin over the floor at one budget (`prefix` "" or
    "long_") is within two standard errors of the difference of the means, with about how
    many seeds each would tell at this spread; None where it is not, or where fewer than two
    seeds give no spread."""
    counts = (pick[f"{prefix}seeds"], a0[f"{prefix}seeds"])
    spreads = (pick[f"{prefix}top1_std"], (1 - drop) * a0[f"{prefix}top1_std"])
    if min(counts) < 2 or any(pd.isna(sd) for sd in spreads):
        return None
    margin = pick[f"{prefix}top1_mean"] - (1 - drop) * a0[f"{prefix}top1_mean"]
    error = math.sqrt(sum(sd**2 / n for sd, n in zip(spreads, counts, strict=True)))
    if abs(margin) >= 2 * error:
        return None
    needed = 4 * sum(sd**2 for sd in spreads) / margin**2 if margin else math.inf
    seeds = f"about {math.ceil(needed)}" if needed <= 100 else "more than 100"
    return (
        f"At {int(pick[f'{prefix}epochs'])} epochs the pick's margin over the floor "
        f"({margin * 100:+.2f} points) is within two standard errors of the seeds' spread "
        f"({2 * error * 100:.2f} points): these seeds cannot tell whether it holds; "
        f"{seeds} seeds each would, at this spread."
    )


def verified_markdown(run: RunFolder, frame: pd.DataFrame) -> str:
    config = run.config
    first = frame.iloc[0]
    lines = [
        f"# Verified: {run.path.name}",
        "",
        f"Search: {config.strategy} on `{config.space}`, {config.device} {config.precision}, "
        f"score = {config.score_name()}. Each network trained {first['epochs']} and "
        f"{first['long_epochs']} epochs with the trained source's short recipe, seeds "
        f"0..{frame['seeds'].max() - 1}; top-1 on the {first['top1_split']} images; latency "
        "measured end to end (median of passes).",
        "",
        f"| network | kind | search rank | top-1, {first['epochs']} epochs | top-1, "
        f"{first['long_epochs']} epochs | score (search) | measured ms | predicted ms | "
        "params (M) | held at both |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    settles = is_settled(frame)
    ordered = pd.concat(
        [
            frame[frame["kind"] != "candidate"],
            frame[frame["kind"] == "candidate"].sort_values("rank"),
        ]
    )
    for _, row in ordered.iterrows():
        name = f"{row['name']} (a0)" if row["is_a0"] else row["name"]
        rank = int(row["rank"]) if row["kind"] == "candidate" else ""
        lines.append(
            f"| {name} | {row['kind']} | {rank} | {_top1(row)} | {_top1(row, 'long_')} | "
            f"{row['score']:.4f} | {row['measured_ms']:.2f} | {row['predicted_ms']:.2f} | "
            f"{row['params'] / 1e6:.2f} | {_held(row['constraint_held'], settles)} |"
        )
    lines += verdict(run, frame)
    lines += settled(frame)
    lines += _against_baselines(frame)
    lines += ["", "Architectures:", ""]
    lines += [f"- {row['name']}: `{row['arch']}`" for _, row in frame.iterrows()]
    return "\n".join(lines) + "\n"


def _against_baselines(frame: pd.DataFrame) -> list[str]:
    """The candidates in latency bands of the baselines (short budget, measured)."""
    trained = frame[frame["seeds"] > 0]
    baselines = trained[trained["kind"] == "baseline"].sort_values("measured_ms")
    edges = list(zip(baselines["measured_ms"], baselines["name"], strict=True))
    lines = ["", "## Candidates against the baselines (trained, measured)"]
    current = None
    for _, cand in trained[trained["kind"] == "candidate"].sort_values("measured_ms").iterrows():
        where = band(cand["measured_ms"], edges)
        if where != current:
            lines += ["", f"**{where}**", ""]
            current = where
        lines.append(f"- {cand['name']}: {cand['measured_ms']:.2f} ms, top-1 {_top1(cand)}")
        lines += [f"  - vs {w}" for w in wins(cand, baselines)]
    return lines


def _front(frame: pd.DataFrame) -> pd.DataFrame:
    """Points not dominated in (higher trained top-1, lower measured latency)."""
    best, keep = -1.0, []
    for index, row in frame.sort_values("measured_ms").iterrows():
        if row["top1_mean"] > best:
            keep.append(index)
            best = row["top1_mean"]
    return frame.loc[keep].sort_values("measured_ms")


def _plot_kind(axes: Axes, kind: str, group: pd.DataFrame, proxy: bool) -> None:
    """One kind of network (candidates, baselines): trained and measured points with their
    spread, the search's predicted points, and a line from each prediction to its truth."""
    color = COLORS.get(kind, "tab:gray")
    axes.errorbar(
        group["measured_ms"],
        group["top1_mean"],
        yerr=group["top1_std"].fillna(0),
        fmt="o",
        color=color,
        capsize=3,
        label=f"{kind}s: trained {int(group['epochs'].iloc[0])} epochs, measured",
        zorder=3,
    )
    # A proxy score is no accuracy: its predicted point keeps the trained top-1.
    predicted = group["top1_mean"] if proxy else group["score"]
    axes.scatter(
        group["predicted_ms"],
        predicted,
        facecolors="none",
        edgecolors=color,
        alpha=0.6,
        label=f"{kind}s: predicted (search score, table)",
        zorder=2,
    )
    for (_, row), y in zip(group.iterrows(), predicted, strict=True):
        axes.plot(
            [row["predicted_ms"], row["measured_ms"]],
            [y, row["top1_mean"]],
            color=color,
            alpha=0.3,
            linewidth=0.8,
        )
        label = f"{row['name']} (a0)" if row["is_a0"] else row["name"]
        axes.annotate(
            label,
            (row["measured_ms"], row["top1_mean"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=7,
        )


def _plot_long(axes: Axes, long: pd.DataFrame) -> None:
    """The networks trained at the long budget (2E epochs): squares at the same latency."""
    if long.empty:
        return
    axes.errorbar(
        long["measured_ms"],
        long["long_top1_mean"],
        yerr=long["long_top1_std"].fillna(0),
        fmt="s",
        color="tab:gray",
        alpha=0.7,
        capsize=3,
        label=f"trained {int(long['long_epochs'].iloc[0])} epochs (2E), measured",
        zorder=3,
    )


def plot_verified(run: RunFolder, frame: pd.DataFrame, path: Path) -> None:
    trained = frame[frame["seeds"] > 0]
    proxy = not accuracy_kind(run.config).is_accuracy
    figure, axes = plt.subplots(figsize=(7.5, 5), dpi=120)
    for kind, group in trained.groupby("kind"):
        _plot_kind(axes, str(kind), group, proxy)
    _plot_long(axes, frame[frame["long_seeds"] > 0])
    if len(trained):
        front = _front(trained)
        axes.step(
            front["measured_ms"],
            front["top1_mean"],
            where="post",
            color="black",
            alpha=0.5,
            label="Pareto front (trained, measured)",
        )
    a0 = run.provenance.baseline
    base = trained[trained["is_a0"]]
    if a0 is not None and len(base):
        for column, style, budget in (("top1_mean", "--", ""), ("long_top1_mean", ":", ", 2E")):
            floor = (1 - a0.accuracy_drop) * base[column].iloc[0]
            if pd.notna(floor):
                axes.axhline(
                    floor,
                    color="tab:green",
                    linestyle=style,
                    linewidth=1,
                    label=f"floor: {1 - a0.accuracy_drop:g} x a0's top-1{budget}",
                )
    axes.set_xlabel(f"latency on {run.config.device} {run.config.precision} (ms, batch 1)")
    split = frame["top1_split"].iloc[0]
    axes.set_ylabel(f"trained top-1 ({split} images)")
    axes.set_title(f"{run.path.name}: verified", fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png"))
    plt.close(figure)


def write_verified_report(run_path: Path) -> tuple[Path, Path]:
    """Writes `verified.md` and `verified.png` into the run folder; returns their paths."""
    run = RunFolder.open(run_path)
    frame = load_verified(run_path)
    markdown, figure = run.file(VERIFIED_REPORT), run.file(VERIFIED_PLOT)
    atomic_write_text(verified_markdown(run, frame), markdown)
    plot_verified(run, frame, figure)
    return markdown, figure
