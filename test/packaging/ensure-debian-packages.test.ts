import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../agent/paths.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-apt-');
const SCRIPT = path.join(packageRoot(), 'scripts', 'ensure-debian-packages.sh');

/**
 * Fake dpkg-query, apt-get and apt-cache on PATH: a machine with systemd 252.38 installed,
 * where systemd-container's newest version (252.39) would upgrade systemd and 252.38 would not,
 * "greedy" has no version that fits, and "plain" installs cleanly. apt-get records its argv.
 */
function fakeApt(dir: string): { env: NodeJS.ProcessEnv; calls: () => string[] } {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  const log = path.join(dir, 'apt.log');
  const write = (name: string, body: string): void => fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  write('dpkg-query', 'case "$*" in *" systemd") echo "install ok installed";; *" mosquitto") echo "install ok installed";; *) exit 1;; esac');
  write(
    'apt-cache',
    [
      'case "$2" in',
      '  systemd-container) echo " systemd-container | 252.39-1~deb12u2 | http://deb.debian.org/debian bookworm/main amd64 Packages"; echo " systemd-container | 252.38-1~deb12u1 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages";;',
      '  greedy) echo " greedy | 2.0 | http://deb.debian.org/debian bookworm/main amd64 Packages";;',
      'esac',
    ].join('\n'),
  );
  write(
    'apt-get',
    [
      `echo "$*" >> ${log}`,
      'case "$*" in *" -s "*) ;; *) exit 0;; esac',
      'for arg in "$@"; do case "$arg" in',
      '  systemd-container|systemd-container=252.39-1~deb12u2) echo "Inst systemd [252.38-1~deb12u1] (252.39-1~deb12u2 Debian:12.15/oldstable [amd64])"; echo "Inst systemd-container (252.39-1~deb12u2 Debian:12.15/oldstable [amd64])";;',
      '  systemd-container=252.38-1~deb12u1) echo "Inst systemd-container (252.38-1~deb12u1 Debian-Security:12/oldstable-security [amd64])";;',
      '  greedy|greedy=2.0) echo "Inst libc6 [2.36-9] (2.36-10 Debian:12.15/oldstable [amd64])"; echo "Inst greedy (2.0 Debian [amd64])";;',
      '  plain) echo "Inst libplain (1.0 Debian [amd64])"; echo "Inst plain (1.0 Debian [amd64])";;',
      'esac; done',
    ].join('\n'),
  );
  return {
    env: { ...process.env, PATH: `${bin}:${process.env['PATH']}`, DPKG_LOCK_TIMEOUT: '7' },
    calls: () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : []),
  };
}

describe('scripts/ensure-debian-packages.sh installs what is missing and upgrades nothing', () => {
  it.runIf(process.getuid?.() === 0)(
    'pins a package whose newest version would upgrade systemd, leaves out one that fits no way, waits for the dpkg lock',
    () => {
      const { env, calls } = fakeApt(tempDir());
      const run = spawnSync('bash', [SCRIPT, 'test-deps', 'mosquitto', 'systemd', 'systemd-container', 'greedy', 'plain'], { env, encoding: 'utf8' });
      console.log(run.stdout + run.stderr);
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout).toContain('missing systemd-container greedy plain');
      expect(run.stdout).toMatch(
        /systemd-container pinned to 252\.38-1~deb12u1: its newest version would upgrade installed packages \(systemd 252\.38-1~deb12u1 -> 252\.39-1~deb12u2\)/,
      );
      expect(run.stderr).toMatch(/NOT installing greedy: every version of it would upgrade installed packages \(libc6/);
      expect(run.stdout).toMatch(
        /installing systemd-container=252\.38-1~deb12u1 plain \(3 new packages with their dependencies; nothing installed is upgraded\)/,
      );
      const install = calls().filter((call) => call.includes('install -y'));
      expect(install).toHaveLength(1);
      expect(install[0]).toContain('-o DPkg::Lock::Timeout=7');
      expect(install[0]).toContain('--no-upgrade');
      expect(install[0]).toMatch(/systemd-container=252\.38-1~deb12u1 plain$/);
      expect(install[0]).not.toContain('greedy');
    },
  );

  it.runIf(process.getuid?.() === 0)('does nothing, not even apt-get update, when everything is present', () => {
    const { env, calls } = fakeApt(tempDir());
    const run = spawnSync('bash', [SCRIPT, 'test-deps', 'mosquitto', 'systemd'], { env, encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('all 2 Debian packages present');
    expect(calls()).toEqual([]);
  });
});
