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
