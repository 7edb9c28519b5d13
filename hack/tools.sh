#!/usr/bin/env bash
# Obtain the control-plane binaries the local cluster and the tests need, in this order:
#   1. directories given in the environment (MODELCATALOG_TOOLS_DIR, KUBEBUILDER_ASSETS),
#   2. the per-version cache under ${XDG_CACHE_HOME:-~/.cache}/modelcatalog/tools,
#   3. a build from Go modules through the module proxy (first run: ~15 minutes on 2 cores).
# Plus redis-server and redis-cli (hack/redis.sh: Debian's packages); without them only the tests of the
# serverless store skip, saying why.
# Prints the directory that holds every binary on its last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
all_bins=("${k8s_bins[@]}" etcd kwok kwokctl helm cyclonus)

cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/modelcatalog/tools
key="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}_cyclonus-${CYCLONUS_VERSION}"
dest="$cache_root/$key"

log() { echo "[tools] $*" >&2; }

has_all() {
  local dir=$1 bin
  for bin in "${all_bins[@]}"; do [[ -x "$dir/$bin" ]] || return 1; done
}

# A directory of user-provided binaries may hold only some of them: link what it has, build the rest.
link_from() {
  local dir=$1 bin
  [[ -d "$dir" ]] || return 0
  for bin in "${all_bins[@]}"; do
    if [[ -x "$dir/$bin" && ! -e "$dest/$bin" ]]; then
      ln -sf "$dir/$bin" "$dest/$bin"
      log "using $dir/$bin"
    fi
  done
}

export GOTOOLCHAIN=local GOFLAGS=-mod=mod
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build_kubernetes() {
  local v=$KUBERNETES_VERSION staging_version=v0${KUBERNETES_VERSION#v1}
  log "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $v (first time: ~10 minutes)"
  local mod="$work/k8s"; mkdir -p "$mod"; cd "$mod"
  go mod init modelcatalog.local/k8s-tools >/dev/null 2>&1
  go mod edit -go=1.26.0 -require="k8s.io/kubernetes@$v"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$v" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
  # Every staging module kubernetes replaces with ./staging/... is published as k8s.io/<name> v0.X.Y.
  local staging
  staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod")
  [[ -n "$staging" ]] || { log "no staging replaces found in $gomod"; exit 1; }
  local m
  for m in $staging; do go mod edit -replace="$m=$m@$staging_version"; done
  local minor=${v#v1.}; minor=${minor%%.*}
  local pkg=k8s.io/component-base/version ldflags="-s -w"
  ldflags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  ldflags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
  go build -trimpath -ldflags "$ldflags" -o "$dest/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
}

build_etcd() {
  log "building etcd $ETCD_VERSION (~1 minute)"
  local mod="$work/etcd"; mkdir -p "$mod"; cd "$mod"
  go mod init modelcatalog.local/etcd-tools >/dev/null 2>&1
  go mod edit -go=1.26.0 -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go build -trimpath -ldflags "-s -w" -o "$dest/etcd" go.etcd.io/etcd/server/v3
}

go_install() {
  log "installing $1 (~2 minutes)"
  GOBIN="$dest" go install -trimpath -ldflags "-s -w" "$1"
}

build_missing() {
  [[ -x "$dest/kube-apiserver" && -x "$dest/kube-controller-manager" && -x "$dest/kube-scheduler" && -x "$dest/kubectl" ]] || build_kubernetes
  [[ -x "$dest/etcd" ]] || build_etcd
  [[ -x "$dest/kwok" ]] || go_install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  [[ -x "$dest/kwokctl" ]] || go_install "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
  [[ -x "$dest/helm" ]] || go_install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  [[ -x "$dest/cyclonus" ]] || go_install "github.com/mattfenwick/cyclonus/cmd/cyclonus@$CYCLONUS_VERSION"
}

mkdir -p "$dest"
if ! has_all "$dest"; then
  link_from "${MODELCATALOG_TOOLS_DIR:-}"
  link_from "${KUBEBUILDER_ASSETS:-}"
  command -v go >/dev/null || { log "Go is needed to build the missing binaries (or set MODELCATALOG_TOOLS_DIR)"; exit 1; }
  start=$SECONDS
  build_missing
  log "built in $((SECONDS - start)) s"
fi
has_all "$dest" || { log "still missing binaries in $dest"; exit 1; }
if [[ ! -x "$dest/redis-server" ]]; then
  link_redis() { [[ -n "${1:-}" && -x "$1/redis-server" ]] && ln -sf "$1/redis-server" "$1/redis-cli" "$dest/"; }
  link_redis "${MODELCATALOG_TOOLS_DIR:-}" || bash "$here/redis.sh" "$dest" ||
    log "no redis-server: the serverless store's tests and the demo's metering are skipped"
fi
echo "$dest"
