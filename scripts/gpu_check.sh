#!/usr/bin/env bash
# The GPU path in one go: everything rlnas does on an NVIDIA GPU, measured and written to one
# folder, in at most 9 minutes on one GPU.
#
#   scripts/gpu_check.sh [--device cuda|cpu] [--smoke] [--out DIR] [--shared DIR] [--wheels DIR]
#
#   --device  cuda (default) or cpu (to prepare and test the script where there is no GPU).
#   --smoke   tiny settings (a few networks, one or two epochs on 256 images): checks that
#             every step runs, not what it measures.
#   --out     where the results go (default: $OUT, else ./gpu_check).
#   --shared  the reference data folder holding cifar10/cifar10_subset.npz and
#             nbmacro/nbmacro_cifar10.parquet (default: ../shared/data).
#   --wheels  a folder of wheels (the packages rlnas needs that the machine lacks); they and
#             rlnas itself are installed into a private folder first, with no package index.
#
# Steps (each under its own time limit; one that fails is recorded and the rest go on):
#   1. profile: the `cuda` backend's table of the `nbmacro` space at 32 px;
#   2. fidelity: that table's prediction of 50 random networks against their end-to-end
#      timings (two passes, whose disagreement is the measurement's own floor);
#   3. throughput: `rlnas train`'s step (mixed precision, channels_last on cuda) against a
#      plain PyTorch loop, interleaved in one process;
#   4. tests: every test marked `cuda` (they skip where there is no GPU);
#   5. search: a baseline-relative search of `nbmacro` on the new table (a0 = every layer
#      ir_3x3_t3, at most 1% below its NAS-Bench-Macro accuracy);
#   6. train: MobileNetV2, a0 and the run's ranks 1-3 on the CIFAR-10 subset, each at E = 20
#      and 2E = 40 epochs (same recipe and seed), all at once on the one GPU (the smoke: only
#      MobileNetV2 and rank 1, for 1 and 2 epochs of 256 images);
#      what is left of the 9 minutes bounds them; an unfinished one keeps its epochs.
# Writes (at most 8 files, as the lent machine returns): gpu_check.log, summary.json,
# table.parquet, fidelity.json, fidelity.csv, throughput.json, histories.csv, pytest.txt.
set -uo pipefail

DEVICE=cuda
SMOKE=0
OUTDIR=${OUT:-gpu_check}
REPO=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$REPO/../shared/data
WHEELS=""
while [ $# -gt 0 ]; do
    case $1 in
        --device) DEVICE=$2; shift 2 ;;
        --smoke) SMOKE=1; shift ;;
        --out) OUTDIR=$2; shift 2 ;;
        --shared) SHARED=$2; shift 2 ;;
        --wheels) WHEELS=$2; shift 2 ;;
        *) echo "gpu_check.sh: unknown option '$1' (see the header of $0)" >&2; exit 2 ;;
    esac
done
case $DEVICE in
    cuda | cpu) ;;
    *) echo "gpu_check.sh: --device must be cuda or cpu, got '$DEVICE'" >&2; exit 2 ;;
esac
[ -d "$SHARED" ] || { echo "gpu_check.sh: no folder $SHARED; pass --shared DIR" >&2; exit 2; }
SHARED=$(cd "$SHARED" && pwd)
DATA=$SHARED/cifar10/cifar10_subset.npz
NBMACRO=$SHARED/nbmacro/nbmacro_cifar10.parquet
for f in "$DATA" "$NBMACRO"; do
    [ -f "$f" ] || { echo "gpu_check.sh: $f not found; pass --shared DIR" >&2; exit 2; }
done
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
if [ -n "$(ls -A "$OUTDIR")" ]; then
    echo "gpu_check.sh: $OUTDIR is not empty; pass an empty or new --out" >&2
    exit 2
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rlnas_gpu_check.XXXXXX")
export RLNAS_HOME=$WORK/home RLNAS_CALIBRATIONS=$WORK/calibrations PYTHONUNBUFFERED=1
export MPLBACKEND=Agg RLNAS_SHARED_DATA=$SHARED
LOG=$OUTDIR/gpu_check.log
STEPS=$WORK/steps.tsv
: >"$STEPS"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$LOG"; }

