#!/usr/bin/env bash
# The main job: the agent on the real highway clip with the default model, SQLite under
# ./data and an embedded MQTT broker on 127.0.0.1:1883. Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh yolox-nano-int8.onnx yolox-nano.onnx coco-labels.txt highway-cctv-320x240.mp4
# As the systemd unit does: fewer malloc arenas, less memory held after model swaps.
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-131072}
exec node dist/agent/cli/bin.js demo "$@"
