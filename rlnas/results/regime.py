"""Whether a verification's training regime settled.

`rlnas verify` trains every network at E and 2E epochs. The regime settled where
the verdicts (kept the floor or not) and the order of the networks by trained
top-1 are the same at both budgets. Apart from that, a0's learning curve says
whether the accuracies themselves still move: where it flattens only after 2E,
the verdicts may agree and yet the margins are those of an unconverged regime.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import kendalltau


def _changes(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str], bool]:
    """The networks trained at both budgets, the names whose verdict changed between them,
    and whether their order by trained top-1 changed."""
    trained = frame[(frame["seeds"] > 0) & (frame["long_seeds"] > 0)]
    changed = [
        row["name"]
        for _, row in trained.iterrows()
        if row["held_short"] is not None
        and row["held_long"] is not None
        and row["held_short"] != row["held_long"]
    ]
    order = trained.sort_values("top1_mean", ascending=False)["name"].tolist()
    order_long = trained.sort_values("long_top1_mean", ascending=False)["name"].tolist()
    return trained, changed, order != order_long


def is_settled(frame: pd.DataFrame) -> bool:
    """Whether the regime settled: every network trained at both budgets, with the same
    verdicts and the same order at both."""
    trained, changed, reordered = _changes(frame)
    return len(trained) == len(frame) and len(trained) > 0 and not changed and not reordered


def settled(frame: pd.DataFrame) -> list[str]:
    """Whether the regime settled: the verdicts and the order of the networks at E against
    2E epochs, and the budget at which a0's curve flattens."""
    trained, changed, reordered = _changes(frame)
    if trained.empty:
        return ["", "## Did the regime settle? Not known yet: the long budget is not trained."]
    short, long = int(frame["epochs"].iloc[0]), int(frame["long_epochs"].iloc[0])
    tau = kendalltau(trained["top1_mean"], trained["long_top1_mean"]).statistic
    settles = is_settled(frame)
    base = trained[trained["is_a0"]]
    plateau = base["a0_settles_epochs"].iloc[0] if len(base) else np.nan
    still_learning = settles and pd.notna(plateau) and plateau > long
    answer = "Yes" if settles else "**No**"
    if still_learning:
        answer = "In its verdicts and order, yes; in accuracy, **not yet**"
    lines = [
        "",
        f"## Did the regime settle? {answer}",
        "",
        f"Every network trained at {short} and at {long} epochs (same recipe and seeds). "
        + (
            "Verdicts and the order of the networks by trained top-1 are the same at both."
            if settles
            else f"Between the two budgets {len(changed)} verdict(s) changed"
            + (f" ({', '.join(changed)})" if changed else "")
            + f" and the order of the networks {'changed' if reordered else 'held'}"
            f" (Kendall tau {tau:.2f}): the regime has not settled, so a verdict held at "
            "one budget only is not claimed."
        ),
    ]
    if still_learning:
        lines.append(
            f"a0 is still learning at {long} epochs, so the accuracies and margins below are "
            "this regime's, not those of full training."
        )
    if len(base):
        row = base.iloc[0]
        gain = (row["long_top1_mean"] - row["top1_mean"]) * 100
        lines.append(
            f"a0 gained {gain:+.2f} points from {short} to {long} epochs "
            f"({row['top1_mean']:.4f} -> {row['long_top1_mean']:.4f})."
        )
        settles = row["a0_settles_epochs"]
        if pd.notna(settles):
            lines.append(
                f"a0's learning curve ({long} epochs, fitted a - b exp(-epoch / tau)) comes "
                f"within 1% of its plateau after about **{settles:.0f} epochs**: the budget "
                f"that would settle it (`--epochs {max(1, round(settles))}`)."
            )
        reference = row["a0_reference"]
        if reference is not None and pd.notna(reference):
            lines.append(
                f"a0's reference top-1: {reference:.2f}%; trained here "
                f"{100 * row['long_top1_mean']:.2f}% at {long} epochs "
                f"({100 * row['long_top1_mean'] / reference:.0f}% of it)."
            )
    return lines
