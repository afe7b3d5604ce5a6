"""Benchmark: searches killed with SIGKILL at random moments and resumed, against uninterrupted.

Usage:
    python scripts/bench_resume.py [--trials 5] [--budget 100] [--seed 0]
        [--strategies ppo,evolution,random] [--source nb201|proxy] [--out resume.csv]

For each strategy: one uninterrupted `rlnas search`, then `--trials` runs that
are each killed (SIGKILL) once at a random moment (a random number of
journalled evaluations, 1..budget, drawn from `--seed`; kills at `budget` land
in the final writes) and then rerun to completion. A trial matches when its
evaluations.parquet equals the uninterrupted one (step, arch, accuracy,
latency, params, reward, feasible). A second uninterrupted run with the same
seed checks plain reproducibility. Every run is a fresh process of the CLI.

Sources: `nb201` is NAS-Bench-201 (benchmark accuracy and pixel3 latency, hard
reward, 6.44 ms); `proxy` is the README's main job (default space, shipped cpu
table, synflow proxy, 6 ms). With `proxy` the first run scores with a cold
cache and every later run with a warm one, so "same seed twice" also compares
a cold cache with a warm one.
Rows go to `--out` (CSV) as they finish; a rerun skips trials already there.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201"
# The installed command (not `python -c`, which would import the source tree in the
# working directory instead of the installed package).
CLI = [str(Path(sys.executable).parent / "rlnas")]
COLUMNS = ["step", "arch", "accuracy", "latency_ms", "params", "reward", "feasible"]


def search_args(strategy: str, budget: int, out: Path, source: str = "nb201") -> list[str]:
    if source == "proxy":
        return [
            *CLI,
            "search",
            "--strategy",
            strategy,
            "--latency-ms",
            "6",
            "--budget",
            str(budget),
            "--seed",
            "5",
            "--out",
            str(out),
        ]
    return [
        *CLI,
        "search",
        "--strategy",
        strategy,
        "--space",
        "nb201",
        "--reward",
        "hard",
        "--latency-ms",
        "6.44",
        "--budget",
        str(budget),
        "--seed",
        "5",
        "--accuracy-file",
        str(SHARED / "nb201_cifar10_accuracy.parquet"),
        "--latency-file",
        str(SHARED / "nb201_latency.parquet"),
        "--latency-column",
        "pixel3_ms",
        "--out",
        str(out),
    ]


def journal_lines(out: Path) -> int:
    journal = out / "evaluations.jsonl"
    return journal.read_bytes().count(b"\n") if journal.exists() else 0


def killed_at(args: list[str], out: Path, lines: int, env: dict[str, str]) -> int | None:
    """Runs `args`, SIGKILLs it once the journal has `lines` lines; the lines then, or None."""
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while process.poll() is None:
        if journal_lines(out) >= lines:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return journal_lines(out)
        time.sleep(0.002)
    if process.returncode != 0:
        raise SystemExit(process.stderr.read().decode() if process.stderr else "search failed")
    return None


def evaluations(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "evaluations.parquet")[COLUMNS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strategies", default="ppo,evolution,random")
    parser.add_argument("--source", choices=["nb201", "proxy"], default="nb201")
    parser.add_argument("--out", type=Path, default=Path("resume.csv"))
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"NAS-Bench-201 data not found at {SHARED}")

    done = pd.read_csv(args.out) if args.out.exists() else pd.DataFrame()
    rows = done.to_dict("records")
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="rlnas-resume-") as tmp:
        env = {**os.environ, "RLNAS_HOME": str(Path(tmp) / "home")}
        for strategy in args.strategies.split(","):
            moments = rng.integers(1, args.budget + 1, size=args.trials)
            if len(done) and (done["strategy"] == strategy).sum() >= args.trials + 1:
                continue
            whole = Path(tmp) / f"{strategy}-whole"
            command = search_args(strategy, args.budget, whole, args.source)
            subprocess.run(command, env=env, check=True)
            again = Path(tmp) / f"{strategy}-again"
            command = search_args(strategy, args.budget, again, args.source)
            subprocess.run(command, env=env, check=True)
            expected = evaluations(whole)
            same = evaluations(again).equals(expected)
            rows.append(
                {"strategy": strategy, "trial": "same seed twice", "kill_at": "", "match": same}
            )
            print(
                f"{strategy}: same seed twice: {'identical' if same else 'DIFFERENT'}", flush=True
            )
            for trial, moment in enumerate(moments, 1):
                cut = Path(tmp) / f"{strategy}-cut{trial}"
                args_cut = search_args(strategy, args.budget, cut, args.source)
                at = killed_at(args_cut, cut, int(moment), env)
                subprocess.run(args_cut, env=env, check=True, stdout=subprocess.DEVNULL)
                match = evaluations(cut).equals(expected)
                rows.append(
                    {
                        "strategy": strategy,
                        "trial": trial,
                        "kill_at": "finished first" if at is None else at,
                        "match": match,
                    }
                )
                print(
                    f"{strategy}: trial {trial}, killed at {at} journalled evaluations: "
                    f"{'identical' if match else 'DIFFERENT'}",
                    flush=True,
                )
                pd.DataFrame(rows).to_csv(args.out, index=False)
    frame = pd.DataFrame(rows)
    frame.to_csv(args.out, index=False)
    trials = frame[frame["trial"] != "same seed twice"]
    summary = trials.groupby("strategy")["match"].agg(["sum", "count"])
    for strategy, row in summary.iterrows():
        print(f"{strategy}: {int(row['sum'])} of {int(row['count'])} resumes identical")


if __name__ == "__main__":
    main()
