#!/usr/bin/env bash
# HTTP proxy benchmark: a proxy dependency with no faults in front of a bare
# hyper upstream (fault-server/examples/bare_hyper.rs), against that upstream
# called directly, side by side in one run; loopback only, bounded in time.
#
#   bench/proxy.sh                     # ROUNDS=10 SECONDS_PER_ROUND=5
#
# 1. throughput: wrk -t2 -c64, rounds alternating direct and proxied; the
#    figure is the median of the per-round ratios. Target: >= 0.85x. A peer
#    proxy in the same rounds: HAProxy in HTTP mode (one thread, keep-alive
#    to the upstream), what a mature reverse proxy costs on this machine.
# 2. added latency: oha at a fixed 2,000 requests/s for 10 s, open loop
#    (--latency-correction), direct then proxied. Target: p99 added <= 1 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
need wrk
need python3
need haproxy
need_oha
cargo build --release -q -p fault-server --bin fault-server
cargo build --release -q -p fault-server --example bare_hyper
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
json_field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval('d'+sys.argv[2]))" "$1" "$2"; }

target/release/examples/bare_hyper 127.0.0.1:0 > "$OUT/proxy-upstream.json" & pids+=($!)
for _ in $(seq 50); do [ -s "$OUT/proxy-upstream.json" ] && break; sleep 0.1; done
upstream=$(json_field "$OUT/proxy-upstream.json" "['addr']")
printf '[[dependencies]]\nname = "api"\nproxy = "http://%s"\n' "$upstream" > "$OUT/proxy.toml"
target/release/fault-server --config "$OUT/proxy.toml" --control 127.0.0.1:0 --seed 1 > "$OUT/proxy-fs.json" & pids+=($!)
for _ in $(seq 50); do [ -s "$OUT/proxy-fs.json" ] && break; sleep 0.1; done
proxy=$(json_field "$OUT/proxy-fs.json" "['dependencies']['api']")
haproxy_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_haproxy http "$haproxy_port" "$upstream" proxy
haproxy="127.0.0.1:$haproxy_port"
for _ in $(seq 100); do curl -sf "http://$haproxy/" >/dev/null 2>&1 && break; sleep 0.05; done
curl -sf "http://$haproxy/" >/dev/null || { echo "HAProxy did not start: haproxy -c -f $OUT/proxy-haproxy.cfg" >&2; exit 1; }

echo "== 1. throughput, direct vs proxied (wrk -t2 -c64, ${ROUNDS} rounds x ${SECONDS_PER_ROUND}s)"
wrk -t2 -c64 -d3s "http://$upstream/" >/dev/null
wrk -t2 -c64 -d3s "http://$proxy/" >/dev/null
wrk -t2 -c64 -d3s "http://$haproxy/" >/dev/null
: > "$OUT/proxy-throughput.txt"
for round in $(seq "$ROUNDS"); do
  d=$(wrk -t2 -c64 -d"${SECONDS_PER_ROUND}s" "http://$upstream/" | awk '/Requests\/sec/ {print $2}')
  p=$(wrk -t2 -c64 -d"${SECONDS_PER_ROUND}s" "http://$proxy/" | awk '/Requests\/sec/ {print $2}')
  h=$(wrk -t2 -c64 -d"${SECONDS_PER_ROUND}s" "http://$haproxy/" | awk '/Requests\/sec/ {print $2}')
  echo "$round $d $p $h" | tee -a "$OUT/proxy-throughput.txt" | awk '{printf "   round %s: direct %.0f req/s, fault-server %.0f req/s (%.3f), haproxy %.0f req/s (%.3f)\n", $1, $2, $3, $3/$2, $4, $4/$2}'
done
python3 - "$OUT/proxy-throughput.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
med = statistics.median(float(p) / float(d) for _, d, p, _ in rows)
peer = statistics.median(float(h) / float(d) for _, d, _, h in rows)
print(f"   median ratio {med:.3f} (target >= 0.85): {'PASS' if med >= 0.85 else 'FAIL'}; HAProxy {peer:.3f}; fault-server / HAProxy {med / peer:.3f}")
PY

echo "== 2. added latency at 2,000 req/s for 10 s (oha --latency-correction)"
for who in direct proxied; do
  addr=$upstream; [ "$who" = proxied ] && addr=$proxy
  oha -z 10s -q 2000 -c 32 --latency-correction --no-tui "http://$addr/" > "$OUT/proxy-latency-$who.txt"
done
python3 - "$OUT/proxy-latency-direct.txt" "$OUT/proxy-latency-proxied.txt" <<'PY'
import re, sys
def pct(path):
    text = open(path).read()
    return {float(p): float(v) for p, v in re.findall(r"([\d.]+)% in ([\d.]+) ms", text)}
d, p = pct(sys.argv[1]), pct(sys.argv[2])
added = p[99.0] - d[99.0]
print(f"   direct p50 {d[50.0]:.3f} ms p99 {d[99.0]:.3f} ms; proxied p50 {p[50.0]:.3f} ms p99 {p[99.0]:.3f} ms")
print(f"   p99 added {added:.3f} ms (target <= 1 ms): {'PASS' if added <= 1.0 else 'FAIL'}")
PY
