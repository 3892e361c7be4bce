#!/usr/bin/env bash
# Generates client stubs from proto/ into the git-ignored gen/ at the repo root:
#   gen/go      protoc-gen-go + protoc-gen-go-grpc via `buf generate` (buf.gen.yaml, local plugins)
#   gen/python  grpcio-tools (python -m grpc_tools.protoc) from a venv
#   gen/cpp     Debian's protoc + grpc_cpp_plugin
#   gen/java    protoc + protoc-gen-grpc-java from Maven Central (versions in java/pom.xml)
#   gen/ts      @grpc/proto-loader's proto-loader-gen-types
# and gen/manifest.json (what was generated, what was skipped and why, tool paths).
#
# Usage: bash test/clients/gen.sh [--if-stale]     (npm run gen)
#   --if-stale   do nothing when gen/manifest.json already matches the inputs
#   PROTO_DIR    proto tree to generate from (default: proto/)
#   GEN_LANGS    subset, e.g. "go python" (default: go python cpp java ts)
#
# Tools are installed on first use, at pinned versions, into
# ${TESTENV_CACHE:-$HOME/.cache/gw-testenv} (never into the repo); later runs reuse them.
# A language whose toolchain is missing or cannot be installed is skipped with the
# reason (printed and recorded in the manifest); a generator error fails the script.
set -euo pipefail

# Pinned generator versions. The runtimes are pinned beside the clients:
# go/go.mod, python/requirements.txt, java/pom.xml (protoc and grpc-java versions too).
PROTOC_GEN_GO_VERSION=v1.36.12        # = google.golang.org/protobuf in go/go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/test/clients
CACHE=${TESTENV_CACHE:-$HOME/.cache/gw-testenv}
PROTO_DIR=$(cd "${PROTO_DIR:-$ROOT/proto}" && pwd)
OUT=$ROOT/gen
LANGS=${GEN_LANGS:-go python cpp java ts}
IF_STALE=0
for a in "$@"; do
  case $a in
    --if-stale) IF_STALE=1 ;;
    *) echo "usage: $0 [--if-stale]" >&2; exit 2 ;;
  esac
done

export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
export GOMODCACHE=$CACHE/go-mod GOCACHE=$CACHE/go-build
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { echo "gen.sh: $*" >&2; }

# --- staleness: hash of every input that shapes the output -------------------------
PROTOS=$(cd "$PROTO_DIR" && find . -name '*.proto' | LC_ALL=C sort | sed 's|^\./||')
stamp() {
  {
    echo "langs=$LANGS"
    for f in $PROTOS; do echo "$f"; cat "$PROTO_DIR/$f"; done
    cat "$HERE/gen.sh" "$ROOT/buf.gen.yaml" "$HERE/python/requirements.txt" "$HERE/java/pom.xml"
  } | sha256sum | cut -c1-16
}
STAMP=$(stamp)
if [ "$IF_STALE" = 1 ] && [ -f "$OUT/manifest.json" ] && grep -q "\"stamp\": \"$STAMP\"" "$OUT/manifest.json"; then
  log "gen/ is up to date ($STAMP)"
  exit 0
fi

mkdir -p "$CACHE" "$OUT"
# One generator at a time (two test runs may start together).
exec 9>"$CACHE/gen.lock"
command -v flock >/dev/null 2>&1 && flock 9

T0=$(date +%s)
MANIFEST=()          # JSON members, one per language
FAILED=0
SKIPPED=0
json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/ }; printf '"%s"' "$s"; }
ok()   { MANIFEST+=("$(json_str "$1"): {\"ok\": true$2}"); log "$1: generated into gen/$1 ($(( $(date +%s) - LT0 ))s)"; }
# A skipped language leaves no stale stubs behind, and no stamp: the next --if-stale run retries.
skip() { MANIFEST+=("$(json_str "$1"): {\"ok\": false, \"reason\": $(json_str "$2")}"); log "$1: SKIPPED: $2"; rm -rf "${OUT:?}/$1"; SKIPPED=1; }
fail() { MANIFEST+=("$(json_str "$1"): {\"ok\": false, \"reason\": $(json_str "generator failed: $2")}"); log "$1: FAILED: $2"; rm -rf "${OUT:?}/$1" "$OUT/.$1.new"; FAILED=1; }
# Generate into a fresh directory, then swap it in, so gen/<lang> is never half written.
fresh() { rm -rf "$OUT/.$1.new"; mkdir -p "$OUT/.$1.new"; echo "$OUT/.$1.new"; }
swap()  { rm -rf "${OUT:?}/$1"; mv "$OUT/.$1.new" "$OUT/$1"; }
# Runs a command quietly; on failure prints its output and returns non-zero.
quiet() { local o; if ! o=$("$@" 2>&1); then printf '%s\n' "$o" | tail -n 30 >&2; return 1; fi; }

