#!/usr/bin/env bash
# Installs the tools the operations tests use, once per machine (each step skipped when present):
#   chromium  headless browser for the status page test (Debian package)
#   promtool  checks alert rules and dashboard queries (Debian package prometheus)
#   helm      renders deploy/helm (Debian has no package: built from the Go module proxy into
#             ${TESTENV_CACHE:-~/.cache/gw-testenv}/go-bin)
# Usage: tools.sh [chromium|promtool|helm]... (default: all). Prints each tool's path; exit 3 if one
# could not be had (the tests then skip loudly).
set -uo pipefail
HELM_VERSION=${HELM_VERSION:-v3.22.0}
CACHE=${TESTENV_CACHE:-$HOME/.cache/gw-testenv}
rc=0

apt_install() { # package binary
  command -v "$2" >/dev/null && return 0
  [ "$(id -u)" = 0 ] || { echo "tools.sh: $2 missing and not root: apt-get install -y $1" >&2; return 3; }
  echo "tools.sh: installing Debian package $1 (first run on this machine)…" >&2
  { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$1" >&2 ||
    { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$1" >&2; }; } || return 3
}

for tool in "${@:-chromium promtool helm}"; do
  for t in $tool; do
    case $t in
      chromium) apt_install chromium chromium && command -v chromium || rc=3 ;;
      promtool) apt_install prometheus promtool && command -v promtool || rc=3 ;;
      helm)
        out=$CACHE/go-bin/helm@$HELM_VERSION
        if [ ! -x "$out" ]; then
          if ! command -v go >/dev/null; then echo "tools.sh: Go is needed to build helm" >&2; rc=3; continue; fi
          echo "tools.sh: building helm $HELM_VERSION (first run on this machine, a few minutes)…" >&2
          tmp=$(mktemp -d)
          if GOTOOLCHAIN=local GOBIN="$tmp" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2; then
            mkdir -p "$(dirname "$out")" && mv "$tmp/helm" "$out"
          else
            rc=3
          fi
          rm -rf "$tmp"
        fi
        [ -x "$out" ] && echo "$out"
        ;;
      *) echo "tools.sh: unknown tool $t" >&2; exit 2 ;;
    esac
  done
done
exit $rc
