#!/usr/bin/env bash
# Builds the test control plane (etcd + kube-apiserver) from the Go module proxy into
# ${TESTENV_CACHE:-$HOME/.cache/gw-testenv}/bin/<name>-<version>; skips what already exists.
# Exit status 3 = Go is not installed (callers skip the Kubernetes suites and say why).
set -euo pipefail

ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KUBE_VERSION=${KUBE_VERSION:-v1.34.4}
CACHE=${TESTENV_CACHE:-$HOME/.cache/gw-testenv}
BIN=$CACHE/bin

log() { echo "$(date +%H:%M:%S) build.sh: $*"; }

if [ -x "$BIN/etcd-$ETCD_VERSION" ] && [ -x "$BIN/kube-apiserver-$KUBE_VERSION" ]; then
  log "have $BIN/etcd-$ETCD_VERSION and $BIN/kube-apiserver-$KUBE_VERSION"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: 'go' is not on PATH; cannot build etcd and kube-apiserver for the Kubernetes test suites." >&2
  echo "build.sh: install Go >= 1.24 (https://go.dev/dl/) and re-run, or put prebuilt binaries at" >&2
  echo "build.sh:   $BIN/etcd-$ETCD_VERSION and $BIN/kube-apiserver-$KUBE_VERSION" >&2
  exit 3
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "build.sh: python3 is required to read 'go mod' JSON output" >&2
  exit 1
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath
mkdir -p "$BIN"
start_all=$(date +%s)

build_etcd() {
  local out=$BIN/etcd-$ETCD_VERSION
  if [ -x "$out" ]; then log "have $out"; return 0; fi
  local t0; t0=$(date +%s)
  if [ -d "$CACHE/build/etcd-$ETCD_VERSION" ]; then
    log "building etcd $ETCD_VERSION (about 10 seconds with a warm Go cache)…"
  else
    log "building etcd $ETCD_VERSION (first run on this machine, about 1 minute)…"
  fi
  local w=$CACHE/build/etcd-$ETCD_VERSION
  mkdir -p "$w"
  (
    cd "$w"
    [ -f go.mod ] || go mod init testenv.local/etcd >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    go build -o "$out.tmp" -ldflags "-s -w" go.etcd.io/etcd/server/v3
  )
  mv "$out.tmp" "$out"
  log "etcd $ETCD_VERSION ready in $(( $(date +%s) - t0 ))s: $out"
}

build_kube_apiserver() {
  local out=$BIN/kube-apiserver-$KUBE_VERSION
  if [ -x "$out" ]; then log "have $out"; return 0; fi
  local t0; t0=$(date +%s)
  local staging=v0.${KUBE_VERSION#v1.}            # staging modules: v1.34.4 -> v0.34.4
  local minor; minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
  local w=$CACHE/build/kube-apiserver-$KUBE_VERSION
  if [ -d "$w" ]; then
    log "building kube-apiserver $KUBE_VERSION (about 15 seconds with a warm Go cache)…"
  else
    log "building kube-apiserver $KUBE_VERSION (first run on this machine, about 4 minutes)…"
  fi
  mkdir -p "$w"
  (
    cd "$w"
    # k8s.io/kubernetes replaces its staging modules with ./staging/...; a wrapper module
    # points each of them at the published v0.x.y instead.
    printf 'module testenv.local/kube-apiserver\n\ngo 1.24.0\n\ngodebug default=go1.24\n' > go.mod
    rm -f go.sum
    log "  downloading k8s.io/kubernetes@$KUBE_VERSION"
    local info modfile
    info=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION")
    modfile=$(printf '%s' "$info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    local n=0
    for m in $(go mod edit -json "$modfile" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    if r["New"]["Path"].startswith("./staging/"):
        print(r["Old"]["Path"])'); do
      go mod edit -replace="$m=$m@$staging"
      n=$((n + 1))
    done
    log "  replaced $n staging modules with $staging; resolving dependencies"
    go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION"
    log "  compiling (the long part)"
    go build -o "$out.tmp" -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
      -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
      k8s.io/kubernetes/cmd/kube-apiserver
  )
  mv "$out.tmp" "$out"
  log "kube-apiserver $KUBE_VERSION ready in $(( $(date +%s) - t0 ))s: $out"
}

build_etcd
build_kube_apiserver
log "done in $(( $(date +%s) - start_all ))s"
