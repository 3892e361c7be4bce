#!/usr/bin/env bash
# The project's one test command (README, `npm test`, .ci/run): static checks, then every suite.
# Run through npm so Node 24 from the `node` devDependency is first on PATH.
#
# Phases (each timed; the table is printed at the end):
#   builds      in the background, niced, one after another: the Kubernetes control plane
#               (test/cluster/build.sh), client stubs and clients (test/clients/gen.sh, build.sh), the
#               operations tools (Chromium, promtool, helm: test/deploy/tools.sh). Cached in
#               ${TESTENV_CACHE:-~/.cache/gw-testenv}. (ghz is only for `npm run bench`.)
#   static      typecheck and import cycles, while the builds run
#   in-process  every suite that needs none of the builds, while they run
#   built       the suites that need them (real API servers, clients), once they are done
# Then what was skipped, by name. Under CI=true a skipped Kubernetes, reliability or client suite
# fails the run unless ALLOW_SKIPS=1. TEST_FILES='glob' limits the suites (both groups).
set -uo pipefail
cd "$(dirname "$0")/.."

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 24 ]; then
  echo "test/run.sh: Node $node_major is on PATH; run 'npm test' (it puts Node 24 from node_modules first)" >&2
  exit 2
fi

t_start=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/gw-test.XXXXXX")
phases=()    # "name|seconds|result"
failed=()
record() { phases+=("$1|$2|$3"); case $3 in FAILED*) failed+=("$1") ;; esac; }
since() { echo $(( $(date +%s) - $1 )); }
say() { echo "== $* (+$(since "$t_start") s)"; }

# --- the suites, split by what they need ---------------------------------------------------
# A suite needs the builds when it starts the control plane, builds clients or uses an operations tool.
set -f; patterns=(${TEST_FILES:-test/**/*.test.ts}); set +f
all_files=$(node -e 'const {globSync}=require("node:fs"); for (const p of process.argv.slice(1)) for (const f of globSync(p)) console.log(f)' "${patterns[@]}" | sort -u)
needs_builds=$(grep -lE 'controlPlaneBinaries|skipReason|ghzPath|BUILD_SH|tools\.sh' $all_files 2>/dev/null || true)
in_process=$(comm -23 <(echo "$all_files") <(echo "$needs_builds" | sort -u) | grep . || true)

# --- builds, in the background -------------------------------------------------------------
# One at a time and niced: the in-process suites measure latency on the same 2 cores.
(
  b() { # name, command...: runs, logs, records "name|seconds|rc" in $work/builds
    local name=$1 t0 rc; shift
    t0=$(date +%s)
    nice -n 10 "$@" >"$work/build-$name.log" 2>&1
    rc=$?
    echo "$name|$(since "$t0")|$rc" >>"$work/builds"
  }
  if [ -n "$needs_builds" ]; then
    b control-plane bash test/cluster/build.sh
    # Chromium, promtool, helm; a suite lacking one skips loudly (named in the summary).
    if grep -q 'tools\.sh' $needs_builds; then b operations-tools bash test/deploy/tools.sh; fi
    if grep -q clients <<<"$needs_builds"; then
      b client-stubs bash test/clients/gen.sh --if-stale
      for lang in go python cpp java grpcurl; do b "client-$lang" bash test/clients/build.sh "$lang"; done
    fi
  fi
) &
builds_pid=$!

# --- static checks -------------------------------------------------------------------------
t0=$(date +%s); say "typecheck"
if tsc --noEmit -p .; then record typecheck "$(since "$t0")" ok; else record typecheck "$(since "$t0")" FAILED; fi
t0=$(date +%s); say "import cycles"
if madge --circular --extensions ts --ts-config tsconfig.json src; then record "import cycles" "$(since "$t0")" ok; else record "import cycles" "$(since "$t0")" FAILED; fi

run_tests() { # phase name, concurrency, files...
  local name=$1 conc=$2 t0 rc; shift 2
  t0=$(date +%s)
  if [ $# -eq 0 ]; then record "$name" 0 "no files"; return; fi
  say "$name suites ($# files)"
  node --test --test-concurrency="$conc" --test-timeout=600000 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=./test/helpers/skip-reporter.ts --test-reporter-destination="$work/skips-$name.jsonl" \
    "$@"
  rc=$?
  if [ $rc -eq 0 ]; then record "$name" "$(since "$t0")" ok; else record "$name" "$(since "$t0")" "FAILED (exit $rc)"; fi
}

# --- suites that need nothing built, while the builds run ----------------------------------
# Two files at a time: each runs in its own process; the builds only get what is left.
# shellcheck disable=SC2086
run_tests in-process 2 $in_process

# --- suites that need the builds ----------------------------------------------------------
if [ -n "$needs_builds" ]; then
  t0=$(date +%s); say "waiting for the builds"
  wait "$builds_pid"
  record "waiting for builds" "$(since "$t0")" ok
  while IFS='|' read -r name secs rc; do
    case $rc in
      0) record "build $name" "$secs" ok ;;
      3) record "build $name" "$secs" skipped
         echo "!! build $name skipped: $(grep -vE '^\s*$' "$work/build-$name.log" | tail -n 3 | tr '\n' ' ')" ;;
      *) record "build $name" "$secs" "FAILED (exit $rc)"
         echo "!! build $name failed (exit $rc); last lines of its log:"; tail -n 30 "$work/build-$name.log" ;;
    esac
  done <"$work/builds"
  # shellcheck disable=SC2086
  run_tests built 2 $needs_builds
else
  wait "$builds_pid"
fi

# --- summary: phases, then what did not run -------------------------------------------------
echo
echo "== summary ($(since "$t_start") s in all)"
for p in "${phases[@]}"; do IFS='|' read -r name secs result <<<"$p"; printf '   %-22s %6s s  %s\n' "$name" "$secs" "$result"; done
echo "   (the builds ran in the background during typecheck and the in-process suites)"
node test/helpers/skip-summary.ts "$work"/skips-*.jsonl
skip_rc=$?
rm -rf "$work"
if [ ${#failed[@]} -gt 0 ]; then
  echo "!! FAILED: ${failed[*]}"
  exit 1
fi
exit $skip_rc
