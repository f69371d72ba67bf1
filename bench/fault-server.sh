#!/usr/bin/env bash
# Fault server benchmark: three measurements side by side in one run, on
# loopback only, each bounded in time and count.
#
#   bench/fault-server.sh            # everything (about 3 minutes)
#   ROUNDS=3 SECONDS_PER_ROUND=5 bench/fault-server.sh throughput
#
# 1. throughput: stub with no faults and the journal on (default capacity)
#    against a bare hyper server built from this repo
#    (fault-server/examples/bare_hyper.rs), both under wrk, 2 threads, 64
#    connections; rounds alternate between the two and the figure is the
#    median of the per-round ratios (absolute numbers drift on a shared machine).
#    Target: >= 0.9x.
# 2. latency: a fixed 200 ms latency fault at 300 requests/s for 20 s, open
#    loop (oha -q 300 --latency-correction: latency from the intended send
#    time). Target: p50 <= 200.5 ms, p99 <= 202 ms. The journal's own view
#    (arrival to departure at the server) is printed beside it.
# 3. held: 10,000 concurrent requests held by an 8 s latency fault (hey, one
#    connection each, in a separate process: a process may hold at most 20,000
#    files). Target: all complete, RSS per held request <= 17 KB (VmRSS from
#    /proc while they are held, minus VmRSS before), and control API p99 <= 10 ms
#    meanwhile (hey, 1 worker, against GET /dependencies/bench/stats).
#
# Installs wrk and hey from Debian's packages and oha with cargo (a few
# minutes, once) when missing. Writes raw tool output under bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
WHAT=${1:-all}
need wrk
need hey
need python3
need curl
need_oha

# Built in two commands: an example pulls in dev-dependency features (tokio's
# test-util) that must not leak into the measured binary.
cargo build --release -q -p fault-server --bin fault-server
cargo build --release -q -p fault-server --example bare_hyper
FAULT_SERVER=target/release/fault-server
BARE=target/release/examples/bare_hyper

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

json_field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval('d'+sys.argv[2]))" "$1" "$2"; }

start_fault_server() { # $1: output file; prints nothing; sets FS_PID, FS_DEP, FS_CONTROL
  cat > "$OUT/bench.toml" <<'TOML'
[[dependencies]]
name = "bench"
[dependencies.response]
body = "ok"
TOML
  "$FAULT_SERVER" --config "$OUT/bench.toml" --control 127.0.0.1:0 --seed 1 > "$1" &
  FS_PID=$!; pids+=("$FS_PID")
  for _ in $(seq 50); do [ -s "$1" ] && break; sleep 0.1; done
  FS_DEP=$(json_field "$1" "['dependencies']['bench']")
  FS_CONTROL=$(json_field "$1" "['control']")
}

control() { # METHOD PATH [BODY]
  curl -sf -X "$1" "http://$FS_CONTROL$2" ${3:+-d "$3"} >/dev/null
}

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

throughput() {
  echo "== 1. stub throughput vs bare hyper (wrk -t2 -c64, ${ROUNDS} rounds x ${SECONDS_PER_ROUND}s)"
  "$BARE" 127.0.0.1:0 > "$OUT/bare.json" & pids+=($!)
  for _ in $(seq 50); do [ -s "$OUT/bare.json" ] && break; sleep 0.1; done
  local bare; bare=$(json_field "$OUT/bare.json" "['addr']")
  start_fault_server "$OUT/fs-throughput.json"
  # Warm both up, and fill the journal to its cap so the ring is measured full.
  wrk -t2 -c64 -d3s "http://$bare/" >/dev/null
  wrk -t2 -c64 -d3s "http://$FS_DEP/" >/dev/null
  : > "$OUT/throughput.txt"
  for round in $(seq "$ROUNDS"); do
    b=$(wrk -t2 -c64 -d"${SECONDS_PER_ROUND}s" "http://$bare/" | awk '/Requests\/sec/ {print $2}')
    f=$(wrk -t2 -c64 -d"${SECONDS_PER_ROUND}s" "http://$FS_DEP/" | awk '/Requests\/sec/ {print $2}')
    echo "$round $b $f" | tee -a "$OUT/throughput.txt" | awk '{printf "   round %s: bare %.0f req/s, fault server %.0f req/s, ratio %.3f\n", $1, $2, $3, $3/$2}'
  done
  python3 - "$OUT/throughput.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
ratios = [float(f) / float(b) for _, b, f in rows]
med = statistics.median(ratios)
print(f"   median ratio {med:.3f} (target >= 0.9): {'PASS' if med >= 0.9 else 'FAIL'}")
PY
  local stats; stats=$(curl -sf "http://$FS_CONTROL/dependencies/bench/stats")
  echo "   journal: $(echo "$stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["total"]["calls"], "calls journaled,", s["retained_records"], "records kept,", s["dropped_records"], "dropped past the cap")')"
  kill "$FS_PID"
}

