#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine with Node 20: Debian packages the tests
# need (mosquitto, GStreamer RTSP server), npm packages, build (with lint), assets, then the
# fast unit tier (test/**/*.unit.test.ts, fake timers, under 10 s) and the integration tier.
# Arguments are passed to the integration tier's vitest (e.g. a test file).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
bash scripts/bootstrap.sh
npm run --silent lint

unit=$(mktemp -t cctv-vitest-unit-XXXXXX.json)
integration=$(mktemp -t cctv-vitest-XXXXXX.json)
trap 'rm -f "$unit" "$integration"' EXIT
status=0
if [ $# -eq 0 ]; then
  npx vitest run --config test/vitest.unit.config.ts --reporter=default --reporter=json --outputFile.json="$unit" || status=$?
fi
npx vitest run --config test/vitest.config.ts --reporter=default --reporter=json --outputFile.json="$integration" "$@" || status=$?

# One plain closing line that any CI reads: "N passed, N failed, N skipped".
node -e '
  const fs = require("fs");
  const total = { passed: 0, failed: 0, skipped: 0 };
  for (const file of process.argv.slice(1)) {
    if (!fs.existsSync(file) || fs.statSync(file).size === 0) continue;
    const r = JSON.parse(fs.readFileSync(file, "utf8"));
    total.passed += r.numPassedTests;
    total.failed += r.numFailedTests;
    total.skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`tests: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
' "$unit" "$integration"
exit $status