# --- Go: protoc-gen-go + protoc-gen-go-grpc (go install), buf generate ---------------
gen_go() {
  command -v go >/dev/null 2>&1 || { skip go "'go' is not on PATH (needed to install protoc-gen-go)"; return; }
  local bin_go=$CACHE/go-bin/protoc-gen-go@$PROTOC_GEN_GO_VERSION
  local bin_grpc=$CACHE/go-bin/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION
  if [ ! -x "$bin_go/protoc-gen-go" ]; then
    log "go: installing protoc-gen-go $PROTOC_GEN_GO_VERSION"
    GOBIN=$bin_go quiet go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION" \
      || { skip go "could not 'go install' protoc-gen-go@$PROTOC_GEN_GO_VERSION (Go module proxy unreachable?)"; return; }
  fi
  if [ ! -x "$bin_grpc/protoc-gen-go-grpc" ]; then
    log "go: installing protoc-gen-go-grpc $PROTOC_GEN_GO_GRPC_VERSION"
    GOBIN=$bin_grpc quiet go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION" \
      || { skip go "could not 'go install' protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION (Go module proxy unreachable?)"; return; }
  fi
  [ -x "$ROOT/node_modules/.bin/buf" ] || { skip go "node_modules/.bin/buf is missing (run npm ci)"; return; }
  local tmp; tmp=$(fresh go)
  # buf.gen.yaml writes to gen/go relative to -o; point -o at a scratch root.
  local scratch=$OUT/.go.buf
  rm -rf "$scratch"
  if ! (cd "$ROOT" && PATH=$bin_go:$bin_grpc:$PATH quiet node_modules/.bin/buf generate "$PROTO_DIR" \
          --template "$ROOT/buf.gen.yaml" -o "$scratch"); then
    rm -rf "$scratch"; fail go "buf generate"; return
  fi
  mv "$scratch/gen/go/"* "$tmp/"; rm -rf "$scratch"
  # A module of its own, replaced into test/clients/go/go.mod.
  printf 'module allocator-gateway/gen/go\n\ngo 1.24\n' > "$tmp/go.mod"
  swap go
  ok go ", \"protoc-gen-go\": $(json_str "$PROTOC_GEN_GO_VERSION"), \"protoc-gen-go-grpc\": $(json_str "$PROTOC_GEN_GO_GRPC_VERSION")"
}

# --- Python: grpcio-tools in a venv -------------------------------------------------
gen_python() {
  command -v python3 >/dev/null 2>&1 || { skip python "'python3' is not on PATH"; return; }
  local key; key=$(sha256sum < "$HERE/python/requirements.txt" | cut -c1-12)
  local venv=$CACHE/py/venv-$key
  if [ ! -f "$venv/.ok" ]; then
    log "python: creating venv with $(grep -E '^[a-z]' "$HERE/python/requirements.txt" | tr '\n' ' ')"
    rm -rf "$venv"
    quiet python3 -m venv "$venv" || { rm -rf "$venv"; skip python "'python3 -m venv' failed (install python3-venv)"; return; }
    quiet "$venv/bin/pip" install -q -r "$HERE/python/requirements.txt" \
      || { rm -rf "$venv"; skip python "pip could not install test/clients/python/requirements.txt (PyPI unreachable?)"; return; }
    touch "$venv/.ok"
  fi
  local tmp; tmp=$(fresh python)
  # shellcheck disable=SC2086
  if ! (cd "$PROTO_DIR" && quiet "$venv/bin/python" -m grpc_tools.protoc -I . \
          --python_out="$tmp" --pyi_out="$tmp" --grpc_python_out="$tmp" $PROTOS); then
    fail python "grpc_tools.protoc"; return
  fi
  swap python
  ok python ", \"python\": $(json_str "$venv/bin/python"), \"grpcio-tools\": $(json_str "$("$venv/bin/pip" show grpcio-tools 2>/dev/null | sed -n 's/^Version: //p')")"
}

# --- C++: Debian's protoc + grpc_cpp_plugin ----------------------------------------
CPP_PKGS="protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev pkg-config"
gen_cpp() {
  local missing=""
  for p in $CPP_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then skip cpp "missing:$missing (no apt-get on this machine)"; return; fi
    if [ "$(id -u)" != 0 ]; then skip cpp "missing Debian packages:$missing (not root; run: sudo apt-get install -y$missing)"; return; fi
    log "cpp: apt-get install -y$missing"
    # shellcheck disable=SC2086
    if ! DEBIAN_FRONTEND=noninteractive quiet apt-get install -y -q $missing; then
      # shellcheck disable=SC2086
      quiet apt-get update -q && DEBIAN_FRONTEND=noninteractive quiet apt-get install -y -q $missing \
        || { skip cpp "apt-get install$missing failed"; return; }
    fi
  fi
  local plugin; plugin=$(command -v grpc_cpp_plugin || true)
  command -v protoc >/dev/null 2>&1 && [ -n "$plugin" ] || { skip cpp "protoc or grpc_cpp_plugin not on PATH"; return; }
  local tmp; tmp=$(fresh cpp)
  # shellcheck disable=SC2086
  if ! (cd "$PROTO_DIR" && quiet protoc -I . --cpp_out="$tmp" --grpc_out="$tmp" \
          --plugin=protoc-gen-grpc="$plugin" $PROTOS); then
    fail cpp "protoc --cpp_out"; return
  fi
  swap cpp
  ok cpp ", \"protoc\": $(json_str "$(protoc --version)"), \"grpc\": $(json_str "$(pkg-config --modversion grpc++ 2>/dev/null || echo unknown)")"
}

