#!/usr/bin/env bash
# Installs (or upgrades) cctv-edge-agent as a systemd service. Idempotent: running it again
# with the same release changes nothing. docs/packaging.md describes the result.
#
#   install.sh [--prefix DIR] [--tarball FILE | --from DIR] [--fetch-assets [--mirror DIR]]
#
#   --prefix DIR     root of the target file system (DESTDIR-style; default /). Under a prefix
#                    nothing is done to the running system: no user is created, no file is
#                    chowned, systemctl is not called.
#   --tarball FILE   the release tarball to install (checked against FILE.sha256 when present)
#   --from DIR       an unpacked release tree; default: the release this script is part of
#   --fetch-assets   then fetch the detector, its labels and golden images into /opt/cctv-agent/assets
#                    (from --mirror DIR, else $CCTV_ASSET_MIRROR, else upstream)
#
# What it does, each step printed:
#   /usr/lib/sysusers.d/cctv-agent.conf and the system user cctv-agent (systemd-sysusers,
#     else useradd; only when the prefix is /)
#   /etc/cctv-agent/config.yaml        copied only when absent: never overwritten
#   /var/lib/cctv-agent                the agent's data (kept across upgrades)
#   /opt/cctv-agent/<version>          the release; /opt/cctv-agent/current -> <version>,
#                                      switched atomically
#   /opt/cctv-agent/assets             models, shared by the versions (kept across upgrades)
#   /etc/systemd/system/cctv-agent.service, enabled (systemctl enable when systemd runs and
#     the prefix is /, else the multi-user.target.wants symlink by hand); a running service is
#     restarted on the new version.
set -euo pipefail

NAME=cctv-agent
prefix=/
tarball=
from=
fetch_assets=no
mirror=

usage() { sed -n '2,13s/^# \{0,1\}//p' "$0"; }
die() { echo "install: error: $*" >&2; exit 1; }
say() { echo "install: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --tarball) tarball=${2:?--tarball needs a file}; shift 2 ;;
    --tarball=*) tarball=${1#*=}; shift ;;
    --from) from=${2:?--from needs a directory}; shift 2 ;;
    --from=*) from=${1#*=}; shift ;;
    --fetch-assets) fetch_assets=yes; shift ;;
    --mirror) mirror=${2:?--mirror needs a directory}; shift 2 ;;
    --mirror=*) mirror=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done
[ -n "$tarball" ] && [ -n "$from" ] && die "--tarball and --from exclude each other"

umask 022
prefix=$(realpath -m "$prefix")
if [ "$prefix" = / ]; then
  R=
  live=yes # acting on this machine: users, ownership, systemctl
  [ "$(id -u)" -eq 0 ] || die "installing into / needs root (or use --prefix DIR)"
else
  R=$prefix
  live=no
  mkdir -p "$R"
