#!/usr/bin/env bash
# Installs rlnas in a fresh virtual environment of another Python and runs a smoke there:
# `rlnas spaces`, and a search of 20 evaluations on the default device's shipped table.
#
#   scripts/check_python.sh 3.10 [VENV]     # .ci/run runs this one
#   scripts/check_python.sh 3.13
#
# The exact versions come from constraints.txt; on a Python other than 3.11, torch is PyPI's
# default (CUDA) build, several GB. Prints the wall time of the install and of the smoke.
set -euo pipefail
VERSION=${1:?usage: scripts/check_python.sh VERSION [VENV]}
REPO=$(cd "$(dirname "$0")/.." && pwd)
VENV=${2:-$REPO/.venv-py$VERSION}
case $VENV in /*) ;; *) VENV=$PWD/$VENV ;; esac
PYTHON=""
for candidate in "python$VERSION" "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/"$VERSION".*/bin/python"$VERSION"; do
    if "$candidate" -V >/dev/null 2>&1; then PYTHON=$candidate; break; fi
done
[ -n "$PYTHON" ] || { echo "check_python.sh: no Python $VERSION found (pyenv install $VERSION)" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rlnas_py$VERSION.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
started=$SECONDS
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q -c "$REPO/constraints.txt" "$REPO"
installed=$((SECONDS - started))
cd "$WORK"
export RLNAS_HOME=$WORK/home
"$VENV/bin/rlnas" spaces >/dev/null
"$VENV/bin/rlnas" search --budget 20 --latency-ms 6 --no-calibrate --out "$WORK/run" | tail -2
[ -s "$WORK/run/pareto.parquet" ] || { echo "check_python.sh: the search wrote no run" >&2; exit 1; }
echo "Python $("$VENV/bin/python" -V 2>&1 | cut -d' ' -f2), torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)'): install ${installed} s, smoke $((SECONDS - started - installed)) s, environment $(du -sh "$VENV" | cut -f1)"