latency() {
  echo "== 2. 200 ms latency fault at 300 req/s for 20 s (oha -q 300 -c 64 --latency-correction)"
  start_fault_server "$OUT/fs-latency.json"
  control PUT /dependencies/bench/faults '{"faults": [{"latency": {"fixed": "200ms"}}]}'
  oha -z 20s -q 300 -c 64 --latency-correction --no-tui "http://$FS_DEP/" > "$OUT/latency.txt"
  curl -sf "http://$FS_CONTROL/dependencies/bench/journal" > "$OUT/latency-journal.jsonl"
  python3 - "$OUT/latency.txt" "$OUT/latency-journal.jsonl" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
pct = {float(p): float(v) for p, v in re.findall(r"([\d.]+)% in ([\d.]+) ms", text)}
ok = pct[50.0] <= 200.5 and pct[99.0] <= 202.0
print(f"   client: {rps:.1f} req/s, p50 {pct[50.0]:.2f} ms, p90 {pct[90.0]:.2f} ms, p99 {pct[99.0]:.2f} ms, "
      f"p99.9 {pct[99.9]:.2f} ms (target p50 <= 200.5, p99 <= 202): {'PASS' if ok else 'FAIL'}")
held = sorted((r["departure_ns"] - r["arrival_ns"]) / 1e6 for r in map(json.loads, open(sys.argv[2])) if r["departure_ns"])
q = lambda p: held[min(len(held) - 1, int(len(held) * p))]
print(f"   server journal: {len(held)} calls, p50 {q(0.5):.2f} ms, p99 {q(0.99):.2f} ms, max {held[-1]:.2f} ms")
PY
  kill "$FS_PID"
}

held() {
  echo "== 3. 10,000 requests held by an 8 s latency fault"
  start_fault_server "$OUT/fs-held.json"
  # Warm up so the baseline includes the runtime's steady state.
  hey -n 2000 -c 50 "http://$FS_DEP/" >/dev/null
  control POST /reset
  control PUT /dependencies/bench/faults '{"faults": [{"latency": {"fixed": "8s"}}]}'
  local before; before=$(rss_kb "$FS_PID")
  hey -n 10000 -c 10000 -t 60 "http://$FS_DEP/" > "$OUT/held.txt" &
  local hey_pid=$!; pids+=("$hey_pid")
  local in_flight=0
  for _ in $(seq 80); do
    in_flight=$(curl -sf "http://$FS_CONTROL/dependencies/bench/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["in_flight"])')
    [ "$in_flight" -ge 10000 ] && break
    sleep 0.1
  done
  local during; during=$(rss_kb "$FS_PID")
  hey -n 300 -c 1 "http://$FS_CONTROL/dependencies/bench/stats" > "$OUT/held-control.txt"
  local still; still=$(curl -sf "http://$FS_CONTROL/dependencies/bench/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["in_flight"])')
  wait "$hey_pid"
  python3 - "$OUT/held.txt" "$OUT/held-control.txt" "$before" "$during" "$in_flight" "$still" <<'PY'
import re, sys
held, control, before, during, in_flight, still = sys.argv[1:]
held_text = open(held).read()
ok_count = sum(int(n) for n in re.findall(r"\[200\]\s+(\d+) responses", held_text))
errors = "Error distribution" in held_text
per = (int(during) - int(before)) * 1024 / 10000
ctext = open(control).read()
p99 = float(re.search(r"99% in ([\d.]+) secs", ctext).group(1)) * 1000
p50 = float(re.search(r"50% in ([\d.]+) secs", ctext).group(1)) * 1000
print(f"   in flight at once: {in_flight} (still {still} after the control probe); completed with 200: {ok_count}/10000"
      f"{' (errors: see bench/out/held.txt)' if errors else ''}")
print(f"   RSS {int(before)/1024:.1f} MiB before, {int(during)/1024:.1f} MiB held: {per/1024:.2f} KiB per held request "
      f"(target <= 17 KB): {'PASS' if per <= 17000 else 'FAIL'}")
print(f"   control API while held: p50 {p50:.2f} ms, p99 {p99:.2f} ms (target <= 10 ms): {'PASS' if p99 <= 10 else 'FAIL'}")
PY
  kill "$FS_PID"
}

case "$WHAT" in
  throughput) throughput ;;
  latency) latency ;;
  held) held ;;
  all) throughput; latency; held ;;
  *) echo "usage: $0 [all|throughput|latency|held]" >&2; exit 2 ;;
esac
