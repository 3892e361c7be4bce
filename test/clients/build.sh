#!/usr/bin/env bash
# Builds one client of test/clients against the stubs in gen/ (run gen.sh first) and
# writes a launcher gen/bin/<lang>-client that takes the client's flags:
#   --addr 127.0.0.1:8443 --ca ca.pem --cert client.pem --key client.key
#   --namespace default --selector k=v --label k=v
# (or ALLOCATOR_ADDR, ALLOCATOR_CA, ALLOCATOR_CERT, ALLOCATOR_KEY in the environment).
#
# Usage: bash test/clients/build.sh go|python|cpp|java|grpcurl
# Prints the path of the runnable as its last line. Exit 3 with "SKIP: reason" when the
# language's toolchain or stubs are missing. Rebuilds only when an input is newer.
set -euo pipefail

GRPCURL_VERSION=v1.9.3

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/test/clients
CACHE=${TESTENV_CACHE:-$HOME/.cache/gw-testenv}
GEN=$ROOT/gen
BIN=$GEN/bin
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
export GOMODCACHE=$CACHE/go-mod GOCACHE=$CACHE/go-build

log() { echo "build.sh: $*" >&2; }
skip() { echo "SKIP: $*"; exit 3; }
quiet() { local o; if ! o=$("$@" 2>&1); then printf '%s\n' "$o" | tail -n 40 >&2; return 1; fi; }
# The language's stubs must have been generated; else skip with gen.sh's reason.
need_stubs() {
  [ -f "$GEN/manifest.json" ] || skip "gen/manifest.json is missing: run 'npm run gen'"
  local line; line=$(grep "\"$1\": {" "$GEN/manifest.json" || true)
  [ -n "$line" ] || skip "gen.sh did not generate $1 stubs (GEN_LANGS?)"
  case $line in
    *'"ok": true'*) ;;
    *) skip "$(sed -n 's/.*"reason": "\(.*\)"}.*/\1/p' <<<"$line")" ;;
  esac
}
# True when $1 exists and no file under the other arguments is newer.
fresh() {
  local out=$1; shift
  [ -e "$out" ] && [ -z "$(find "$@" -newer "$out" -type f -print -quit)" ]
}
launcher() { # name, command line...
  local f=$BIN/$1; shift
  printf '#!/usr/bin/env bash\nexec %s "$@"\n' "$*" > "$f.new" && chmod +x "$f.new" && mv "$f.new" "$f"
  echo "$f"
}

mkdir -p "$BIN"
case ${1:-} in
  go)
    command -v go >/dev/null 2>&1 || skip "'go' is not on PATH"
    need_stubs go
    out=$BIN/go-client
    if ! fresh "$out" "$HERE/go" "$GEN/go"; then
      log "go: building"
      (cd "$HERE/go" && quiet go build -o "$out.new" .) || exit 1
      mv "$out.new" "$out"
    fi
    echo "$out"
    ;;
  python)
    need_stubs python
    py=$(sed -n 's/.*"python": "\([^"]*\)".*/\1/p' "$GEN/manifest.json")
    [ -x "$py" ] || skip "the venv of gen.sh is gone ($py): re-run 'npm run gen'"
    launcher python-client "env PYTHONPATH=$GEN/python $py $HERE/python/client.py"
    ;;
  cpp)
    need_stubs cpp
    command -v g++ >/dev/null 2>&1 || skip "'g++' is not on PATH"
    pkg-config --exists grpc++ protobuf 2>/dev/null || skip "pkg-config finds no grpc++/protobuf (apt-get install libgrpc++-dev pkg-config)"
    out=$BIN/cpp-client
    if ! fresh "$out" "$HERE/cpp" "$GEN/cpp"; then
      log "cpp: building"
      obj=$BIN/cpp-obj
      mkdir -p "$obj"
      # shellcheck disable=SC2046
      flags="-std=c++17 -O1 -I$GEN/cpp $(pkg-config --cflags grpc++ protobuf)"
      pids=()
      for src in "$HERE/cpp/client.cc" "$GEN/cpp/allocation/allocation.pb.cc" "$GEN/cpp/allocation/allocation.grpc.pb.cc"; do
        # shellcheck disable=SC2086
        quiet g++ $flags -c "$src" -o "$obj/$(basename "$src" .cc).o" & pids+=($!)
      done
      for p in "${pids[@]}"; do wait "$p"; done
      # shellcheck disable=SC2046
      quiet g++ -o "$out.new" "$obj"/*.o $(pkg-config --libs grpc++ protobuf) || exit 1
      mv "$out.new" "$out"
    fi
    echo "$out"
    ;;
  java)
    need_stubs java
    for t in java javac mvn; do command -v $t >/dev/null 2>&1 || skip "'$t' is not on PATH"; done
    cp=$BIN/java.classpath
    # A classpath is stale too when a jar it names is gone (e.g. the cache was moved or cleared).
    jars_present() { [ -s "$1" ] && tr ':' '\n' < "$1" | while read -r j; do [ -f "$j" ] || exit 1; done; }
    if ! fresh "$cp" "$HERE/java/pom.xml" || ! jars_present "$cp"; then
      log "java: resolving runtime jars (pom.xml) from Maven Central"
      quiet mvn -B -q -Dstyle.color=never -f "$HERE/java/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
        dependency:build-classpath -Dmdep.outputFile="$cp.new" \
        || skip "Maven could not resolve test/clients/java/pom.xml (Maven Central unreachable?)"
      mv "$cp.new" "$cp"
    fi
    classes=$BIN/java-classes
    if ! fresh "$classes/Client.class" "$HERE/java" "$GEN/java" "$cp"; then
      log "java: compiling"
      rm -rf "$classes"
      quiet javac -nowarn -d "$classes" -cp "$(cat "$cp")" "$GEN"/java/allocation/*.java "$HERE/java/Client.java"
    fi
    launcher java-client "java -cp $classes:$(cat "$cp") Client"
    ;;
  grpcurl)
    command -v go >/dev/null 2>&1 || skip "'go' is not on PATH (grpcurl is built from the Go module proxy)"
    dir=$CACHE/go-bin/grpcurl@$GRPCURL_VERSION
    if [ ! -x "$dir/grpcurl" ]; then
      log "grpcurl: go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
      GOBIN=$dir quiet go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION" \
        || skip "could not 'go install' grpcurl@$GRPCURL_VERSION (Go module proxy unreachable?)"
    fi
    echo "$dir/grpcurl"
    ;;
  *)
    echo "usage: $0 go|python|cpp|java|grpcurl" >&2
    exit 2
    ;;
esac
