#!/usr/bin/env bash
# ensure-debian-packages.sh LABEL PACKAGE...: installs the named Debian packages that are
# missing, and nothing when all are present. Idempotent; needs root (or sudo) on Debian 12.
#
# It never upgrades a package the machine already has: every install is simulated first, and a
# missing package whose newest version would pull an upgrade (systemd-container 252.39 wants
# systemd 252.39 where 252.38 is installed) is pinned to an older version that fits what is
# installed. A package no version of which fits is left out, loudly: the tests that need it
# report themselves skipped. apt waits for the dpkg lock (another apt run, unattended-upgrades)
# for at most DPKG_LOCK_TIMEOUT seconds (default 300) instead of failing at once.
set -euo pipefail
label=$1
shift
lock_timeout=${DPKG_LOCK_TIMEOUT:-300}

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

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
apt_get() { $SUDO apt-get -o DPkg::Lock::Timeout="$lock_timeout" "$@"; }

# Prints the installed packages that `apt-get install` of the arguments would upgrade (or
# downgrade): simulation lines "Inst name [installed-version] (new-version ...)".
would_change_installed() {
  apt_get install -s -qq --no-install-recommends "$@" 2>/dev/null |
    sed -n 's/^Inst \([^ ]*\) \[\([^]]*\)\] (\([^ ]*\).*/\1 \2 -> \3/p'
}

echo "$label: missing ${missing[*]}"
apt_get update -qq

chosen=()
left_out=()
for p in "${missing[@]}"; do
  if [ -z "$(would_change_installed "$p")" ]; then
    chosen+=("$p")
    continue
  fi
  pinned=""
  while read -r version; do
    [ -n "$version" ] || continue
    if [ -z "$(would_change_installed "$p=$version")" ]; then pinned="$p=$version"; break; fi
  done < <(apt-cache madison "$p" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}')
  if [ -n "$pinned" ]; then
    echo "$label: $p pinned to ${pinned#*=}: its newest version would upgrade installed packages ($(would_change_installed "$p" | head -3 | paste -sd, -))"
    chosen+=("$pinned")
  else
    echo "$label: NOT installing $p: every version of it would upgrade installed packages ($(would_change_installed "$p" | head -3 | paste -sd, -)); tests that need it will be skipped" >&2
    left_out+=("$p")
  fi
done

if [ ${#chosen[@]} -eq 0 ]; then
  echo "$label: nothing installed (${#left_out[@]} left out)"
  exit 0
fi
changes=$(would_change_installed "${chosen[@]}")
if [ -n "$changes" ]; then
  echo "$label: refusing: installing ${chosen[*]} together would change installed packages:" >&2
  echo "$changes" >&2
  exit 1
fi
new=$(apt_get install -s -qq --no-install-recommends "${chosen[@]}" 2>/dev/null | sed -n 's/^Inst \([^ ]*\) (.*/\1/p' | wc -l)
echo "$label: installing ${chosen[*]} ($new new packages with their dependencies; nothing installed is upgraded)"
apt_get install -y -qq --no-install-recommends --no-upgrade "${chosen[@]}"
echo "$label: done${left_out[*]:+ (left out: ${left_out[*]})}"
