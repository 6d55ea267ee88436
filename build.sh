#!/usr/bin/env bash
# Type-checks everything (agent, tests, benchmarks) and compiles the agent to dist/.
# `./build.sh --if-stale` does nothing when dist/ is newer than every source.
# `./build.sh --release [--if-stale]` builds release/cctv-edge-agent-<version>.tar.gz and its
# .sha256 from this checkout (docs/packaging.md); it leaves dist/ alone. With --if-stale it
# does nothing when the tarball is newer than everything that goes into it.
set -euo pipefail
cd "$(dirname "$0")"

# The release tarball: the agent compiled afresh, the production node_modules (copied from
# this checkout's installed and compiled ones, devDependencies pruned, other platforms'
# binaries dropped), the catalog and manifests, the unit, default config, installer and docs.
# Not in it: models and clips (fetched on the box, see docs/packaging.md).
release() {
  local if_stale=$1
  umask 022
  local started=$SECONDS version name out
  version=$(node -p 'require("./package.json").version')
  name="cctv-edge-agent-$version"
  out="release/$name.tar.gz"
  local inputs=(agent models/catalog.json models/manifest.schema.json models/manifests models/golden package.json package-lock.json
    tsconfig.json build.sh systemd scripts/install.sh scripts/uninstall.sh README.md docs node_modules/.package-lock.json)

  mkdir -p release
  # One release build at a time; a killed one leaves a stage directory behind: drop those.
  exec 9>release/.lock
  flock 9
  rm -rf release/.stage-*

  if [ "$if_stale" = yes ] && [ -f "$out" ] && [ -f "$out.sha256" ] && \
     [ -z "$(find "${inputs[@]}" -newer "$out" -print -quit 2>/dev/null)" ]; then
    echo "build: $out is up to date"
    return 0
  fi
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "build: node_modules is missing or older than package-lock.json: run scripts/bootstrap.sh (npm ci) first" >&2
    return 1
  fi

  local stage root
  stage=$(mktemp -d "$PWD/release/.stage-XXXXXX")
  release_stage=$stage
  trap 'rm -rf "$release_stage"' EXIT
  root="$stage/$name"
  mkdir -p "$root/models" "$root/systemd" "$root/scripts"

  echo "build: compiling agent/ into the release"
  npx tsc -p tsconfig.json --outDir "$root/dist" --sourceMap false
  chmod +x "$root/dist/agent/cli/bin.js"

  cp package.json package-lock.json README.md "$root/"
  cp -R docs "$root/docs"
  cp models/catalog.json models/manifest.schema.json "$root/models/"
  cp -R models/manifests "$root/models/manifests"
  cp -R models/golden "$root/models/golden"
  cp systemd/cctv-agent.service systemd/cctv-agent.sysusers systemd/config.yaml "$root/systemd/"
  cp scripts/install.sh scripts/uninstall.sh "$root/scripts/"
  chmod +x "$root/scripts/install.sh" "$root/scripts/uninstall.sh"

  # Production node_modules: a copy of the installed tree (native addons already compiled
  # against this Node), pruned of devDependencies. npm ci --omit=dev would compile
  # better-sqlite3 again (about a minute of both cores) for the same result.
  echo "build: production node_modules (copy, npm prune --omit=dev)"
  cp -a node_modules "$root/node_modules"
  (cd "$root" && ONNXRUNTIME_NODE_INSTALL=skip npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error)
  local nm="$root/node_modules" platform arch
  platform=$(node -p process.platform)
  arch=$(node -p process.arch)
  # onnxruntime-node carries binaries for every platform (288 MB): keep this one's.
  local ort="$nm/onnxruntime-node/bin/napi-v6"
  find "$ort" -mindepth 2 -maxdepth 2 -type d ! -path "$ort/$platform/$arch" -exec rm -rf {} +
  find "$ort" -mindepth 1 -maxdepth 1 -type d -empty -delete
  # Native addons: keep the compiled .node, drop sources and object files.
  local addon
  for addon in better-sqlite3/better_sqlite3.node unix-dgram/unix_dgram.node; do
    local module=${addon%%/*} file=${addon#*/}
    if [ ! -f "$nm/$module/build/Release/$file" ]; then
      echo "build: $module is not compiled ($nm/$module/build/Release/$file missing): the release needs it" >&2
      return 1
    fi
    mv "$nm/$module/build/Release/$file" "$stage/$file"
    rm -rf "$nm/$module/build" "$nm/$module/src" "$nm/$module/deps"
    mkdir -p "$nm/$module/build/Release"
    mv "$stage/$file" "$nm/$module/build/Release/$file"
  done
  rm -rf "$nm/fluent-ffmpeg/coverage" "$nm/fluent-ffmpeg/doc"
  find "$nm" -mindepth 1 -maxdepth 1 -type d -empty -delete

  node -e '
    const [root, platform, arch] = process.argv.slice(1);
    const { execSync } = require("node:child_process");
    const git = (cmd) => { try { return execSync(cmd, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim(); } catch { return null; } };
    const pkg = require(`${root}/package.json`);
    const info = {
      name: pkg.name,
      version: pkg.version,
      commit: git("git rev-parse HEAD"),
      dirty: git("git status --porcelain") ? true : false,
      node: process.version,
      nodeModuleAbi: process.versions.modules,
      platform,
      arch,
      glibc: process.report.getReport().header.glibcVersionRuntime ?? null,
    };
    require("node:fs").writeFileSync(`${root}/release-info.json`, JSON.stringify(info, null, 2) + "\n");
  ' "$root" "$platform" "$arch"

  # The staged tree must run as it is: the CLI, and every native addon loads.
  local got
  got=$(cd "$stage" && node "$name/dist/agent/cli/bin.js" version)
  if [ "$got" != "$version" ]; then echo "build: the staged agent says version '$got', expected $version" >&2; return 1; fi
  (cd "$stage" && node -e '
    const r = require("node:module").createRequire(require("node:path").resolve(process.argv[1], "package.json"));
    new (r("better-sqlite3"))(":memory:").prepare("select 1").get();
    r("onnxruntime-node"); r("unix-dgram"); r("@ffmpeg-installer/ffmpeg");
  ' "$name")

  # Reproducible archive: sorted, root-owned, one timestamp (the last commit's), no gzip name/time.
  local epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
  echo "build: packing $out"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" --mode='go-w' \
    -C "$stage" -cf - "$name" | gzip -n -6 > "$out.part"
  mv "$out.part" "$out"
  (cd release && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256.part" && mv "$name.tar.gz.sha256.part" "$name.tar.gz.sha256")
  local bytes files
  bytes=$(stat -c %s "$out")
  files=$(find "$root" -type f | wc -l)
  echo "build: $out ready ($((bytes / 1048576)) MB, $files files, $((SECONDS - started)) s); sha256 in $out.sha256"
}

release_mode=no
release_if_stale=no
for arg in "$@"; do
  case "$arg" in
    --release) release_mode=yes ;;
    --if-stale) release_if_stale=yes ;;
  esac
done
if [ "$release_mode" = yes ]; then
  for arg in "$@"; do
    case "$arg" in
      --release | --if-stale) ;;
      *) echo "build: unknown option $arg (usage: ./build.sh [--if-stale] | ./build.sh --release [--if-stale])" >&2; exit 2 ;;
    esac
  done
  release "$release_if_stale"
  exit 0
fi

stamp=dist/.build-stamp
if [ "${1:-}" = "--if-stale" ] && [ -f "$stamp" ] && \
   [ -z "$(find agent test bench models/manifests tsconfig.json test/tsconfig.json package-lock.json -newer "$stamp" -type f -print -quit 2>/dev/null)" ]; then
  echo "build: dist/ is up to date"
  exit 0
fi
rm -rf dist
npx tsc -p test/tsconfig.json
npx tsc -p tsconfig.json
chmod +x dist/agent/cli/bin.js
touch "$stamp"
echo "build: dist/ ready ($(find dist -name '*.js' | wc -l) files)"
