"""The report of a re-measured run: a Pareto plot and a markdown table, from measured latencies.

`write_report(run)` reads `<run>/measured.parquet` (written by `rlnas measure`)
and writes `<run>/report.md` and `<run>/report.png`. Candidates are grouped
into latency bands whose edges are the baselines' measured latencies; under
each candidate, the baselines it beats (faster, with at least the same score),
with the latency improvement and the score difference.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rlnas.errors import RlnasError
from rlnas.files import atomic_write, atomic_write_text
from rlnas.hardware.devices import get_precision
from rlnas.search.run_folder import (
    MEASURED,
    MEASURED_COLUMNS,
    REPORT,
    REPORT_PLOT,
    RunFolder,
    read_frame,
)
from rlnas.search.sources import accuracy_kind

COLORS = {"candidate": "tab:red", "baseline": "tab:blue"}


def load_measured(run_path: Path) -> pd.DataFrame:
    path = Path(run_path) / MEASURED
    if not path.is_file():
        raise RlnasError(
            f"run {run_path} has no end-to-end measurements ({path.name}); run "
            f"`rlnas measure {run_path} --device DEVICE` first"
        )
    return read_frame(
        path, MEASURED_COLUMNS, f"measure the run again with `rlnas measure {run_path}`"
    )


def beaten(candidate: pd.Series, baselines: pd.DataFrame) -> pd.DataFrame:
    """Baselines slower than the candidate whose score it matches or exceeds (measured)."""
    wins = baselines[
        (baselines["measured_ms"] > candidate["measured_ms"])
        & ~(baselines["score"] > candidate["score"])
    ].copy()
    wins["improvement_pct"] = (1 - candidate["measured_ms"] / wins["measured_ms"]) * 100
    wins["score_diff"] = candidate["score"] - wins["score"]
    return wins.sort_values("measured_ms")


def band(latency: float, edges: list[tuple[float, str]]) -> str:
    """The latency band of `latency` between the baselines' measured latencies (sorted)."""
    if not edges:
        return "all candidates"
    below = sum(latency >= ms for ms, _ in edges)  # baselines at or under this latency
    if below == 0:
        return f"faster than every baseline (< {edges[0][0]:.2f} ms, {edges[0][1]})"
    if below == len(edges):
        return f"slower than every baseline (>= {edges[-1][0]:.2f} ms, {edges[-1][1]})"
    (low, low_name), (high, high_name) = edges[below - 1], edges[below]
    return f"{low:.2f}-{high:.2f} ms (between {low_name} and {high_name})"


def _fmt(value: float, spec: str) -> str:
    """`value` formatted, or "n/a" where it is missing (NaN)."""
    return "n/a" if pd.isna(value) else format(value, spec)


