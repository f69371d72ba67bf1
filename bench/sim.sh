#!/usr/bin/env bash
# The simulation's speed: 256 property-test cases (PROPTEST_CASES to change)
# of 8 s faults on a paused clock, against the real time they stand for.
# Target: at most 5 s of wall time. Run from the repository's root.
set -euo pipefail
cargo build --release -q -p faultline-sim --example sim_speed
for round in 1 2 3; do
  echo "round $round"
  target/release/examples/sim_speed
done
