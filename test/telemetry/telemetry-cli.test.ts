import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { telemetryReportSchema } from '../../agent/cli/telemetry-report.js';
import { agentBin, killIfRunning, spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { waitFor } from '../support/wait.js';
import { useTempDir } from '../support/temp-dir.js';
import { T0, createAgentDatabase, insertResult, insertSample, makeSample } from './fixture.js';

// These run the compiled CLI (dist/agent/cli/bin.js): `npm run build` first.
const tempDir = useTempDir('cctv-telemetry-bin-');
const WRITER = fileURLToPath(new URL('./writer-child.mjs', import.meta.url));
let processes: AgentProcess[] = [];

afterEach(async () => {
  for (const child of processes) await killIfRunning(child);
  processes = [];
});

function start(args: string[]): AgentProcess {
  const child = spawnAgent(['telemetry', ...args]);
  processes.push(child);
  return child;
}

function dataDirWithOneSample(): string {
  const dir = tempDir();
  const { db } = createAgentDatabase(dir);
  insertSample(db, makeSample(Date.now() - 1000, { cpu: 11 }));
  insertResult(db, Date.now() - 1000, ['car']);
  db.close();
  return dir;
}

describe('cctv-agent telemetry, the compiled CLI', () => {
  it('--follow prints the latest sample, then each new one, and exits 0 on SIGTERM', async () => {
    const dir = dataDirWithOneSample();
    const follower = start(['--data-dir', dir, '--follow']);
    const lines = (): string[] => follower.stdout().split('\n').filter(Boolean);
    await waitFor(() => lines().length >= 2, 10_000, 'the header and the latest sample');
    expect(lines()[0]).toMatch(/^following .*agent\.db, times UTC from \d{4}-\d{2}-\d{2} \(Ctrl-C to stop\)$/);
    expect(lines()[1]).toMatch(/^\d\d:\d\d:\d\d cpu 11% /);
    const { db } = createAgentDatabase(dir);
    insertSample(db, makeSample(Date.now(), { cpu: 22 }));
    insertSample(db, makeSample(Date.now() + 1, { cpu: 33 }));
    await waitFor(() => lines().length >= 4, 10_000, 'two new samples');
    db.close();
    expect(
      lines()
        .slice(2)
        .map((line) => /cpu (\d+)%/.exec(line)?.[1]),
    ).toEqual(['22', '33']);
    follower.kill('SIGTERM');
    expect(await follower.exited).toMatchObject({ code: 0, signal: null });
    expect(follower.stderr()).toBe('');
  });

  it('--follow --json: one sample document per line, and SIGINT also ends it with 0', async () => {
    const dir = dataDirWithOneSample();
    const follower = start(['--data-dir', dir, '--follow', '--json']);
    await waitFor(() => follower.stdout().split('\n').filter(Boolean).length >= 1, 10_000, 'the latest sample');
    const { db } = createAgentDatabase(dir);
    insertSample(db, makeSample(Date.now(), { cpu: 44 }));
    db.close();
    await waitFor(() => follower.stdout().split('\n').filter(Boolean).length >= 2, 10_000, 'the new sample');
    follower.kill('SIGINT');
    expect(await follower.exited).toMatchObject({ code: 0, signal: null });
    const samples = follower
      .stdout()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { values: { cpuPercent: number }; sample: { deviceId: string } });
    expect(samples.map((sample) => sample.values.cpuPercent)).toEqual([11, 44]);
    expect(samples[1]!.sample.deviceId).toBe('edge-test');
  });

  it('errors: exit 3 for a missing database, 2 for a bad duration or an unknown option, one clear line each', async () => {
    const dir = tempDir();
    const cases: Array<[string[], number, RegExp]> = [
      [['--data-dir', dir], 3, /^cctv-agent: STORAGE_READ_FAILED: no database at .*agent\.db: no agent has run with this data directory/],
      [['--data-dir', dir, '--since', 'ages'], 2, /^cctv-agent: USAGE: --since "ages": give a duration ago/],
      [['--data-dir', dir, '--colour'], 2, /^cctv-agent: USAGE: telemetry: Unknown option '--colour'/],
    ];
    for (const [args, code, message] of cases) {
      const child = start(args);
      expect((await child.exited).code, args.join(' ')).toBe(code);
      expect(child.stderr()).toMatch(message);
      expect(child.stderr().trim().split('\n')).toHaveLength(1);
      expect(child.stdout()).toBe('');
    }
  });

  it('`cctv-agent help` lists the command', async () => {
    const help = spawnAgent(['help']);
    processes.push(help);
    await help.exited;
    expect(help.stdout()).toContain('telemetry [--since 1h]');
  });
});

// An operator in the service's group reads the database of the service user (docs/operations.md).
const SERVICE = { uid: 1001, gid: 1001 };
const OPERATOR = 1002;
const canSwitchUsers = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;

function asUser(uid: number, gid: number, command: string[]): string[] {
  return ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', ...command];
}

