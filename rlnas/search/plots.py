"""Plots of search results (PNG, matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from rlnas.files import atomic_write


def plot_pareto(frame: pd.DataFrame, front: pd.DataFrame, config: Any, path: Path) -> None:
    """The accuracy score (a proxy score, or a trained or benchmark accuracy) against latency:
    every evaluation, the front, and the target."""
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    axes.scatter(
        frame["latency_ms"],
        frame["accuracy"],
        s=10,
        alpha=0.35,
        color="0.5",
        label=f"evaluated ({len(frame)})",
    )
    axes.plot(
        front["latency_ms"],
        front["accuracy"],
        "o-",
        color="tab:red",
        markersize=4,
        label=f"Pareto front ({len(front)})",
    )
    if config.latency_min_ms is not None:
        axes.axvspan(
            config.latency_min_ms,
            config.target_ms,
            color="tab:blue",
            alpha=0.08,
            label=f"targets {config.target_text()} ms",
        )
    else:
        axes.axvline(
            config.target_ms,
            color="tab:blue",
            linestyle="--",
            label=f"target {config.target_ms:g} ms",
        )
    from_file = config.sources.benchmark.latency_file is not None
    source = "benchmark file" if from_file else f"{config.device} {config.precision}"
    measured = "latency (ms), measured" if from_file else "predicted latency (ms)"
    axes.set_xlabel(f"{measured}, {source}")
    axes.set_ylabel(config.score_name())
    axes.set_title(
        f"{config.strategy} on {Path(config.space).stem}, budget {config.budget}, "
        f"seed {config.seed}"
    )
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png"))
    plt.close(figure)
