/**
 * The unit under a real systemd: the host's own root, as a throw-away overlay (tmpfs upper
 * layer), booted with `systemd-nspawn -b --private-network`. In it, install.sh runs with
 * prefix / (user by systemd-sysusers, unit enabled by systemctl) from the release tarball,
 * and the agent runs as the service with every hardening setting on: READY, results,
 * seccomp and no capabilities, the watchdog restarting a hung agent, reload, a clean stop,
 * uninstall.
 *
 * Needs root, systemd-nspawn (Debian: systemd-container) and overlayfs; skipped otherwise
 * (e.g. in an unprivileged container). Nothing outside the overlay is written but the temp
 * directory holding it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assetMirror, ensureReleaseTarball, type ReleaseTarball } from './support.js';

const which = (command: string): boolean => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
const prerequisites = (): string | undefined => {
  if (process.getuid?.() !== 0) return 'not root';
  for (const command of ['systemd-nspawn', 'nsenter', 'mount', 'umount']) if (!which(command)) return `no ${command}`;
  if (!fs.existsSync('/usr/bin/node')) return 'no /usr/bin/node (the unit runs it)';
  if (!assetMirror()) return 'no asset mirror (the int8 model and the clip come from it)';
  return undefined;
};
const missing = prerequisites();

const marker = `cctv-boot-${crypto.randomBytes(4).toString('hex')}`;
let release: ReleaseTarball;
let base: string | undefined;
let mounted: string[] = [];
let nspawn: ChildProcess | undefined;
let console_ = '';
let pid1: number | undefined;
let runSystemdExisted = true;
let skipReason: string | undefined = missing;

function sh(command: string, options: { timeoutMs?: number } = {}): { status: number | null; out: string } {
  const run = spawnSync('nsenter', ['-t', String(pid1), '-a', 'bash', '-c', command], { encoding: 'utf8', timeout: options.timeoutMs ?? 120_000 });
  return { status: run.status, out: `${run.stdout}${run.stderr}` };
}
function ok(command: string, timeoutMs?: number): string {
  const run = sh(command, timeoutMs === undefined ? {} : { timeoutMs });
  expect(run.status, `${command}\n${run.out}`).toBe(0);
  return run.out;
}
function show(): Record<string, string> {
  const out = ok('systemctl show cctv-agent -p ActiveState -p SubState -p MainPID -p StatusText -p NRestarts -p Result -p ExecMainStatus -p ExecMainCode');
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
async function until<T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(500);
  }
}

function findPid1(): number | undefined {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmdline[0]?.endsWith('/systemd') && cmdline.includes(`systemd.setenv=NSPAWN_TEST_MARKER=${marker}`)) return Number(entry);
    } catch {
      // gone
    }
  }
  return undefined;
}

beforeAll(async () => {
  if (skipReason) return;
  release = ensureReleaseTarball();
  runSystemdExisted = fs.existsSync('/run/systemd/nspawn');
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-boot-'));
  const layer = path.join(base, 'layer');
  const root = path.join(base, 'root');
  const out = path.join(base, 'out');
  for (const dir of [layer, root, out]) fs.mkdirSync(dir);
  const tmpfs = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2G', 'tmpfs', layer], { encoding: 'utf8' });
  if (tmpfs.status !== 0) {
    skipReason = `cannot mount a tmpfs: ${tmpfs.stderr.trim()}`;
    return;
  }
  mounted.unshift(layer);
  fs.mkdirSync(path.join(layer, 'upper'));
  fs.mkdirSync(path.join(layer, 'work'));
  const overlay = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=/,upperdir=${layer}/upper,workdir=${layer}/work`, root], {
    encoding: 'utf8',
  });
  if (overlay.status !== 0) {
    skipReason = `cannot mount an overlay of /: ${overlay.stderr.trim()}`;
    return;
  }
  mounted.unshift(root);
  nspawn = spawn(
    'systemd-nspawn',
    [
      '-D',
      root,
      '--private-network',
      '-M',
      marker,
      '--register=no',
      '--keep-unit',
      '--link-journal=no',
      '--console=pipe',
      `--bind-ro=${path.dirname(release.tarball)}:/test-in/release`,
      `--bind-ro=${assetMirror()}:/test-in/mirror`,
      `--bind=${out}:/test-out`,
      '-b',
      '--',
      'systemd.unit=basic.target',
      `systemd.setenv=NSPAWN_TEST_MARKER=${marker}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  nspawn.stdout!.on('data', (chunk: Buffer) => (console_ += chunk.toString()));
  nspawn.stderr!.on('data', (chunk: Buffer) => (console_ += chunk.toString()));
  try {
    pid1 = await until("the container's systemd", findPid1, 30_000);
    const running = sh('systemctl is-system-running --wait', { timeoutMs: 90_000 });
    if (!/running|degraded/.test(running.out)) throw new Error(`container did not boot: ${running.out}`);
  } catch (error) {
    throw new Error(`${String(error)}\nnspawn output:\n${console_}`);
  }
}, 600_000);

afterAll(async () => {
  if (pid1 !== undefined) sh('systemctl poweroff --no-block', { timeoutMs: 10_000 });
  if (nspawn && nspawn.exitCode === null && nspawn.signalCode === null) {
    const exited = new Promise((resolve) => nspawn!.once('exit', resolve));
    const timer = setTimeout(() => nspawn?.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
  for (const dir of mounted) spawnSync('umount', [dir]);
  mounted = [];
  if (base) fs.rmSync(base, { recursive: true, force: true });
  // nspawn leaves its (empty) runtime directory behind on a host without systemd.
  if (!runSystemdExisted) fs.rmSync('/run/systemd/nspawn', { recursive: true, force: true });
}, 60_000);

describe.skipIf(missing !== undefined)('cctv-agent.service under systemd (nspawn)', () => {
  it('installs, refuses the default config, runs hardened with READY and results, survives reload, is restarted by the watchdog when hung, stops cleanly, uninstalls', async (context) => {
    if (skipReason) context.skip(skipReason);
    const tarball = `/test-in/release/${path.basename(release.tarball)}`;
    // The installer shipped in the tarball, as on a box.
    const install = ok(
      `cd /tmp && tar -xzf ${tarball} && bash /tmp/${release.topDir}/scripts/install.sh --tarball ${tarball} --fetch-assets --mirror /test-in/mirror`,
    );
    console.log(install.trim());
    expect(install).toMatch(/created system user cctv-agent \(systemd-sysusers\)/);
    expect(install).toMatch(/enabled cctv-agent\.service \(systemctl enable\)/);
    expect(ok('systemctl is-enabled cctv-agent').trim()).toBe('enabled');
    expect(ok('stat -c "%U:%G %a" /var/lib/cctv-agent /etc/cctv-agent /etc/cctv-agent/config.yaml').trim().split('\n')).toEqual([
      'cctv-agent:cctv-agent 750',
      'root:cctv-agent 750',
      'root:cctv-agent 640',
    ]);

    // The default config has no camera: exit 2, failed, not restarted.
    expect(sh('systemctl start cctv-agent').status).not.toBe(0);
    await sleep(1000);
    expect(show()).toMatchObject({ ActiveState: 'failed', ExecMainStatus: '2', NRestarts: '0' });
    expect(ok('journalctl -u cctv-agent -o cat --no-pager')).toMatch(/cameras: at least one camera is needed/);

    // A camera: the looped highway clip, readable by the service.
    ok('node /opt/cctv-agent/current/dist/agent/cli/bin.js assets fetch --dest /opt/cctv-agent/assets --mirror /test-in/mirror highway-cctv-320x240.mp4');
    ok(`cat > /etc/cctv-agent/config.yaml <<'EOF'
dataDir: /var/lib/cctv-agent
cameras:
  - { id: highway, url: /opt/cctv-agent/assets/highway-cctv-320x240.mp4, loop: true, realtime: true, sampleFps: 5 }
model:
  assetsDir: /opt/cctv-agent/assets
EOF
systemctl reset-failed cctv-agent`);
    const started = Date.now();
    ok('systemctl start cctv-agent'); // Type=notify: returns once READY=1 arrived
    console.log(`systemctl start: READY after ${Date.now() - started} ms`);
    const running = show();
    expect(running).toMatchObject({ ActiveState: 'active', SubState: 'running' });
    expect(running['StatusText']).toMatch(/^running: 1 camera\(s\), model yolox-nano(-int8)?@/);
    const mainPid = running['MainPID'];

    // Hardened as the unit says, ffmpeg (through setpriv) included.
    const status = ok(`cat /proc/${mainPid}/status`);
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    expect(status).toMatch(/^CapBnd:\s+0+$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    const child = await until(
      'an ffmpeg child',
      () => {
        // A still decode (the start-up self-test's golden image) may just have exited: its
        // zombie shows as "[ffmpeg] <defunct>" until reaped, so the first live ffmpeg is taken.
        const found = sh(`ps -o user=,args= --ppid ${mainPid}`)
          .out.split('\n')
          .map((line) => line.trim())
          .find((line) => line.includes('ffmpeg') && !line.includes('<defunct>'));
        return found;
      },
      20_000,
    );
    // The agent runs Debian's ffmpeg when the machine has it, else the bundled build (docs/decisions/0007).
    if (sh('test -x /usr/bin/ffmpeg').status === 0) expect(child).toMatch(/^cctv-ag\S*\s+\/usr\/bin\/ffmpeg /);
    else expect(child).toMatch(/^cctv-ag\S*\s+\/opt\/cctv-agent\/[^/]+\/node_modules\/@ffmpeg-installer\/.*\/ffmpeg /);

    // Results stored and published.
    const summary = await until(
      '5 results',
      () => {
        const text = sh('runuser -u cctv-agent -- node /opt/cctv-agent/current/dist/agent/cli/bin.js status --data-dir /var/lib/cctv-agent').out;
        const written = Number(/results written (\d+)/.exec(text)?.[1] ?? 0);
        return written >= 5 ? text : undefined;
      },
      60_000,
    );
    console.log(summary.trim());
    expect(summary).toMatch(/highway\s+streaming/);

    // Name lookups work without AF_NETLINK (glibc's AI_ADDRCONFIG check falls back).
    const lookup =
      ok(`systemd-run --wait --pipe -q -p User=cctv-agent -p 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' -p 'SystemCallFilter=@system-service @pkey' \
      /usr/bin/node -e 'require("dns").lookup("localhost", { hints: require("dns").ADDRCONFIG }, (e, a) => { console.log(e ? "lookup failed " + e.code : "lookup " + a); process.exit(e ? 1 : 0); })'`);
    expect(lookup).toMatch(/^lookup (127\.0\.0\.1|::1)$/m);

    // Reload: SIGHUP, nothing restarted. A key that needs a restart is changed, so the agent warns.
    ok("sed -i '1i telemetry: { intervalSeconds: 45 }' /etc/cctv-agent/config.yaml");
    ok('systemctl reload cctv-agent');
    await until('the reload status', () => (show()['StatusText']?.startsWith('reloaded') ? true : undefined), 10_000);
    expect(show()).toMatchObject({ ActiveState: 'active', MainPID: mainPid });

    // journald files each line under its level: -p warning shows warnings and errors only.
    const warnings = await until(
      'the reload warning in the journal',
      () => {
        const text = ok('journalctl -u cctv-agent -p warning -o cat --no-pager');
        return text.includes('these changes take effect at the next restart') ? text : undefined;
      },
      10_000,
    );
    const agentLines = warnings.split('\n').filter((line) => line.startsWith('{'));
    expect(agentLines.length).toBeGreaterThan(0);
    for (const line of agentLines) expect(['warn', 'error', 'fatal']).toContain((JSON.parse(line) as { level: string }).level);
    expect(ok('journalctl -u cctv-agent -p info -o cat --no-pager')).toMatch(/"msg":"cctv-agent running"/);
    expect(ok('journalctl -u cctv-agent -p warning -o cat --no-pager')).not.toMatch(/"msg":"cctv-agent running"/);

    // A hung agent (SIGSTOP: no more WATCHDOG=1) is killed after WatchdogSec and restarted.
    ok(`kill -STOP ${mainPid}`);
    const hungAt = Date.now();
    const killed = await until(
      'the watchdog',
      () => {
        const state = show();
        return state['Result'] === 'watchdog' ? state : undefined;
      },
      60_000,
    );
    console.log(`watchdog fired ${((Date.now() - hungAt) / 1000).toFixed(1)} s after SIGSTOP`);
    // Which signal ended it (SIGABRT, or SIGKILL after TimeoutAbortSec on a stopped process) and
    // when systemd updates ExecMainStatus vary; Result=watchdog and the journal line say it all.
    expect(killed['Result']).toBe('watchdog');
    const restarted = await until(
      'the restart',
      () => {
        const state = show();
        return state['ActiveState'] === 'active' && state['MainPID'] !== mainPid && state['MainPID'] !== '0' ? state : undefined;
      },
      30_000,
    );
    expect(restarted['NRestarts']).toBe('1');
    expect(ok('journalctl -u cctv-agent -o cat --no-pager')).toMatch(/Watchdog timeout \(limit 30s\)!/);

    // A clean stop: exit 0.
    ok('systemctl stop cctv-agent', 60_000);
    expect(show()).toMatchObject({ ActiveState: 'inactive', Result: 'success', ExecMainStatus: '0' });

    const removed = ok(`bash /tmp/${release.topDir}/scripts/uninstall.sh`);
    console.log(removed.trim());
    expect(sh('id cctv-agent').status).not.toBe(0);
    expect(ok('ls /etc/cctv-agent /var/lib/cctv-agent')).toMatch(/config\.yaml[\s\S]*agent\.db/);
    expect(sh('test -e /opt/cctv-agent').status).not.toBe(0);
  }, 300_000);
});
