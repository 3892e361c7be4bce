#!/usr/bin/env bash
# Installs the load generator used by benchmarks and reliability runs: ghz, from the Go module proxy,
# into ${TESTENV_CACHE:-~/.cache/gw-testenv}/go-bin (skipped when present). Prints the binary's path.
set -euo pipefail
GHZ_VERSION=${GHZ_VERSION:-v0.93.0}   # the newest ghz the Go module proxy serves
CACHE=${TESTENV_CACHE:-$HOME/.cache/gw-testenv}
OUT=$CACHE/go-bin/ghz@$GHZ_VERSION
if [ ! -x "$OUT" ]; then
  command -v go >/dev/null || { echo "tools.sh: Go is needed to build ghz" >&2; exit 3; }
  echo "tools.sh: building ghz $GHZ_VERSION (first run on this machine, about a minute)…" >&2
  tmp=$(mktemp -d)
  GOTOOLCHAIN=local GOBIN="$tmp" go install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION" >&2
  mkdir -p "$(dirname "$OUT")"
  mv "$tmp/ghz" "$OUT"
  rm -rf "$tmp"
fi
echo "$OUT"