def report_markdown(run: RunFolder, frame: pd.DataFrame) -> str:
    """The markdown report: one section per (device, precision)."""
    config = run.config
    lines = [
        f"# End-to-end results: {run.path.name}",
        "",
        f"Search: {config.strategy} on space `{config.space}`, target {config.target_text()} ms, "
        f"reward {config.reward}, budget {config.budget}, seed {config.seed}; score = "
        f"{config.score_name()}. Latencies are measured end to end (median of passes); "
        "predictions come from the device's lookup table.",
    ]
    for (device, precision), part in frame.groupby(["device", "precision"], sort=True):
        first = part.iloc[0]
        lines += [
            "",
            f"## {device} {precision}",
            "",
            f"{first['backend']} {first['backend_version']} on {first['host']}, "
            f"{first['threads']} thread(s), {first['resolution']} px, batch 1; measured "
            f"{first['created']}. Calibrated prediction: "
            f"{'yes' if part['calibrated'].all() else 'no (raw sum of layers)'}.",
            "",
            "| network | kind | predicted ms | measured ms | error % | pass spread % | "
            "params (M) | MACs (M) | score |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for _, row in part.sort_values("measured_ms").iterrows():
            lines.append(
                f"| {row['name']} | {row['kind']} | {_fmt(row['predicted_ms'], '.2f')} | "
                f"{row['measured_ms']:.2f} | {_fmt(row['error_pct'], '+.1f')} | "
                f"{row['spread_pct']:.1f} | {row['params'] / 1e6:.2f} | "
                f"{row['macs'] / 1e6:.0f} | {_fmt(row['score'], '.3f')} |"
            )
        lines += _against_baselines(part, proxy=not accuracy_kind(config).is_accuracy)
        lines.append("")
        lines.append(f"Architectures ({device} {precision}):")
        lines.append("")
        for _, row in part.sort_values("measured_ms").iterrows():
            lines.append(f"- {row['name']}: `{row['arch']}`")
    return "\n".join(lines) + "\n"


def _against_baselines(part: pd.DataFrame, proxy: bool) -> list[str]:
    """The candidates of one device, grouped by the baselines' latency bands, with the
    baselines each one beats (or, for a proxy score, is faster than at no lower score)."""
    candidates = part[part["kind"] == "candidate"].sort_values("measured_ms")
    baselines = part[part["kind"] == "baseline"].sort_values("measured_ms")
    edges = list(zip(baselines["measured_ms"], baselines["name"], strict=True))
    lines = ["", "### Candidates against the baselines (measured latency)"]
    if proxy:
        lines += [
            "",
            "Scores here are proxy scores (the share of random architectures a network "
            "outscores on the proxy), not accuracies: a candidate listed as faster than a "
            "baseline at no lower proxy score is not shown to be as accurate. Train it "
            "(`rlnas train --run RUN --rank K`), or search with `--accuracy trained`.",
        ]
    current = None
    for _, cand in candidates.iterrows():
        where = band(cand["measured_ms"], edges)
        if where != current:
            lines += ["", f"**{where}**", ""]
            current = where
        wins = beaten(cand, baselines)
        head = (
            f"- {cand['name']}: {cand['measured_ms']:.2f} ms, {'proxy ' if proxy else ''}score "
            f"{_fmt(cand['score'], '.3f')}, {cand['params'] / 1e6:.2f} M params"
        )
        if not len(baselines):
            lines.append(head)
        elif not len(wins):
            lines.append(
                head
                + (
                    "; faster at no lower proxy score than no baseline"
                    if proxy
                    else "; beats no baseline"
                )
            )
        else:
            beats = "; ".join(
                f"{w['name']} ({w['measured_ms']:.2f} ms): {w['improvement_pct']:.1f}% "
                f"faster, {'proxy ' if proxy else ''}score {w['score_diff']:+.3f}"
                for _, w in wins.iterrows()
            )
            verb = "faster at no lower proxy score than" if proxy else "beats"
            lines.append(head + f"; {verb} {beats}")
    return lines


def plot_report(run: RunFolder, frame: pd.DataFrame, path: Path) -> None:
    """Score against measured latency, one panel per device; precision by marker."""
    devices = sorted(frame["device"].unique())
    figure, axes_list = plt.subplots(
        1, len(devices), figsize=(7 * len(devices), 4.8), dpi=120, squeeze=False, sharey=True
    )
    for axes, device in zip(axes_list[0], devices, strict=True):
        part = frame[frame["device"] == device]
        for (kind, precision), group in part.groupby(["kind", "precision"], sort=True):
            axes.scatter(
                group["measured_ms"],
                group["score"],
                marker=get_precision(precision).marker,
                color=COLORS[kind],
                s=45,
                label=f"{kind}s, {precision} (measured)",
                zorder=3,
            )
            axes.scatter(
                group["predicted_ms"],
                group["score"],
                marker=get_precision(precision).marker,
                facecolors="none",
                edgecolors=COLORS[kind],
                s=30,
                alpha=0.6,
                label=f"{kind}s, {precision} (predicted)",
                zorder=2,
            )
            ordered = group.sort_values("measured_ms").reset_index(drop=True)
            for number, row in ordered.iterrows():
                if not np.isnan(row["predicted_ms"]):
                    axes.plot(
                        [row["predicted_ms"], row["measured_ms"]],
                        [row["score"], row["score"]],
                        color=COLORS[kind],
                        alpha=0.3,
                        linewidth=0.8,
                    )
                axes.annotate(
                    row["name"],
                    (row["measured_ms"], row["score"]),
                    textcoords="offset points",
                    # Staggered: candidates tend to sit close together near the target.
                    xytext=(4, 4 + 9 * (int(number) % 4)),
                    fontsize=7,
                )
        axes.set_xlabel(f"latency on {device} (ms, batch 1)")
        axes.set_title(f"{run.path.name}: {device}", fontsize=9)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7, loc="lower right")
    config = run.config
    axes_list[0][0].set_ylabel(config.score_name())
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png"))
    plt.close(figure)


def write_report(run_path: Path) -> tuple[Path, Path]:
    """Writes `report.md` and `report.png` into the run folder; returns their paths."""
    run = RunFolder.open(run_path)
    frame = load_measured(run_path)
    markdown = run.file(REPORT)
    figure = run.file(REPORT_PLOT)
    atomic_write_text(report_markdown(run, frame), markdown)
    plot_report(run, frame, figure)
    return markdown, figure