# --- Java: protoc + protoc-gen-grpc-java from Maven Central ------------------------
gen_java() {
  for t in java javac mvn; do
    command -v $t >/dev/null 2>&1 || { skip java "'$t' is not on PATH"; return; }
  done
  local arch
  case "$(uname -m)" in
    x86_64|amd64) arch=x86_64 ;;
    aarch64|arm64) arch=aarch_64 ;;
    *) skip java "no protoc build on Maven Central for $(uname -m)"; return ;;
  esac
  local key; key=$(sha256sum < "$HERE/java/pom.xml" | cut -c1-12)
  local dir=$CACHE/java/codegen-$key
  if [ ! -f "$dir/.ok" ]; then
    log "java: fetching protoc + protoc-gen-grpc-java (linux-$arch) from Maven Central"
    rm -rf "$dir"
    quiet mvn -B -q -Dstyle.color=never -f "$HERE/java/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
        dependency:copy@codegen -Dcodegen.classifier="linux-$arch" -Dcodegen.dir="$dir" \
      || { rm -rf "$dir"; skip java "Maven could not fetch protoc/protoc-gen-grpc-java (Maven Central unreachable?)"; return; }
    (cd "$dir" && mv protoc-gen-grpc-java-*.exe protoc-gen-grpc-java && mv protoc-[0-9]*.exe protoc \
      && chmod +x protoc protoc-gen-grpc-java && mkdir include && cd include \
      && quiet jar xf ../protobuf-java-*.jar google/protobuf) \
      || { rm -rf "$dir"; skip java "could not unpack protoc from Maven Central"; return; }
    touch "$dir/.ok"
  fi
  local tmp; tmp=$(fresh java)
  # shellcheck disable=SC2086
  if ! (cd "$PROTO_DIR" && quiet "$dir/protoc" -I . -I "$dir/include" --java_out="$tmp" \
          --plugin=protoc-gen-grpc-java="$dir/protoc-gen-grpc-java" --grpc-java_out="$tmp" $PROTOS); then
    fail java "protoc --java_out"; return
  fi
  swap java
  ok java ", \"protoc\": $(json_str "$("$dir/protoc" --version)")"
}

# --- TypeScript: proto-loader-gen-types ---------------------------------------------
gen_ts() {
  local bin=$ROOT/node_modules/.bin/proto-loader-gen-types
  [ -x "$bin" ] || { skip ts "node_modules/.bin/proto-loader-gen-types is missing (run npm ci)"; return; }
  local tmp; tmp=$(fresh ts)
  # shellcheck disable=SC2086
  if ! (cd "$PROTO_DIR" && quiet "$bin" --grpcLib=@grpc/grpc-js --outDir="$tmp" -I . \
          --keepCase --longs=String --enums=String --defaults --oneofs --importFileExtension=.ts $PROTOS); then
    fail ts "proto-loader-gen-types"; return
  fi
  swap ts
  ok ts ""
}

for lang in $LANGS; do
  case $lang in
    go|python|cpp|java|ts) LT0=$(date +%s); "gen_$lang" ;;
    *) log "unknown language '$lang'"; exit 2 ;;
  esac
done

{
  echo "{"
  echo "  \"stamp\": \"$STAMP\","
  echo "  \"proto\": $(json_str "$PROTO_DIR"),"
  echo "  \"cache\": $(json_str "$CACHE"),"
  echo "  \"languages\": {"
  n=${#MANIFEST[@]}
  for i in "${!MANIFEST[@]}"; do
    sep=,; [ "$i" -eq $((n - 1)) ] && sep=
    echo "    ${MANIFEST[$i]}$sep"
  done
  echo "  }"
  echo "}"
} > "$OUT/manifest.json.new"
if [ "$FAILED" = 1 ] || [ "$SKIPPED" = 1 ]; then
  # Keep no stamp that would let --if-stale skip a broken or partial generation.
  sed -i "s/\"stamp\": \"[^\"]*\"/\"stamp\": \"$([ "$FAILED" = 1 ] && echo failed || echo partial)\"/" "$OUT/manifest.json.new"
fi
mv "$OUT/manifest.json.new" "$OUT/manifest.json"
log "done in $(( $(date +%s) - T0 ))s; see gen/manifest.json"
exit "$FAILED"
