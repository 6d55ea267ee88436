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

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-bench-deps: all ${#packages[@]} Debian packages present"
  exit 0
fi

echo "install-bench-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-bench-deps: done"
