# Shared by the benchmark scripts: install what they measure against when
# missing (wrk and hey from Debian's packages, oha with cargo, once).
need() {
  command -v "$1" >/dev/null 2>&1 && return
  echo "installing $1 from Debian's packages" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1") >/dev/null
}

need_oha() {
  export PATH="$HOME/.cargo/bin:$PATH"
  command -v oha >/dev/null 2>&1 || { echo "installing oha with cargo" >&2; cargo install oha --locked -q; }
}
