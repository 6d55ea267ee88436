#!/usr/bin/env bash
# Installs the Debian packages the benchmarks need on top of the test ones, only when missing.
# Today: Debian's ffmpeg (5.1 on Debian 12), compared against the bundled @ffmpeg-installer
# build by bench/ingest-decode.ts. The RTSP server the bench uses comes from
# scripts/install-test-deps.sh (GStreamer); this script does not install it.
# Idempotent; needs root (or sudo) on Debian 12.
set -euo pipefail

packages=(
  ffmpeg                          # /usr/bin/ffmpeg, Debian's build, for the side-by-side decode bench
)

bash "$(dirname "$0")/ensure-debian-packages.sh" install-bench-deps "${packages[@]}"
