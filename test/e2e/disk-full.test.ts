import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../agent/storage/database.js';
import { assetPath } from '../support/assets.js';
import { freePort } from '../support/free-port.js';
import { killIfRunning, spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-diskfull-');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const TMPFS_MB = 24;

/** A small tmpfs is a real full disk: ENOSPC from the kernel, SQLITE_FULL from SQLite. */
function mountTmpfs(dir: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_MB}m,mode=0755`, 'tmpfs', dir], { stdio: 'pipe' });
    return true;
  } catch (error) {
    console.log(`cannot mount a tmpfs here (${(error as Error).message.split('\n')[0]}): the full-disk test needs root or CAP_SYS_ADMIN`);
    return false;
  }
}

/** Writes zeros until the file system refuses: what a runaway log file does to a box. */
function fillDisk(file: string): number {
  const chunk = Buffer.alloc(64 * 1024);
  const fd = fs.openSync(file, 'w');
  let written = 0;
  try {
    for (;;) {
      try {
        written += fs.writeSync(fd, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw error;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return written;
}

describe('a full disk under the data directory', () => {
  let agent: AgentProcess | undefined;
  let mounted: string | undefined;

  // Runs before the temp dir's own cleanup (after-hooks run in reverse order).
  afterEach(async () => {
    if (agent) fs.writeFileSync(path.join(os.tmpdir(), 'cctv-disk-full-agent.log'), agent.stdout());
    await killIfRunning(agent);
    if (mounted) execFileSync('umount', ['-l', mounted]);
    mounted = undefined;
  });

  it('keeps the agent running, prunes, reports the event, and leaves a valid database', async (context) => {
    const dir = tempDir();
    const dataDir = path.join(dir, 'data');
    fs.mkdirSync(dataDir);
    // Reported as skipped, not passed, where the machine does not allow a mount.
    if (!mountTmpfs(dataDir)) context.skip();
    mounted = dataDir;

    // Older results to prune, as a box that ran for a while has.
    const databaseFile = path.join(dataDir, 'agent.db');
    const seed = openDatabase(databaseFile);
    const insert = seed.prepare(
      `INSERT INTO results (message_id, camera_id, seq, captured_at, model_id, model_version, task, vehicle_count, vehicles, top, inference_ms)
       VALUES (?, 'old', ?, ?, 'm', '1', 'detection', 1, ?, NULL, 9)`,
    );
    const vehicles = JSON.stringify([{ type: 'car', label: 'car', score: 0.9, box: [0.1, 0.2, 0.3, 0.4], pad: 'x'.repeat(300) }]);
    const start = Date.now() - 3_600_000;
    seed.transaction(() => {
      for (let i = 0; i < 20_000; i++) insert.run(`seed-${i}`, i, start + i, vehicles);
    })();
    seed.close();

    const config = path.join(dir, 'config.yaml');
    const clip = assetPath('highway-cctv-320x240.mp4');
    fs.writeFileSync(
      config,
      [
        'deviceId: diskfull',
        `dataDir: ${dataDir}`,
        'cameras:',
        `  - { id: a, url: "${clip}", sampleFps: null, realtime: false, loop: true }`,
        `  - { id: b, url: "${clip}", sampleFps: null, realtime: false, loop: true }`,
        // A broker that is never there: the outbox grows too, as in a long outage.
        `mqtt: { url: "mqtt://127.0.0.1:${await freePort()}" }`,
        'storage: { retention: { minFreeDiskMB: 1, pruneIntervalSeconds: 2 } }',
        'telemetry: { intervalSeconds: 2 }',
        '',
      ].join('\n'),
    );

    agent = spawnAgent(['run', '--config', config]);
    await agent.waitForLog((line) => line.msg === 'cctv-agent running', 30_000);
    await agent.waitForLog((line) => line.msg === 'camera state' && line['to'] === 'streaming', 15_000);
    await sleep(1000);
    const filler = fillDisk(path.join(dataDir, 'runaway.log'));
    const filledAt = Date.now();

    await agent.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('storage degraded'), 30_000);
    await agent.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('disk full: oldest results'), 30_000);
    // It goes on classifying and storing the newest results while the filler stays.
    await sleep(10_000);
    expect(agent.child.exitCode).toBeNull();

    const readAt = Date.now();
    const db = new Database(databaseFile, { readonly: true });
    const newest = db.prepare("SELECT max(captured_at) AS at, count(*) AS n FROM results WHERE camera_id IN ('a', 'b')").get() as { at: number; n: number };
    const oldest = db.prepare("SELECT count(*) AS n FROM results WHERE camera_id = 'old'").get() as { n: number };
    db.close();
    agent.kill('SIGTERM');
    const exit = await agent.exited;

    const after = new Database(databaseFile);
    const integrity = after.pragma('integrity_check', { simple: true });
    const events = after
      .prepare("SELECT kind, code FROM events WHERE kind IN ('storage-degraded', 'storage-pruned', 'storage-recovered') ORDER BY id")
      .all() as Array<{ kind: string; code: string | null }>;
    after.close();
    console.log(
      `tmpfs ${TMPFS_MB} MiB, filler ${(filler / 1048576).toFixed(1)} MiB: ${20_000 - oldest.n} seeded rows pruned, ${newest.n} new results kept, ` +
        `newest ${readAt - newest.at} ms old 10 s after the disk filled (at ${filledAt}); events ${events.map((e) => e.kind).join(', ')}; exit ${exit.code}`,
    );
    expect(integrity).toBe('ok');
    expect(oldest.n).toBeLessThan(20_000);
    expect(readAt - newest.at).toBeLessThan(8000);
    expect(events).toContainEqual({ kind: 'storage-degraded', code: 'STORAGE_DISK_FULL' });
    expect(events).toContainEqual({ kind: 'storage-pruned', code: 'STORAGE_DISK_FULL' });
    expect(exit.code).toBe(0);
  }, 120_000);
});
