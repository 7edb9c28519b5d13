#!/usr/bin/env bash
# Put `redis-server` and `redis-cli` (Debian bookworm's packages of REDIS_VERSION) into the directory given as
# $1, as wrappers around the packages extracted under ${XDG_CACHE_HOME:-~/.cache}/modelcatalog/tools/redis-<v>.
# No root: `apt-get download` and `dpkg -x`. The test bed starts one redis-server per local cluster (the
# serverless store); the product itself uses an existing Redis (docs/serverless.md).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

bin_dir=${1:?usage: hack/redis.sh DIR}
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/modelcatalog/tools
root="$cache_root/redis-$REDIS_VERSION"
log() { echo "[redis] $*" >&2; }

# The Debian revision of REDIS_VERSION the configured sources offer (security updates bump it).
candidate() {
  apt-cache madison "$1" 2>/dev/null | awk -v v="$REDIS_VERSION" '{ if (index($3, ":" v "-") || index($3, v "-") == 1) { print $3; exit } }'
}

extract() {
  command -v apt-get >/dev/null && command -v dpkg >/dev/null || {
    log "apt-get and dpkg are needed to fetch Redis $REDIS_VERSION (or put redis-server in MODELCATALOG_TOOLS_DIR)"
    return 1
  }
  local work pkg version
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  local wanted=()
  for pkg in redis-tools redis-server; do
    version=$(candidate "$pkg")
    [[ -n "$version" ]] || { log "no $pkg $REDIS_VERSION in the apt sources (apt-get update?)"; return 1; }
    wanted+=("$pkg=$version")
  done
  wanted+=(liblzf1 libjemalloc2)  # redis-server's shared libraries that a minimal Debian lacks
  log "downloading ${wanted[*]}"
  (cd "$work" && apt-get download "${wanted[@]}" >/dev/null 2>&1) || { log "apt-get download failed"; return 1; }
  mkdir -p "$root.tmp"
  for pkg in "$work"/*.deb; do dpkg -x "$pkg" "$root.tmp"; done
  rm -rf "$root" && mv "$root.tmp" "$root"
}

[[ -x "$root/usr/bin/redis-server" ]] || extract
libs=$(dirname "$(find "$root/usr/lib" -name 'libjemalloc.so.*' | head -1)")
for bin in redis-server redis-cli; do
  cat > "$bin_dir/$bin" <<WRAPPER
#!/bin/sh
# Debian's $bin $REDIS_VERSION, extracted by hack/redis.sh
LD_LIBRARY_PATH="$libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$root/usr/bin/$bin" "\$@"
WRAPPER
  chmod +x "$bin_dir/$bin"
done
"$bin_dir/redis-server" --version >&2
