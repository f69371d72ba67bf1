#!/usr/bin/env bash
# Builds the fuzz targets and runs each one in turn:
#
#   fuzz/run.sh [INPUTS] [SEED]          # default 10,000,000 inputs each, seed 0
#   TARGETS="suite config" fuzz/run.sh 100000
#   PROFILE=dev fuzz/run.sh 20000        # what CI runs: no optimized build
#
# The default profile, `fuzz` (root Cargo.toml), is release with overflow
# checks and debug assertions on, so an overflow panics here as it would in
# a test. Each target prints its progress on stderr and one line of figures
# on stdout (inputs, panics, seconds, inputs/s, accepted, refused, and its
# own counts); the lines are also gathered into $OUT (default
# fuzz/out/figures.txt). Exits non-zero at the first target that panics or
# breaks an invariant, after printing its smallest failing input.
set -euo pipefail
cd "$(dirname "$0")/.."

INPUTS=${1:-10000000}
SEED=${2:-0}
PROFILE=${PROFILE:-fuzz}
TARGETS=${TARGETS:-suite fault-json config dataplane}
OUT=${OUT:-fuzz/out/figures.txt}
mkdir -p "$(dirname "$OUT")"

cargo build --profile "$PROFILE" --locked -p fuzz --bin faultline-fuzz
dir=$PROFILE
[ "$PROFILE" = dev ] && dir=debug
BIN="${CARGO_TARGET_DIR:-target}/$dir/faultline-fuzz"

: >"$OUT"
for target in $TARGETS; do
  echo "== $target: $INPUTS inputs, seed $SEED ($PROFILE build)" >&2
  start=$(date +%s)
  "$BIN" "$target" --inputs "$INPUTS" --seed "$SEED" | tee -a "$OUT"
  echo "== $target: $(($(date +%s) - start)) s wall" >&2
done
