#!/usr/bin/env bash
# Removes cctv-edge-agent: stops and disables the service, removes the unit, the install tree
# (/opt/cctv-agent: every version and the fetched models) and the system user. Keeps the
# configuration (/etc/cctv-agent), the data (/var/lib/cctv-agent) and unit drop-ins
# (/etc/systemd/system/cctv-agent.service.d) unless --purge.
#
#   uninstall.sh [--prefix DIR] [--purge]
#
#   --prefix DIR   root of the target file system (as for install.sh; default /): nothing is
#                  done to the running system (no systemctl, no userdel)
#   --purge        also remove /etc/cctv-agent, /var/lib/cctv-agent and the drop-ins
set -euo pipefail

NAME=cctv-agent
prefix=/
purge=no

usage() { sed -n '2,11s/^# \{0,1\}//p' "$0"; }
die() { echo "uninstall: error: $*" >&2; exit 1; }
say() { echo "uninstall: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --purge) purge=yes; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done

prefix=$(realpath -m "$prefix")
if [ "$prefix" = / ]; then
  R=
  live=yes
  [ "$(id -u)" -eq 0 ] || die "uninstalling from / needs root (or use --prefix DIR)"
else
  R=$prefix
  live=no
  [ -d "$R" ] || die "no such prefix: $R"
fi
systemd_running=no
if [ "$live" = yes ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then systemd_running=yes; fi

remove() { # path, what
  if [ -e "$1" ] || [ -L "$1" ]; then
    rm -rf "$1"
    say "removed $1${2:+ ($2)}"
  fi
}

units=$R/etc/systemd/system
if [ "$systemd_running" = yes ] && [ -f "$units/$NAME.service" ]; then
  systemctl disable --now "$NAME.service" || true
  say "stopped and disabled $NAME.service"
fi
remove "$units/multi-user.target.wants/$NAME.service" "enablement"
rmdir "$units/multi-user.target.wants" 2>/dev/null || true
remove "$units/$NAME.service" "the unit"
if [ "$systemd_running" = yes ]; then systemctl daemon-reload; fi

remove "$R/opt/cctv-agent" "every installed version and the fetched models"
remove "$R/usr/lib/sysusers.d/$NAME.conf" "sysusers entry"

if [ "$live" = yes ]; then
  if getent passwd "$NAME" >/dev/null; then
    userdel "$NAME"
    say "removed system user $NAME"
  fi
  if getent group "$NAME" >/dev/null; then
    groupdel "$NAME"
    say "removed group $NAME"
  fi
else
  say "prefix uninstall: no user removed"
fi

if [ "$purge" = yes ]; then
  remove "$R/etc/cctv-agent" "configuration"
  remove "$R/var/lib/cctv-agent" "data"
  remove "$units/$NAME.service.d" "drop-ins"
else
  for kept in "$R/etc/cctv-agent" "$R/var/lib/cctv-agent" "$units/$NAME.service.d"; do
    if [ -e "$kept" ]; then say "kept $kept (--purge removes it)"; fi
  done
fi
say "done"
