#!/usr/bin/env bash
# Installs schemathesis from PyPI into a venv under ${TESTENV_CACHE:-~/.cache/gw-testenv} (skipped when
# present) and prints the path of its CLI. Exit 3 when Python 3 with venv is unavailable.
set -euo pipefail
SCHEMATHESIS_VERSION=${SCHEMATHESIS_VERSION:-4.32.5}
CACHE=${TESTENV_CACHE:-$HOME/.cache/gw-testenv}
VENV=$CACHE/venv-schemathesis
if [ ! -x "$VENV/bin/schemathesis" ] || ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  command -v python3 >/dev/null || { echo "schemathesis.sh: python3 is needed" >&2; exit 3; }
  echo "schemathesis.sh: installing schemathesis $SCHEMATHESIS_VERSION into $VENV…" >&2
  python3 -m venv "$VENV" >&2 || { echo "schemathesis.sh: python3 -m venv failed" >&2; exit 3; }
  "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION" >&2
fi
echo "$VENV/bin/schemathesis"
