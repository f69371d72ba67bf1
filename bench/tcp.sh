#!/usr/bin/env bash
# TCP proxy benchmark: a TCP proxy dependency (release fault-server) in front
# of a real redis-server, against that server directly, side by side in one
# run; loopback only, bounded in count and time.
#
#   bench/tcp.sh                         # ROUNDS=5
#
# 1. throughput: redis-benchmark -t get,set -c 50 -n 200000, rounds
#    alternating direct and proxied; figure: the median per-round ratio of
#    ops/s. Target: >= 0.85x. A peer proxy measured in the same rounds:
#    HAProxy in TCP mode (no faults, one process), what any userspace proxy
#    costs on this machine.
# 2. latency: a 200 ms latency fault (downstream), 200 PINGs one after the
#    other on one connection; p50 and p99 of the round trip. Target: p50 <=
#    200.5 ms, p99 <= 202 ms.
# 3. idle: 10,000 proxied connections held open (a client process of its
#    own); the fault server's RSS per connection (two sockets each) and the
#    control API's p99 meanwhile. Target: <= 25 KB each, p99 <= 10 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
need redis-server
need redis-benchmark
need python3
need haproxy
ROUNDS=${ROUNDS:-5}
cargo build --release -q -p fault-server --bin fault-server
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
json_field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval('d'+sys.argv[2]))" "$1" "$2"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no --maxclients 15000 >/dev/null &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
printf '[[dependencies]]\nname = "cache"\ntcp = "127.0.0.1:%s"\n' "$redis_port" > "$OUT/tcp.toml"
target/release/fault-server --config "$OUT/tcp.toml" --control 127.0.0.1:0 --seed 1 > "$OUT/tcp-fs.json" &
fs_pid=$!; pids+=($fs_pid)
for _ in $(seq 50); do [ -s "$OUT/tcp-fs.json" ] && break; sleep 0.1; done
proxy=$(json_field "$OUT/tcp-fs.json" "['dependencies']['cache']")
proxy_port=${proxy##*:}
control=$(json_field "$OUT/tcp-fs.json" "['control']")

haproxy_port=$(free_port)
start_haproxy tcp "$haproxy_port" "127.0.0.1:$redis_port" tcp
for _ in $(seq 100); do redis-cli -p "$haproxy_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis-cli -p "$haproxy_port" ping >/dev/null || { echo "HAProxy did not start: haproxy -c -f $OUT/tcp-haproxy.cfg" >&2; exit 1; }

echo "== 1. redis-benchmark GET/SET, 50 clients, direct vs proxied, HAProxy (TCP mode) as a peer (${ROUNDS} rounds)"
# The mean of GET's and SET's requests/s (--csv: "test","rps",...).
ops() { redis-benchmark -h 127.0.0.1 -p "$1" -t get,set -c 50 -n 200000 --csv 2>/dev/null | awk -F, 'NR > 1 { gsub(/"/, "", $2); s += $2; n++ } END { print s / n }'; }
: > "$OUT/tcp-throughput.txt"
for round in $(seq "$ROUNDS"); do
  d=$(ops "$redis_port"); p=$(ops "$proxy_port"); h=$(ops "$haproxy_port")
  echo "$round $d $p $h" | tee -a "$OUT/tcp-throughput.txt" | awk '{printf "   round %s: direct %.0f ops/s, fault-server %.0f ops/s (%.3f), haproxy %.0f ops/s (%.3f)\n", $1, $2, $3, $3/$2, $4, $4/$2}'
done
python3 - "$OUT/tcp-throughput.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
med = statistics.median(float(p) / float(d) for _, d, p, _ in rows)
peer = statistics.median(float(h) / float(d) for _, d, _, h in rows)
print(f"   median ratio {med:.3f} (target >= 0.85): {'PASS' if med >= 0.85 else 'FAIL'}; HAProxy {peer:.3f}; fault-server / HAProxy {med / peer:.3f}")
PY

echo "== 2. PING through a 200 ms latency fault (200 round trips)"
curl -sf -X PUT "http://$control/dependencies/cache/faults" -d '{"faults": [{"latency": {"fixed": "200ms"}}]}' >/dev/null
python3 - "$proxy_port" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
taken = []
for _ in range(200):
    t = time.monotonic()
    s.sendall(b"PING\r\n")
    got = b""
    while not got.endswith(b"\r\n"):
        got += s.recv(64)
    taken.append((time.monotonic() - t) * 1000)
taken.sort()
p50, p99 = taken[len(taken) // 2], taken[int(len(taken) * 0.99) - 1]
ok = p50 <= 200.5 and p99 <= 202
print(f"   p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {taken[-1]:.3f} ms (target p50 <= 200.5, p99 <= 202): {'PASS' if ok else 'FAIL'}")
PY
curl -sf -X DELETE "http://$control/dependencies/cache/faults" >/dev/null

echo "== 3. 10,000 idle proxied connections"
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
before=$(rss "$fs_pid")
python3 - "$proxy_port" "$control" "$fs_pid" "$before" <<'PY'
import socket, sys, time, subprocess
port, control, pid, before = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
held = []
for _ in range(10_000):
    held.append(socket.create_connection(("127.0.0.1", port)))
time.sleep(2)
rss = int([l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0])
per = (rss - before) * 1024 / len(held)
host, cport = control.rsplit(":", 1)
taken = []
for _ in range(200):
    t = time.monotonic()
    c = socket.create_connection((host, int(cport)))
    c.sendall(f"GET /dependencies/cache/stats HTTP/1.1\r\nhost: {control}\r\nconnection: close\r\n\r\n".encode())
    while c.recv(65536):
        pass
    taken.append((time.monotonic() - t) * 1000)
    c.close()
taken.sort()
p99 = taken[int(len(taken) * 0.99) - 1]
ok = per <= 25_000 and p99 <= 10
print(f"   {len(held)} held: RSS {before} KB -> {rss} KB, {per / 1000:.1f} KB each; control API p50 {taken[len(taken)//2]:.2f} ms, p99 {p99:.2f} ms (target <= 25 KB, <= 10 ms): {'PASS' if ok else 'FAIL'}")
PY
