#!/usr/bin/env bash
# The control API's reserve, at the real open-file limit: a release
# fault-server under this machine's limit (20,000 here) with one stub
# dependency, then idle connections from two separate client processes (a
# process may hold at most 20,000 files) until every data-plane slot is held
# and more are refused; meanwhile the control API is timed (GET /healthz,
# POST /dependencies: a new listener needs a descriptor), and a flood of
# half-open control connections is sent at it too. Loopback only; bounded in
# count (IDLE connections, default 21,000 over two processes) and time.
#
#   bench/connections.sh
#
# Figures: connections the data plane held (its cap: the limit less the
# reserve), connections refused at accept, and the control API's answers
# (status and milliseconds) at full load. Python 3 drives the clients.
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE=${IDLE:-21000}
cargo build --release -q -p fault-server
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
printf '[[dependencies]]\nname = "dep"\n' >"$dir/config.toml"
target/release/fault-server --config "$dir/config.toml" --control 127.0.0.1:0 >"$dir/started" &
for _ in $(seq 100); do [ -s "$dir/started" ] && break; sleep 0.05; done
control=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control"])' "$dir/started")
dep=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dependencies"]["dep"])' "$dir/started")
echo "open-file limit: $(ulimit -n); control $control, data plane $dep"

# One client process: opens N idle connections, reports how many stayed up,
# holds them until told to stop (its standard input closes).
cat >"$dir/client.py" <<'PY'
import socket, sys, select
host, port = sys.argv[1].rsplit(":", 1)
n = int(sys.argv[2])
held = []
for _ in range(n):
    s = socket.socket()
    try:
        s.connect((host, int(port)))
    except OSError:
        break
    held.append(s)
# The server resets what it cannot hold: wait a moment, then count who is still up.
select.select([], [], [], 1.0)
up = []
for s in held:
    s.setblocking(False)
    try:
        alive = s.recv(1) != b""
    except BlockingIOError:
        alive = True
    except OSError:
        alive = False
    if alive:
        up.append(s)
    else:
        s.close()
print(len(up), flush=True)
sys.stdin.read()
PY
half=$((IDLE / 2))
exec 3> >(python3 "$dir/client.py" "$dep" "$half" >"$dir/a")
exec 4> >(python3 "$dir/client.py" "$dep" "$((IDLE - half))" >"$dir/b")
for _ in $(seq 600); do [ -s "$dir/a" ] && [ -s "$dir/b" ] && break; sleep 0.1; done
held=$(( $(cat "$dir/a") + $(cat "$dir/b") ))
echo "idle data-plane connections held: $held of $IDLE sent"

timed() { # method path body
  python3 - "$control" "$@" <<'PY'
import socket, sys, time
addr, method, path, body = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
host, port = addr.rsplit(":", 1)
t = time.monotonic()
s = socket.create_connection((host, int(port)), timeout=5)
s.sendall(f"{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n{body}".encode())
answer = b""
while chunk := s.recv(65536):
    answer += chunk
ms = (time.monotonic() - t) * 1000
print(f"{method} {path}: {answer.split(b' ', 2)[1].decode()} in {ms:.1f} ms")
print(answer.decode(errors="replace").split("\r\n\r\n", 1)[1][:200] if path.startswith("/dependencies/") else "", end="")
PY
}
timed GET /healthz ""
timed POST /dependencies '{"name": "added"}'
timed GET /dependencies/dep ""
echo
# Half-open control connections, more than the control API keeps.
python3 - "$control" <<'PY' &
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
flood = []
for _ in range(1000):
    try:
        s = socket.create_connection((host, int(port)), timeout=1)
        s.sendall(b"GET /healthz HTTP/1.1\r\nhost: ")
        flood.append(s)
    except OSError:
        pass
time.sleep(5)
PY
sleep 2
echo "with 1,000 half-open control connections:"
timed GET /healthz ""
wait %% 2>/dev/null || true
exec 3>&- 4>&-