if [ "$SMOKE" = 1 ]; then
    ARCHS=4 BUDGET=20 EPOCHS=1 SUBSET="--subset 256" STEPS_TP=4 LIMIT=120 RANKS="1"
else
    ARCHS=50 BUDGET=200 EPOCHS=20 SUBSET="" STEPS_TP=60 LIMIT=240 RANKS="1 2 3"
fi

if [ -n "$WHEELS" ]; then
    log "installing rlnas and the wheels in $WHEELS (no index)"
    python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile \
        --target "$WORK/site" "$WHEELS"/*.whl "$REPO" >>"$LOG" 2>&1 || {
        log "install failed (see above)"; exit 1; }
    export PYTHONPATH=$WORK/site${PYTHONPATH:+:$PYTHONPATH} PATH=$WORK/site/bin:$PATH
fi
PY=python3
command -v rlnas >/dev/null || { log "no rlnas command: install rlnas or pass --wheels"; exit 1; }

# step NAME SECONDS COMMAND...: runs it under a time limit, logs it, records its status.
step() {
    local name=$1 limit=$2
    shift 2
    log "step $name (limit ${limit} s): $*"
    local started=$SECONDS
    timeout "$limit" "$@" >>"$LOG" 2>&1
    local rc=$?
    printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - started))" >>"$STEPS"
    log "step $name: exit $rc after $((SECONDS - started)) s"
    return $rc
}

log "rlnas GPU check: device $DEVICE, smoke $SMOKE, work folder $WORK"
{
    uname -a
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
    $PY -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
    $PY -c "import tensorrt; print('tensorrt', tensorrt.__version__)" 2>&1 | tail -1
} >>"$LOG" 2>&1

# From the work folder, so that every step imports the installed rlnas, never the source tree
# (which lacks the parts pyproject.toml maps in: envs/, tables/).
cd "$WORK" || exit 1
TABLE=$WORK/table.parquet
step profile 150 rlnas profile --device "$DEVICE" --space nbmacro --resolution 32 --out "$TABLE"
cp "$TABLE" "$OUTDIR/table.parquet" 2>/dev/null

step fidelity 150 $PY "$REPO/scripts/bench_fidelity.py" --device "$DEVICE" --space nbmacro \
    --table "$TABLE" --archs "$ARCHS" --seed 100 --out "$WORK/fidelity"
cp "$WORK"/fidelity/fidelity_*.json "$OUTDIR/fidelity.json" 2>/dev/null
cp "$WORK"/fidelity/fidelity_*.csv "$OUTDIR/fidelity.csv" 2>/dev/null

step throughput 120 $PY "$REPO/scripts/bench_train.py" --device "$DEVICE" --steps "$STEPS_TP" \
    --threads 4 --data "$DATA" --json "$OUTDIR/throughput.json"

step tests 150 $PY -m pytest -m cuda -rs -q -p no:cacheprovider \
    --continue-on-collection-errors "$REPO/tests"
grep -E "passed|failed|skipped|error|SKIPPED|FAILED" "$LOG" | tail -40 >"$OUTDIR/pytest.txt"

A0=$($PY -c "from rlnas.model.nbmacro import from_code; print(from_code('11111111'))")
$PY - "$NBMACRO" "$WORK/nbmacro_acc.parquet" <<'EOF'
import sys

import pandas as pd

from rlnas.model.nbmacro import from_code

bench = pd.read_parquet(sys.argv[1])
arch = [str(from_code(code)) for code in bench["arch"]]
pd.DataFrame({"arch_str": arch, "mean_acc": bench["mean_acc"]}).to_parquet(sys.argv[2])
EOF
RUN=$WORK/run
step search 120 rlnas search --space nbmacro --device "$DEVICE" --table "$TABLE" \
    --no-calibrate --accuracy-file "$WORK/nbmacro_acc.parquet" --accuracy-column mean_acc \
    --baseline "$A0" --accuracy-drop 0.01 --budget "$BUDGET" --seed 100 --out "$RUN"

# All trainings at once: small networks at batch 128 leave most of a GPU idle.
train() {  # train NAME EPOCHS ARGS...
    local name=$1 epochs=$2
    shift 2
    OMP_NUM_THREADS=1 timeout "$LIMIT" rlnas train "$@" --data "$DATA" --device "$DEVICE" \
        --epochs "$epochs" $SUBSET --out "$WORK/train/$name-e$epochs" \
        >"$WORK/train-$name-e$epochs.log" 2>&1
    echo "$name-e$epochs $?" >>"$WORK/train.rc"
}
# What is left of the 9 minutes, less 20 s for the summary, bounds the trainings.
LEFT=$((540 - SECONDS - 20))
[ "$LEFT" -lt "$LIMIT" ] && LIMIT=$((LEFT > 30 ? LEFT : 30))
log "step train (limit ${LIMIT} s each, all at once): E = $EPOCHS and $((2 * EPOCHS)) epochs"
started=$SECONDS
for epochs in "$EPOCHS" $((2 * EPOCHS)); do
    train mobilenetv2 "$epochs" --baseline mobilenetv2 &
    [ "$SMOKE" = 1 ] || train a0 "$epochs" "$A0" --space nbmacro &
    for rank in $RANKS; do
        train "rank$rank" "$epochs" --run "$RUN" --rank "$rank" &
    done
done
wait
cat "$WORK"/train-*.log >>"$LOG"
failed=$(awk '$2 != 0' "$WORK/train.rc" | wc -l)
printf 'train\t%s\t%s\n' "$failed" "$((SECONDS - started))" >>"$STEPS"
log "step train: $failed trainings failed, $((SECONDS - started)) s"

$PY - "$WORK" "$OUTDIR" "$DEVICE" "$SMOKE" <<'EOF'
import json
import sys
from pathlib import Path

import pandas as pd

work, out, device, smoke = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
steps = pd.read_csv(work / "steps.tsv", sep="\t", names=["step", "rc", "seconds"])
summary = {"device": device, "smoke": smoke, "steps": steps.to_dict("records")}
for name in ("fidelity", "throughput"):
    path = out / f"{name}.json"
    if path.exists():
        summary[name] = json.loads(path.read_text())
runs = []
for folder in sorted((work / "train").glob("*")):
    history = folder / "history.parquet"
    if history.exists():
        frame = pd.read_parquet(history).assign(training=folder.name)
        runs.append(frame)
        result = folder / "result.json"
        final = json.loads(result.read_text()) if result.exists() else {}
        summary.setdefault("train", {})[folder.name] = {
            "epochs_done": int(frame["epoch"].max()),
            "val_top1": float(frame["val_top1"].iloc[-1]),
            "test_top1": final.get("test_top1"),
            "images_per_s": float(frame["images_per_s"].median()),
        }
if runs:
    pd.concat(runs).to_csv(out / "histories.csv", index=False, float_format="%.5f")
try:
    from rlnas.search.run_folder import RunFolder

    run = RunFolder.open(work / "run")
    baseline = run.provenance.baseline
    columns = ["arch", "latency_ms", "accuracy", "feasible"]
    summary["search"] = {
        "baseline": None if baseline is None else vars(baseline),
        "top3": run.ranked().head(3)[columns].to_dict("records"),
    }
except Exception as exc:  # the search step failed: say so, keep the rest
    summary["search"] = f"unreadable: {exc}"
(out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
print(json.dumps(summary, indent=2, default=str))
failed = steps[steps["rc"] != 0]
if len(failed):
    print(f"gpu_check: {len(failed)} step(s) failed: {', '.join(failed['step'])}")
    sys.exit(1)
EOF
rc=$?
log "done (exit $rc); results in $OUTDIR; work folder $WORK"
exit $rc
