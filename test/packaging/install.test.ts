/**
 * scripts/install.sh and scripts/uninstall.sh into a temp root prefix (DESTDIR-style): the
 * same install twice gives the same tree, byte for byte; an upgrade keeps the config and the
 * data and switches `current`; uninstall keeps config and data, --purge removes them.
 * Under a prefix the scripts touch nothing outside it (no user, no chown, no systemctl).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assetMirror, ensureReleaseTarball, runScript, sha256, tempDir, treeListing, unpack, type ReleaseTarball, type ScriptRun } from './support.js';

let release: ReleaseTarball;
const cleanup: string[] = [];

beforeAll(() => {
  release = ensureReleaseTarball();
}, 600_000);
afterAll(() => {
  for (const dir of cleanup) fs.rmSync(dir, { recursive: true, force: true });
});

function fresh(prefix: string): string {
  const dir = tempDir(prefix);
  cleanup.push(dir);
  return dir;
}

function ok(run: ScriptRun): string {
  expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
  return run.stdout;
}

/** A copy of the release claiming another version, packed as a plain .tar (no gzip CPU). */
function fakeRelease(version: string): string {
  const work = fresh('cctv-fake-release-');
  unpack(release.tarball, work);
  const top = `cctv-edge-agent-${version}`;
  fs.renameSync(path.join(work, release.topDir), path.join(work, top));
  for (const file of ['package.json', 'release-info.json']) {
    const full = path.join(work, top, file);
    const json = JSON.parse(fs.readFileSync(full, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(full, `${JSON.stringify({ ...json, version }, null, 2)}\n`);
  }
  const tar = path.join(work, `${top}.tar`);
  execFileSync('tar', ['-cf', tar, '-C', work, top]);
  fs.rmSync(path.join(work, top), { recursive: true });
  return tar;
}

const agentVersion = (root: string): string =>
  execFileSync(process.execPath, [path.join(root, 'opt/cctv-agent/current/dist/agent/cli/bin.js'), 'version'], { encoding: 'utf8' }).trim();

describe('install.sh / uninstall.sh under a root prefix', () => {
  it('installs the layout; a second run changes nothing (paths, types, modes, link targets, file hashes)', () => {
    const root = fresh('cctv-install-');
    const first = ok(runScript('install.sh', ['--prefix', root, '--tarball', release.tarball]));
    console.log(first.trim());
    const v = release.version;
    expect(fs.readlinkSync(path.join(root, 'opt/cctv-agent/current'))).toBe(v);
    expect(fs.existsSync(path.join(root, `opt/cctv-agent/${v}/dist/agent/cli/bin.js`))).toBe(true);
    expect(fs.statSync(path.join(root, 'opt/cctv-agent/assets')).isDirectory()).toBe(true);
    expect(fs.readFileSync(path.join(root, 'etc/systemd/system/cctv-agent.service'), 'utf8')).toBe(
      fs.readFileSync(path.join(root, `opt/cctv-agent/${v}/systemd/cctv-agent.service`), 'utf8'),
    );
    expect(fs.readlinkSync(path.join(root, 'etc/systemd/system/multi-user.target.wants/cctv-agent.service'))).toBe('/etc/systemd/system/cctv-agent.service');
    expect(fs.readFileSync(path.join(root, 'usr/lib/sysusers.d/cctv-agent.conf'), 'utf8')).toMatch(/^u cctv-agent /m);
    expect(fs.statSync(path.join(root, 'etc/cctv-agent')).mode & 0o777).toBe(0o750);
    expect(fs.statSync(path.join(root, 'etc/cctv-agent/config.yaml')).mode & 0o777).toBe(0o640);
    expect(fs.statSync(path.join(root, 'var/lib/cctv-agent')).mode & 0o777).toBe(0o750);
    expect(fs.readFileSync(path.join(root, 'etc/cctv-agent/config.yaml'), 'utf8')).toMatch(/^dataDir: \/var\/lib\/cctv-agent$/m);
    expect(agentVersion(root)).toBe(v);
    // Nothing left behind: no temp names in the tree.
    const listing = treeListing(root);
    expect(listing.filter((line) => /\/\.(current|[\d.]+)\.(new|old)/.test(line))).toEqual([]);

    const second = ok(runScript('install.sh', ['--prefix', root, '--tarball', release.tarball]));
    expect(second).toContain('already installed, unchanged');
    expect(second).toContain('kept');
    expect(treeListing(root)).toEqual(listing);

    // The installer inside the unpacked release installs that release: the same tree.
    const other = fresh('cctv-install-from-');
    const unpacked = path.join(unpack(release.tarball, fresh('cctv-unpacked-')), release.topDir);
    ok(runScript(path.join(unpacked, 'scripts', 'install.sh'), ['--prefix', other]));
    expect(treeListing(other)).toEqual(listing);
  }, 180_000);

  it('refuses a checkout (not a release tree) and a tarball that does not match its .sha256', () => {
    const root = fresh('cctv-install-refused-');
    const fromCheckout = runScript('install.sh', ['--prefix', root]);
    expect(fromCheckout.status).toBe(1);
    expect(fromCheckout.stderr).toMatch(/not a release tree.*build\.sh --release/);

    const dir = fresh('cctv-bad-tarball-');
    const copy = path.join(dir, path.basename(release.tarball));
    fs.copyFileSync(release.tarball, copy);
    fs.writeFileSync(`${copy}.sha256`, `${'0'.repeat(64)}  ${path.basename(copy)}\n`);
    const mismatch = runScript('install.sh', ['--prefix', root, '--tarball', copy]);
    expect(mismatch.status).toBe(1);
    expect(mismatch.stderr).toMatch(/does not match/);
    expect(fs.existsSync(path.join(root, 'opt'))).toBe(false);
  });

  it('upgrades: keeps a modified config and the data, switches current, keeps the old version for a rollback; uninstall keeps config and data, --purge removes them', () => {
    const root = fresh('cctv-upgrade-');
    const v = release.version;
    ok(runScript('install.sh', ['--prefix', root, '--tarball', release.tarball]));

    // The operator's edits and the agent's data.
    const config = path.join(root, 'etc/cctv-agent/config.yaml');
    fs.appendFileSync(config, '# edited by the operator\n');
    fs.writeFileSync(path.join(root, 'etc/cctv-agent/mqtt.secret'), 's3cret\n');
    const data = path.join(root, 'var/lib/cctv-agent/agent.db');
    fs.writeFileSync(data, 'results and outbox');
    const kept = { config: sha256(config), data: sha256(data) };

    // Models, and the golden images of their self-test, fetched once, shared by the versions.
    const mirror = assetMirror();
    if (mirror) {
      ok(runScript('install.sh', ['--prefix', root, '--tarball', release.tarball, '--fetch-assets', '--mirror', mirror]));
      expect(fs.readdirSync(path.join(root, 'opt/cctv-agent/assets')).sort()).toEqual([
        'bicycle-pickup-dog.jpg',
        'bus-and-cars.jpg',
        'coco-labels.txt',
        'yolox-nano-int8.onnx',
        'yolox-nano.onnx',
      ]);
    }

    const next = fakeRelease('0.1.1');
    const upgraded = ok(runScript('install.sh', ['--prefix', root, '--tarball', next]));
    console.log(upgraded.trim());
    expect(upgraded).toContain(`current -> 0.1.1 (was ${v})`);
    expect(fs.readlinkSync(path.join(root, 'opt/cctv-agent/current'))).toBe('0.1.1');
    expect(agentVersion(root)).toBe('0.1.1');
    expect(fs.existsSync(path.join(root, `opt/cctv-agent/${v}/dist/agent/cli/bin.js`))).toBe(true);
    expect(upgraded).toContain(`kept ${root}/opt/cctv-agent/${v} for a rollback`);
    expect(sha256(config)).toBe(kept.config);
    expect(sha256(data)).toBe(kept.data);
    expect(fs.readFileSync(path.join(root, 'etc/cctv-agent/mqtt.secret'), 'utf8')).toBe('s3cret\n');

    if (mirror) {
      // The upgraded agent accepts the installed config (with a camera added) and finds the
      // models fetched before the upgrade.
      expect(fs.readdirSync(path.join(root, 'opt/cctv-agent/assets'))).toHaveLength(5);
      const check = spawnSync(process.execPath, [path.join(root, 'opt/cctv-agent/current/dist/agent/cli/bin.js'), 'config', 'check', config], {
        encoding: 'utf8',
        env: {
          PATH: process.env['PATH'],
          CCTV_CAMERAS: JSON.stringify([{ id: 'north', url: 'rtsp://192.0.2.10:554/stream' }]),
          CCTV_MODEL__ASSETS_DIR: path.join(root, 'opt/cctv-agent/assets'),
        },
      });
      expect(check.status, check.stderr).toBe(0);
      expect(check.stdout).toMatch(/^ok: .*1 camera\(s\), model yolox-nano-int8@1\.0\.0, data \/var\/lib\/cctv-agent$/m);
    }

    const removed = ok(runScript('uninstall.sh', ['--prefix', root]));
    console.log(removed.trim());
    expect(fs.existsSync(path.join(root, 'opt/cctv-agent'))).toBe(false);
    expect(fs.existsSync(path.join(root, 'etc/systemd/system/cctv-agent.service'))).toBe(false);
    expect(fs.existsSync(path.join(root, 'etc/systemd/system/multi-user.target.wants/cctv-agent.service'))).toBe(false);
    expect(fs.existsSync(path.join(root, 'usr/lib/sysusers.d/cctv-agent.conf'))).toBe(false);
    expect(sha256(config)).toBe(kept.config);
    expect(sha256(data)).toBe(kept.data);
    expect(removed).toContain(`kept ${root}/etc/cctv-agent`);
    expect(removed).toContain(`kept ${root}/var/lib/cctv-agent`);

    // Reinstalling after an uninstall picks the kept config up again.
    ok(runScript('install.sh', ['--prefix', root, '--tarball', release.tarball]));
    expect(sha256(config)).toBe(kept.config);

    const purged = ok(runScript('uninstall.sh', ['--prefix', root, '--purge']));
    console.log(purged.trim());
    for (const gone of ['etc/cctv-agent', 'var/lib/cctv-agent', 'opt/cctv-agent', 'etc/systemd/system/cctv-agent.service']) {
      expect(fs.existsSync(path.join(root, gone)), gone).toBe(false);
    }
    // Uninstalling again is harmless.
    ok(runScript('uninstall.sh', ['--prefix', root, '--purge']));
  }, 240_000);
});
