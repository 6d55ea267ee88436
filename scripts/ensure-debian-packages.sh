#!/usr/bin/env bash
# ensure-debian-packages.sh LABEL PACKAGE...: installs the named Debian packages that are
# missing, and nothing when all are present. Idempotent; needs root (or sudo) on Debian 12.
set -euo pipefail
label=$1
shift

missing=()
for p in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "$label: all $# Debian packages present"
  exit 0
fi

echo "$label: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "$label: done"