fi
systemd_running=no
if [ "$live" = yes ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then systemd_running=yes; fi
command -v node >/dev/null 2>&1 || die "node is not on PATH: the agent needs Node.js 20 (/usr/bin/node)"

# --- the release to install -------------------------------------------------------------
work=
cleanup() { if [ -n "$work" ]; then rm -rf "$work"; fi; }
trap cleanup EXIT
if [ -n "$tarball" ]; then
  [ -f "$tarball" ] || die "no such tarball: $tarball"
  tarball=$(realpath "$tarball")
  if [ -f "$tarball.sha256" ]; then
    (cd "$(dirname "$tarball")" && sha256sum --check --status "$tarball.sha256") || die "$tarball does not match $tarball.sha256"
    say "checked $tarball against $(basename "$tarball").sha256"
  fi
  work=$(mktemp -d "${TMPDIR:-/tmp}/cctv-agent-install-XXXXXX")
  say "unpacking $tarball"
  tar -xf "$tarball" -C "$work" --no-same-owner
  tops=("$work"/*)
  [ ${#tops[@]} -eq 1 ] && [ -d "${tops[0]}" ] || die "$tarball: expected one top directory"
  src=${tops[0]}
elif [ -n "$from" ]; then
  src=$(realpath "$from")
else
  src=$(realpath "$(dirname "$0")/..")
fi
if [ ! -f "$src/release-info.json" ] || [ ! -f "$src/dist/agent/cli/bin.js" ] || [ ! -d "$src/node_modules" ]; then
  die "$src is not a release tree (no release-info.json, dist/ or node_modules/; a checkout?): build one with ./build.sh --release, then run install.sh --tarball release/cctv-edge-agent-<version>.tar.gz"
fi
version=$(node -p 'require(process.argv[1]).version' "$src/package.json")
case "$version" in '' | */* | .*) die "$src/package.json: bad version '$version'" ;; esac
say "installing cctv-edge-agent $version from $src into ${R:-/}"

# The release carries native addons built for one platform and Node ABI: the node the unit
# runs (/usr/bin/node) must match, or the service cannot load them.
node_bin=/usr/bin/node
[ -x "$node_bin" ] || node_bin=$(command -v node)
built_for=$(node -p 'const i = require(process.argv[1]); `${i.platform}-${i.arch} node ABI ${i.nodeModuleAbi}`' "$src/release-info.json")
here=$("$node_bin" -p '`${process.platform}-${process.arch} node ABI ${process.versions.modules}`')
if [ "$built_for" != "$here" ]; then
  if [ "$live" = yes ]; then
    die "this release is built for $built_for, but $node_bin is $here ($("$node_bin" --version)): build the release with the same Node major on the same platform"
  fi
  say "warning: this release is built for $built_for; $node_bin here is $here (fine if the target's node matches)"
elif [ "$live" = yes ] && [ "$node_bin" != /usr/bin/node ]; then
  say "warning: the unit runs /usr/bin/node, which is missing (node is $node_bin): add a drop-in with ExecStart= set to it"
fi

changed=no # the release or the unit changed: a running service is restarted

# --- the system user ----------------------------------------------------------------------
mkdir -p "$R/usr/lib/sysusers.d"
install -m 0644 "$src/systemd/cctv-agent.sysusers" "$R/usr/lib/sysusers.d/$NAME.conf"
say "sysusers entry: $R/usr/lib/sysusers.d/$NAME.conf"
if [ "$live" = yes ]; then
  if getent passwd "$NAME" >/dev/null; then
    say "system user $NAME exists"
  elif command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers "/usr/lib/sysusers.d/$NAME.conf"
    say "created system user $NAME (systemd-sysusers)"
  else
    useradd --system --user-group --home-dir /var/lib/cctv-agent --no-create-home --shell /usr/sbin/nologin \
      --comment cctv-edge-agent "$NAME"
    say "created system user $NAME (useradd)"
  fi
else
  say "prefix install: no user created; on the target, systemd-sysusers creates $NAME from the entry at boot"
fi

# --- configuration and data ----------------------------------------------------------------
mkdir -p "$R/etc/cctv-agent"
chmod 0750 "$R/etc/cctv-agent"
if [ -e "$R/etc/cctv-agent/config.yaml" ]; then
  say "kept $R/etc/cctv-agent/config.yaml"
else
  install -m 0640 "$src/systemd/config.yaml" "$R/etc/cctv-agent/config.yaml"
  say "new config $R/etc/cctv-agent/config.yaml (add a camera before starting the service)"
fi
mkdir -p "$R/var/lib/cctv-agent"
chmod 0750 "$R/var/lib/cctv-agent"
if [ "$live" = yes ]; then
  # Group-readable config (it may name secrets); data owned by the agent, again after a
  # reinstall gave the user a new uid.
  chgrp "$NAME" /etc/cctv-agent /etc/cctv-agent/config.yaml
  chown -R "$NAME:$NAME" /var/lib/cctv-agent
  say "ownership: /etc/cctv-agent root:$NAME, /var/lib/cctv-agent $NAME:$NAME"
fi
say "data directory $R/var/lib/cctv-agent"

# --- the release tree ------------------------------------------------------------------------
opt=$R/opt/cctv-agent
mkdir -p "$opt" "$opt/assets"
chmod 0755 "$opt" "$opt/assets"
target=$opt/$version
if [ -d "$target" ] && diff -r -q --no-dereference "$src" "$target" >/dev/null 2>&1; then
  say "$target is already installed, unchanged"
else
  rm -rf "$opt/.$version.new" "$opt/.$version.old"
  cp -a "$src" "$opt/.$version.new"
  if [ "$live" = yes ]; then chown -R root:root "$opt/.$version.new"; fi
  chmod -R go-w "$opt/.$version.new"
  if [ -d "$target" ]; then
    mv -T "$target" "$opt/.$version.old"
    mv -T "$opt/.$version.new" "$target"
    rm -rf "$opt/.$version.old"
    say "replaced $target (same version, different content)"
  else
    mv -T "$opt/.$version.new" "$target"
    say "installed $target"
  fi
  changed=yes
fi
previous=
if [ -L "$opt/current" ]; then previous=$(readlink "$opt/current"); fi
if [ "$previous" = "$version" ]; then
  say "$opt/current -> $version (unchanged)"
else
  ln -sfn "$version" "$opt/.current.new"
  mv -T "$opt/.current.new" "$opt/current"
  changed=yes
  say "$opt/current -> $version${previous:+ (was $previous)}"
fi
for dir in "$opt"/*/; do
  old=$(basename "$dir")
  case "$old" in "$version" | current | assets) continue ;; esac
  say "kept $opt/$old for a rollback (ln -sfn $old $opt/current; or rm -rf $opt/$old)"
done

# --- the unit --------------------------------------------------------------------------------
units=$R/etc/systemd/system
mkdir -p "$units"
unit_changed=no
if ! cmp -s "$src/systemd/cctv-agent.service" "$units/$NAME.service"; then unit_changed=yes; fi
if [ "$unit_changed" = yes ]; then
  install -m 0644 "$src/systemd/cctv-agent.service" "$units/$NAME.service"
  say "unit $units/$NAME.service written"
  changed=yes
else
  say "unit $units/$NAME.service (unchanged)"
fi
if [ "$systemd_running" = yes ]; then
  if [ "$unit_changed" = yes ]; then systemctl daemon-reload; fi
  systemctl enable "$NAME.service"
  say "enabled $NAME.service (systemctl enable)"
else
  mkdir -p "$units/multi-user.target.wants"
  ln -sfn "/etc/systemd/system/$NAME.service" "$units/multi-user.target.wants/$NAME.service"
  say "enabled $NAME.service ($units/multi-user.target.wants/$NAME.service)"
fi

# --- models --------------------------------------------------------------------------------
if [ "$fetch_assets" = yes ]; then
  say "fetching the detector, its labels and its golden images into $opt/assets"
  node "$opt/current/dist/agent/cli/bin.js" assets fetch --dest "$opt/assets" ${mirror:+--mirror "$mirror"} \
    yolox-nano-int8.onnx yolox-nano.onnx coco-labels.txt bus-and-cars.jpg bicycle-pickup-dog.jpg
fi

# --- running service -------------------------------------------------------------------------
if [ "$systemd_running" = yes ] && systemctl is-active --quiet "$NAME.service"; then
  if [ "$changed" = yes ]; then
    systemctl restart "$NAME.service"
    say "restarted $NAME.service on $version"
  else
    say "$NAME.service is running $version already"
  fi
else
  say "done. Next: add a camera to /etc/cctv-agent/config.yaml, fetch the models (install.sh --fetch-assets," \
    "or docs/packaging.md), check it (cctv-agent config check), then: systemctl start $NAME"
fi
