# Shared by the benchmark scripts (sourced from the repository's root): the
# rounds and output folder, and installing what they measure against when
# missing (wrk and hey from Debian's packages, oha with cargo, once).
ROUNDS=${ROUNDS:-10}
SECONDS_PER_ROUND=${SECONDS_PER_ROUND:-5}
OUT=bench/out
mkdir -p "$OUT"

need() {
  command -v "$1" >/dev/null 2>&1 && return
  echo "installing $1 from Debian's packages" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1") >/dev/null
}

need_oha() {
  export PATH="$HOME/.cargo/bin:$PATH"
  command -v oha >/dev/null 2>&1 || { echo "installing oha with cargo" >&2; cargo install oha --locked -q; }
}

# start_haproxy MODE PORT SERVER NAME: HAProxy (one thread) in MODE (tcp or
# http) on 127.0.0.1:PORT in front of SERVER (host:port), in the background;
# its config is $OUT/NAME-haproxy.cfg and its pid appended to the caller's
# `pids`. The peer proxy the proxy benchmarks measure in the same rounds.
start_haproxy() {
  local mode=$1 port=$2 server=$3 name=$4 keepalive=""
  [ "$mode" = http ] && keepalive=$'  option http-keep-alive\n  http-reuse always'
  cat > "$OUT/$name-haproxy.cfg" <<CFG
global
  maxconn 5000
  nbthread 1
defaults
  mode $mode
$keepalive
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen $name
  bind 127.0.0.1:$port
  server $name $server
CFG
  "$(command -v haproxy || echo /usr/sbin/haproxy)" -db -f "$OUT/$name-haproxy.cfg" >/dev/null 2>&1 &
  pids+=($!)
}
