#!/usr/bin/env bash
# Makes a fresh clone runnable: npm packages (when missing or stale), the build, and the
# assets named on the command line (all of them when none is named).
set -euo pipefail
cd "$(dirname "$0")/.."

# onnxruntime-node's install script fetches CUDA files from outside npm; the CPU binaries
# are in the npm package itself.
export ONNXRUNTIME_NODE_INSTALL=skip

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "bootstrap: installing npm packages (better-sqlite3 compiles from source: 1 to 3 minutes; a dot every 15 s)"
  started=$SECONDS
  ( while sleep 15; do printf '.'; done ) &
  ticker=$!
  trap 'kill "$ticker" 2>/dev/null || true' EXIT
  npm ci --no-audit --no-fund --loglevel=error
  kill "$ticker" 2>/dev/null || true
  trap - EXIT
  echo " bootstrap: npm packages installed in $((SECONDS - started)) s"
fi

./build.sh --if-stale

node dist/agent/cli/bin.js assets fetch "$@"
