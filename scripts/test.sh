#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine with Node 20: Debian packages the tests
# need (mosquitto, GStreamer RTSP server), npm packages, build, assets, then vitest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
bash scripts/bootstrap.sh

report=$(mktemp -t cctv-vitest-XXXXXX.json)
trap 'rm -f "$report"' EXIT
status=0
npx vitest run --config test/vitest.config.ts --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?

# One plain closing line that any CI reads: "N passed, N failed, N skipped".
if [ -s "$report" ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  ' "$report"
fi
exit $status
