#!/usr/bin/env bash
# The project's one test command (README, `npm test`, .ci/run): static checks, then every suite.
# Run through npm so Node 24 from the `node` devDependency is first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { echo "== $* ($(( $(date +%s) - start )) s)"; }

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 24 ]; then
  echo "test/run.sh: Node $node_major is on PATH; run 'npm test' (it puts Node 24 from node_modules first)" >&2
  exit 2
fi

step "typecheck"; tsc --noEmit -p .
step "import cycles"; madge --circular --extensions ts --ts-config tsconfig.json src

# The Kubernetes suites need etcd and kube-apiserver, built once per machine from Go modules
# into ${TESTENV_CACHE:-~/.cache/gw-testenv} (about 5 minutes the first time on 2 cores).
set +e
bash test/cluster/build.sh
rc=$?
set -e
if [ $rc -eq 3 ]; then
  echo "!! Go is not installed: the Kubernetes suites (test/cluster, multi-cluster on real API servers) will be SKIPPED"
elif [ $rc -ne 0 ]; then
  echo "test/run.sh: building the test control plane failed (exit $rc)" >&2
  exit $rc
fi

# Chromium (status page), promtool (alert rules) and helm (the chart), once per machine; the
# suites that need one skip loudly where it could not be had.
step "operations tools"
bash test/deploy/tools.sh >/dev/null || echo "!! some operations tools could not be installed: their checks will be SKIPPED (see above)"

step "tests"
# Each file runs in its own process; two at a time keeps 2 cores busy without starving servers.
node --test --test-concurrency=2 --test-timeout=600000 ${TEST_FILES:-'test/**/*.test.ts'}
step "done"
