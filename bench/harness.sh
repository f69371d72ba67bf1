#!/usr/bin/env bash
# Harness load driver benchmark: side by side in one run against the same bare
# hyper server (fault-server/examples/bare_hyper.rs) on loopback, each step
# bounded in time and count. The driver runs as harness/examples/drive.rs.
#
#   bench/harness.sh                 # everything (about 5 minutes)
#   ROUNDS=3 SECONDS_PER_ROUND=5 bench/harness.sh closed
#   bench/harness.sh open | memory
#
# 1. closed: 64 connections, closed loop, against oha (-c 64) and wrk (-t2
#    -c64); rounds alternate between the three and the figures are the
#    medians of the per-round ratios. Targets: >= 1.0x oha, >= 0.9x wrk.
# 2. open: 5,000 and 20,000 requests/s for 10 s each. The achieved send rate
#    (requests over the span from first to last send) must be within 0.5% of
#    the target, with no send dropped.
# 3. memory: 10 million requests (closed loop, 64 connections); peak RSS
#    (VmHWM) must stay <= 200 MB. Records are capped (1M, 64 bytes each);
#    histograms count every request.
#
# Installs wrk from Debian's packages and oha with cargo (a few minutes, once)
# when missing. Writes raw output under bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
WHAT=${1:-all}
need wrk
need python3
need_oha

# Built in separate commands so each binary gets only its own features.
cargo build --release -q -p fault-server --example bare_hyper
cargo build --release -q -p faultline-harness --example drive
BARE=target/release/examples/bare_hyper
DRIVE=target/release/examples/drive

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

"$BARE" 127.0.0.1:0 > "$OUT/harness-bare.json" & pids+=($!)
for _ in $(seq 50); do [ -s "$OUT/harness-bare.json" ] && break; sleep 0.1; done
ADDR=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['addr'])" "$OUT/harness-bare.json")
URL="http://$ADDR/"

field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

closed() {
  echo "== 1. closed loop, 64 connections, vs oha and wrk (${ROUNDS} rounds x ${SECONDS_PER_ROUND}s)"
  # Warm the server up.
  wrk -t2 -c64 -d2s "$URL" >/dev/null
  : > "$OUT/harness-closed.txt"
  for round in $(seq "$ROUNDS"); do
    local o w d
    o=$(oha -z "${SECONDS_PER_ROUND}s" -c 64 --no-tui "$URL" | awk '/Requests\/sec/ {print $2}')
    w=$(wrk -t2 -c64 -d"${SECONDS_PER_ROUND}s" "$URL" | awk '/Requests\/sec/ {print $2}')
    d=$(field "$("$DRIVE" "$URL" --clients 64 --duration "${SECONDS_PER_ROUND}s")" requests_per_second)
    echo "$round $o $w $d" | tee -a "$OUT/harness-closed.txt" |
      awk '{printf "   round %s: oha %.0f, wrk %.0f, faultline %.0f req/s (%.3fx oha, %.3fx wrk)\n", $1, $2, $3, $4, $4/$2, $4/$3}'
  done
  python3 - "$OUT/harness-closed.txt" <<'PY'
import statistics, sys
rows = [list(map(float, l.split()[1:])) for l in open(sys.argv[1]) if l.strip()]
vs_oha = statistics.median(d / o for o, w, d in rows)
vs_wrk = statistics.median(d / w for o, w, d in rows)
print(f"   median: {vs_oha:.3f}x oha (target >= 1.0): {'PASS' if vs_oha >= 1.0 else 'FAIL'}; "
      f"{vs_wrk:.3f}x wrk (target >= 0.9): {'PASS' if vs_wrk >= 0.9 else 'FAIL'}")
PY
}

open_loop() {
  echo "== 2. open loop at 5,000 and 20,000 requests/s, 10 s each"
  for rate in 5000 20000; do
    local line; line=$("$DRIVE" "$URL" --rate "$rate" --duration 10s)
    echo "$line" > "$OUT/harness-open-$rate.json"
    python3 - "$rate" "$line" <<'PY'
import json, sys
rate, r = float(sys.argv[1]), json.loads(sys.argv[2])
off = abs(r["send_rate"] - rate) / rate
ok = off <= 0.005 and r["dropped"] == 0 and r["requests"] == int(rate * 10)
print(f"   {rate:.0f}/s: {r['requests']} sent (plan {int(rate * 10)}), send rate {r['send_rate']:.1f}/s "
      f"({off * 100:.3f}% off, target <= 0.5%), {r['dropped']} dropped, lag p99 {r['lag_p99_us']} us, "
      f"max {r['max_lag_us']} us, latency p50 {r['p50_us']} us p99 {r['p99_us']} us: {'PASS' if ok else 'FAIL'}")
PY
  done
}

memory() {
  echo "== 3. 10 million requests, closed loop, 64 connections: peak RSS"
  local line; line=$("$DRIVE" "$URL" --clients 64 --duration 10m --requests 10000000)
  echo "$line" > "$OUT/harness-memory.json"
  python3 - "$line" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
mb = r["peak_rss_kb"] / 1024
ok = r["requests"] == 10_000_000 and mb <= 200
print(f"   {r['requests']} requests in {r['seconds']:.0f} s ({r['requests_per_second']:.0f}/s), "
      f"{r['records_kept']} records kept, peak RSS {mb:.0f} MB (target <= 200 MB): {'PASS' if ok else 'FAIL'}")
PY
}

case "$WHAT" in
  closed) closed ;;
  open) open_loop ;;
  memory) memory ;;
  all) closed; open_loop; memory ;;
  *) echo "usage: $0 [all|closed|open|memory]" >&2; exit 2 ;;
esac
