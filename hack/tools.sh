#!/usr/bin/env bash
# Builds the test and development tools from their Go modules (and playwright-core from npm)
# into a cache outside the clone,
# so a fresh clone on the same machine reuses them. Skips whatever is already cached at the
# pinned version, prints what it builds and how long it took, and fails loudly.
#
#   hack/tools.sh            build every tool
#   hack/tools.sh etcd helm  build only those
#
# The cache is $ELASTIC_JUPYTER_CACHE (default ~/.cache/elastic-jupyter); binaries land in its bin/.
set -euo pipefail

ETCD_VERSION=v3.6.8
K8S_VERSION=v1.37.2
K8S_STAGING_VERSION=v0.37.2
HELM_VERSION=v3.22.0
CONTROLLER_TOOLS_VERSION=v0.23.0
PLAYWRIGHT_VERSION=1.65.1

CACHE=${ELASTIC_JUPYTER_CACHE:-$HOME/.cache/elastic-jupyter}
BIN=$CACHE/bin
mkdir -p "$BIN"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { printf 'tools: %s\n' "$*" >&2; }
die() { printf 'tools: ERROR: %s\n' "$*" >&2; exit 1; }

# cached NAME VERSION: true when bin/NAME exists and was built at VERSION.
cached() { [[ -x $BIN/$1 && "$(cat "$BIN/.$1.version" 2>/dev/null)" == "$2" ]]; }
stamp() { echo "$2" >"$BIN/.$1.version"; }

# timed NAME VERSION CMD...: runs CMD, reports how long it took, stamps NAME at VERSION.
timed() {
  local name=$1 version=$2 start=$SECONDS
  shift 2
  log "building $name $version ..."
  "$@" || die "building $name $version failed (see the output above)"
  stamp "$name" "$version"
  log "built $name $version in $((SECONDS - start))s"
}

# Temporary modules live under one directory removed when the script exits.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/elastic-jupyter-tools.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
tmpmod() { mktemp -d "$WORK/mod.XXXXXX"; }

build_etcd() {
  cached etcd "$ETCD_VERSION" && return 0
  local d; d=$(tmpmod)
  timed etcd "$ETCD_VERSION" bash -c "
    set -euo pipefail; cd '$d'
    go mod init tools/etcd >/dev/null 2>&1
    go get go.etcd.io/etcd/server/v3@$ETCD_VERSION
    go build -trimpath -o '$BIN/etcd' go.etcd.io/etcd/server/v3"
}

k8s_binaries=(kube-apiserver kube-scheduler kube-controller-manager kubectl)

build_kubernetes() {
  local want=() b
  for b in "${k8s_binaries[@]}"; do cached "$b" "$K8S_VERSION" || want+=("$b"); done
  [[ ${#want[@]} -eq 0 ]] && return 0
  local d; d=$(tmpmod)
  log "preparing the kubernetes $K8S_VERSION wrapper module in $d ..."
  (
    set -euo pipefail
    cd "$d"
    go mod init tools/kubernetes >/dev/null 2>&1
    go mod edit -require "k8s.io/kubernetes@$K8S_VERSION"
    # Every staging module that k8s.io/kubernetes replaces with ./staging/... is pinned to the
    # matching published v0.x release.
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    [[ -f $gomod ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION"
    local staging
    staging=$(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod")
    [[ -n $staging ]] || die "no staging replaces found in $gomod"
    local m
    for m in $staging; do go mod edit -replace "$m=$m@$K8S_STAGING_VERSION"; done
    log "pinned $(wc -w <<<"$staging") staging modules to $K8S_STAGING_VERSION"
    {
      echo '//go:build tools'
      echo 'package tools'
      echo 'import ('
      for b in "${k8s_binaries[@]}"; do echo "  _ \"k8s.io/kubernetes/cmd/$b\""; done
      echo ')'
    } >tools.go
    go mod tidy >/dev/null 2>&1 || go mod tidy
  ) || die "preparing the kubernetes wrapper module failed"
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION") -X k8s.io/component-base/version.gitTreeState=clean"
  local ldclient="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION")"
  for b in "${want[@]}"; do
    timed "$b" "$K8S_VERSION" bash -c "cd '$d' && go build -trimpath -ldflags '$ldclient' -o '$BIN/$b' k8s.io/kubernetes/cmd/$b"
  done
}

build_helm() {
  cached helm "$HELM_VERSION" && return 0
  timed helm "$HELM_VERSION" env GOBIN="$BIN" go install -trimpath "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

build_controller_gen() {
  cached controller-gen "$CONTROLLER_TOOLS_VERSION" && return 0
  timed controller-gen "$CONTROLLER_TOOLS_VERSION" env GOBIN="$BIN" go install -trimpath "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_TOOLS_VERSION"
}

# playwright-core drives Debian's chromium in the end-to-end browser test; it is installed from
# npm into the cache (it never downloads a browser of its own).
build_playwright() {
  local dir=$CACHE/node
  if [[ -f $dir/node_modules/playwright-core/package.json ]] &&
    grep -q "\"version\": \"$PLAYWRIGHT_VERSION\"" "$dir/node_modules/playwright-core/package.json"; then
    return 0
  fi
  command -v npm >/dev/null || die "npm is needed to install playwright-core (apt-get install npm)"
  local start=$SECONDS
  log "installing playwright-core $PLAYWRIGHT_VERSION from npm ..."
  mkdir -p "$dir"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$dir" --no-audit --no-fund --silent \
    "playwright-core@$PLAYWRIGHT_VERSION" || die "installing playwright-core failed"
  log "installed playwright-core $PLAYWRIGHT_VERSION in $((SECONDS - start))s"
}

all=(controller-gen helm etcd kubernetes playwright)
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${all[@]}")
start=$SECONDS
for t in "${targets[@]}"; do
  case $t in
    etcd) build_etcd ;;
    kubernetes | kube-apiserver | kube-scheduler | kube-controller-manager | kubectl) build_kubernetes ;;
    helm) build_helm ;;
    controller-gen) build_controller_gen ;;
    playwright) build_playwright ;;
    *) die "unknown tool '$t' (known: ${all[*]})" ;;
  esac
done
log "tools ready in $BIN ($((SECONDS - start))s)"
