#!/usr/bin/env bash
# Type-checks everything (agent, tests, benchmarks) and compiles the agent to dist/.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf dist
npx tsc -p test/tsconfig.json
npx tsc -p tsconfig.json
chmod +x dist/agent/cli/bin.js
echo "build: dist/ ready ($(find dist -name '*.js' | wc -l) files)"
