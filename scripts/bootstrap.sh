#!/usr/bin/env bash
# Makes a fresh clone runnable: npm packages (when missing or stale), the build, and the
# assets named on the command line (all of them when none is named).
set -euo pipefail
cd "$(dirname "$0")/.."

# onnxruntime-node's install script fetches CUDA files from outside npm; the CPU binaries
# are in the npm package itself.
export ONNXRUNTIME_NODE_INSTALL=skip

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "bootstrap: installing npm packages (better-sqlite3 compiles from source: about a minute)"
  npm ci --no-audit --no-fund --loglevel=error
fi

./build.sh --if-stale

node dist/agent/cli/bin.js assets fetch "$@"
