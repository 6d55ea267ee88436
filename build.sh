#!/usr/bin/env bash
# Type-checks everything (agent, tests, benchmarks) and compiles the agent to dist/.
# `./build.sh --if-stale` does nothing when dist/ is newer than every source.
set -euo pipefail
cd "$(dirname "$0")"
stamp=dist/.build-stamp
if [ "${1:-}" = "--if-stale" ] && [ -f "$stamp" ] && \
   [ -z "$(find agent test bench models/manifests tsconfig.json test/tsconfig.json package-lock.json -newer "$stamp" -type f -print -quit 2>/dev/null)" ]; then
  echo "build: dist/ is up to date"
  exit 0
fi
rm -rf dist
npx tsc -p test/tsconfig.json
npx tsc -p tsconfig.json
chmod +x dist/agent/cli/bin.js
touch "$stamp"
echo "build: dist/ ready ($(find dist -name '*.js' | wc -l) files)"