function runAs(uid: number, gid: number, args: string[]): { code: number | null; out: string; err: string } {
  const [file, ...rest] = asUser(uid, gid, [process.execPath, agentBin(), 'telemetry', ...args]);
  const result = spawnSync(file!, rest, { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env['PATH'] } });
  return { code: result.status, out: result.stdout, err: result.stderr };
}

/** <tmp>/data owned by the service user, 0750, the database 0640: what install.sh and UMask=0027 give. */
function serviceDataDir(): string {
  const root = tempDir();
  fs.chmodSync(root, 0o755);
  const dir = path.join(root, 'data');
  fs.mkdirSync(dir);
  const { db } = createAgentDatabase(dir);
  insertSample(db, makeSample(T0));
  insertResult(db, T0, ['car', 'bus']);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  for (const name of fs.readdirSync(dir)) {
    fs.chownSync(path.join(dir, name), SERVICE.uid, SERVICE.gid);
    fs.chmodSync(path.join(dir, name), 0o640);
  }
  fs.chownSync(dir, SERVICE.uid, SERVICE.gid);
  fs.chmodSync(dir, 0o750);
  return dir;
}

const rangeArgs = ['--since', '2026-11-27T11:00Z', '--until', '2026-11-27T13:00Z', '--json'];

describe.skipIf(!canSwitchUsers)('another user, who cannot write the data directory (needs root for setpriv)', () => {
  it('agent stopped (no -wal/-shm): read from a copy in memory, nothing created', () => {
    const dir = serviceDataDir();
    const before = fs.readdirSync(dir).sort();
    const { code, out, err } = runAs(OPERATOR, SERVICE.gid, ['--data-dir', dir, ...rangeArgs]);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(telemetryReportSchema.parse(JSON.parse(out))).toMatchObject({
      database: { readMode: 'memory-copy' },
      samples: 1,
      vehicles: { totals: { car: 1, bus: 1 } },
    });
    expect(fs.readdirSync(dir).sort()).toEqual(before);
  });

  it('agent running (the writer holds -wal/-shm): read directly through the read-only -shm', async () => {
    const dir = serviceDataDir();
    // Writes for up to 60 s; killed once the reads are done (a SIGKILL mid-write is what WAL is for).
    const [file, ...rest] = asUser(SERVICE.uid, SERVICE.gid, [
      'sh',
      '-c',
      `umask 027; exec "${process.execPath}" "${WRITER}" "$1" 60000`,
      'writer',
      path.join(dir, 'agent.db'),
    ]);
    const writer = spawn(file!, rest, { stdio: ['ignore', 'ignore', 'pipe'] });
    let writerErr = '';
    writer.stderr.on('data', (chunk: Buffer) => (writerErr += chunk.toString()));
    const writerExit = new Promise<NodeJS.Signals | null>((resolve) => writer.once('exit', (_code, signal) => resolve(signal)));
    try {
      await waitFor(() => fs.existsSync(path.join(dir, 'agent.db-shm')), 10_000, 'the writer to open the database');
      for (let read = 0; read < 3; read++) {
        const { code, out, err } = runAs(OPERATOR, SERVICE.gid, ['--data-dir', dir, '--since', '10m', '--json']);
        expect(writer.exitCode, writerErr).toBeNull();
        expect(err).toBe('');
        expect(code).toBe(0);
        const report = telemetryReportSchema.parse(JSON.parse(out));
        expect(report.database.readMode).toBe('direct');
        expect(report.vehicles.results).toBeGreaterThan(0);
      }
    } finally {
      writer.kill('SIGKILL');
      expect(await writerExit).toBe('SIGKILL');
    }
    const check = spawnSync(
      process.execPath,
      [
        '-e',
        `const D = require('better-sqlite3'); const db = new D(process.argv[1], { readonly: true }); process.stdout.write(db.pragma('integrity_check', { simple: true }))`,
        path.join(dir, 'agent.db'),
      ],
      { encoding: 'utf8', cwd: path.dirname(WRITER) },
    );
    expect(check.stdout, check.stderr).toBe('ok');
  });

  it('not in the group: STORAGE_READ_FAILED naming the file, exit 3', () => {
    const dir = serviceDataDir();
    const { code, err } = runAs(OPERATOR, OPERATOR, ['--data-dir', dir]);
    expect(code).toBe(3);
    expect(err).toContain(
      `cctv-agent: STORAGE_READ_FAILED: cannot read ${path.join(dir, 'agent.db')} (EACCES): run as the agent's user, root, or a member of the agent's group`,
    );
  });

  it('root on a stopped agent: the -wal/-shm SQLite creates belong to the service user, so the agent can still open them', () => {
    const dir = serviceDataDir();
    const out = execFileSync(process.execPath, [agentBin(), 'telemetry', '--data-dir', dir, ...rangeArgs], { encoding: 'utf8' });
    expect(telemetryReportSchema.parse(JSON.parse(out)).database.readMode).toBe('direct');
    for (const name of fs.readdirSync(dir)) expect(fs.statSync(path.join(dir, name)).uid, name).toBe(SERVICE.uid);
  });
});
