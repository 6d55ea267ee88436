import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../agent/config/schema.js';
import type { InferenceResult } from '../../agent/inference/result.js';
import { openDatabase, type Db } from '../../agent/storage/database.js';
import { DiskReserve, RESERVE_FILE_NAME } from '../../agent/storage/disk-reserve.js';
import { EventLog } from '../../agent/storage/event-log.js';
import type { AgentEvent } from '../../agent/storage/event-schema.js';
import { SqliteOutbox } from '../../agent/storage/outbox.js';
import { ResultWriter } from '../../agent/storage/result-writer.js';
import { RetentionService } from '../../agent/storage/retention.js';
import { StorageCondition, type ConditionChange } from '../../agent/storage/storage-condition.js';
import { captureLogger } from '../support/capture-log.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-retention-');
const DAY_MS = 86_400_000;
const defaults = configSchema.parse({ cameras: [{ id: 'c', url: '/dev/null' }] }).storage.retention;

/** A result row with a vehicles column of about `bytes` bytes. */
function insertResults(db: Db, count: number, capturedAt: (i: number) => number, bytes = 200): void {
  const vehicles = JSON.stringify([{ type: 'car', label: 'car', score: 0.9, box: [0.1, 0.2, 0.3, 0.4], pad: 'x'.repeat(Math.max(0, bytes - 80)) }]);
  const insert = db.prepare(
    `INSERT INTO results (message_id, camera_id, seq, captured_at, model_id, model_version, task, vehicle_count, vehicles, top, inference_ms)
     VALUES (?, 'cam', ?, ?, 'm', '1', 'detection', 1, ?, NULL, 9.5)`,
  );
  db.transaction(() => {
    for (let i = 0; i < count; i++) insert.run(`id-${i}-${Math.random()}`, i, capturedAt(i), vehicles);
  })();
}

function setup(overrides: Partial<typeof defaults> = {}): {
  db: Db;
  file: string;
  retention: RetentionService;
  events: AgentEvent[];
  changes: ConditionChange[];
  condition: StorageCondition;
} {
  const dir = tempDir();
  const file = path.join(dir, 'agent.db');
  const db = openDatabase(file);
  const events: AgentEvent[] = [];
  const changes: ConditionChange[] = [];
  const condition = new StorageCondition((change) => changes.push(change));
  const { log } = captureLogger();
  const retention = new RetentionService({
    db: () => db,
    databaseFile: file,
    dataDir: dir,
    config: { ...defaults, minFreeDiskMB: 0, pruneIntervalSeconds: 3600, ...overrides },
    condition,
    reserve: new DiskReserve(dir, log),
    recordEvent: (event) => events.push(event),
    log,
  });
  return { db, file, retention, events, changes, condition };
}

const count = (db: Db, table: string): number => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;

describe('retention', () => {
  it('prunes results, telemetry and events older than their limits, in batches, keeping the rest', async () => {
    const { db, retention } = setup({ resultsDays: 30, telemetryDays: 90, eventsDays: 365, pruneBatchRows: 500 });
    const now = Date.now();
    insertResults(db, 5000, () => now - 40 * DAY_MS);
    insertResults(db, 100, () => now - DAY_MS);
    const telemetry = db.prepare(
      `INSERT INTO telemetry (message_id, at, interval_s, fps, inference_p50_ms, inference_p95_ms, outbox_depth, database_bytes, sample) VALUES (?, ?, 30, 5, 9, 12, 0, 0, '{}')`,
    );
    for (let i = 0; i < 300; i++) telemetry.run(`t-${i}`, i < 200 ? now - 100 * DAY_MS : now);
    const event = db.prepare(`INSERT INTO events (at, kind) VALUES (?, 'camera-state')`);
    for (let i = 0; i < 50; i++) event.run(i < 20 ? now - 400 * DAY_MS : now);

    await retention.start();
    await retention.trigger();
    await retention.stop();

    expect(count(db, 'results')).toBe(100);
    expect(count(db, 'telemetry')).toBe(100);
    expect(count(db, 'events')).toBe(30);
    expect(retention.health().detail).toMatchObject({ pruned: { results: 5000, telemetry: 200, events: 20 } });
    db.close();
  });

  it('brings a database above its size cap back under it, oldest first, and hands the pages back to the disk', async () => {
    const { db, file, retention, events } = setup({ maxDatabaseMB: 4, pruneBatchRows: 1000 });
    const now = Date.now();
    insertResults(db, 12_000, (i) => now - 12_000 + i, 1000);
    db.pragma('wal_checkpoint(TRUNCATE)');
    const before = retention.usedBytes();
    const fileBefore = fs.statSync(file).size;
    expect(before).toBeGreaterThan(8 * 1024 * 1024);
    const newest = db.prepare('SELECT max(id) AS id FROM results').get() as { id: number };

    await retention.start();
    await retention.trigger();
    await retention.stop();

    const after = retention.usedBytes();
    db.pragma('wal_checkpoint(TRUNCATE)');
    console.log(
      `size cap 4 MiB: used ${(before / 1048576).toFixed(1)} -> ${(after / 1048576).toFixed(1)} MiB, file ${(fileBefore / 1048576).toFixed(1)} -> ${(fs.statSync(file).size / 1048576).toFixed(1)} MiB, ${count(db, 'results')} rows kept`,
    );
    expect(after).toBeLessThanOrEqual(4 * 1024 * 1024);
    expect(fs.statSync(file).size).toBeLessThan(fileBefore / 2);
    expect((db.prepare('SELECT max(id) AS id FROM results').get() as { id: number }).id).toBe(newest.id);
    expect(events).toContainEqual(expect.objectContaining({ kind: 'storage-pruned', detail: expect.objectContaining({ reason: 'size-cap' }) }));
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  });

  it('keeps a disk reserve and releases it for an emergency pruning', async () => {
    const { db, retention, events } = setup();
    const reserveFile = path.join(path.dirname(db.name), RESERVE_FILE_NAME);
    insertResults(db, 3000, (i) => Date.now() - 3000 + i);
    await retention.start();
    await retention.trigger();
    expect(fs.statSync(reserveFile).size).toBeGreaterThan(0);
    retention.emergency();
    await retention.trigger();
    await retention.stop();
    // The oldest tenth, but at least one pruning batch (2000 by default).
    expect(count(db, 'results')).toBe(1000);
    expect(events).toContainEqual(
      expect.objectContaining({
        kind: 'storage-pruned',
        code: 'STORAGE_DISK_FULL',
        detail: expect.objectContaining({ reason: 'disk-full', rows: 2000, reserveReleased: true }),
      }),
    );
    // This disk has room again, so the reserve is back for the next time.
    expect(fs.existsSync(reserveFile)).toBe(true);
    db.close();
  });
});

describe('a database that refuses writes (SQLITE_FULL through max_page_count)', () => {
  it('degrades, keeps results in memory, prunes, and recovers with nothing lost that fits', async () => {
    const { db, retention, changes, condition } = setup({ pruneBatchRows: 1000 });
    insertResults(db, 4000, (i) => Date.now() - 1e6 + i, 400);
    const pages = db.pragma('page_count', { simple: true }) as number;
    // The file may not grow any more: the next inserts meet SQLITE_FULL, as on a full disk.
    db.pragma(`max_page_count = ${pages}`);
    const { log } = captureLogger();
    const writer = new ResultWriter({
      db: () => db,
      deviceId: 'dev',
      resultsTopic: 'cctv/dev/results',
      flushIntervalMs: 60_000,
      maxBatchRows: 10_000,
      condition,
      onDiskFull: () => retention.emergency(),
      log,
    });
    await writer.start();
    await retention.start();
    await retention.trigger();
    const result = (seq: number): InferenceResult => ({
      cameraId: 'cam',
      seq,
      capturedAt: Date.now(),
      model: { id: 'm', version: '1' },
      task: 'detection',
      vehicles: [{ type: 'car', label: 'car', score: 0.9, box: [0.1, 0.1, 0.1, 0.1] }],
      inferenceMs: 9,
    });
    for (let seq = 0; seq < 400; seq++) writer.enqueue(result(seq));
    writer.flush();
    expect(condition.degraded).toBe(true);
    expect(changes[0]).toMatchObject({ degraded: true, reason: 'disk-full', code: 'SQLITE_FULL' });
    expect(writer.pendingCount).toBe(400);

    await retention.trigger();
    writer.flush();
    expect(writer.pendingCount).toBe(0);
    expect(condition.degraded).toBe(false);
    expect(changes.at(-1)).toMatchObject({ degraded: false });
    const seqs = db.prepare("SELECT seq FROM results WHERE camera_id = 'cam' AND seq < 400 AND id > 4000 ORDER BY id").pluck().all();
    expect(seqs).toEqual(Array.from({ length: 400 }, (_, i) => i));
    expect(count(db, 'outbox')).toBe(400);
    await writer.stop();
    await retention.stop();
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  });
});

describe('outbox cap and expiry', () => {
  it('drops the oldest beyond the cap, counts them, and keeps the order of the rest', () => {
    const db = openDatabase(path.join(tempDir(), 'agent.db'));
    const outbox = new SqliteOutbox(db);
    const insert = db.prepare("INSERT INTO outbox (message_id, topic, payload, created_at) VALUES (?, 't', x'00', 0)");
    for (let i = 0; i < 1000; i++) insert.run(`m${i}`);
    expect(outbox.enforceCap(2000)).toBe(0);
    expect(outbox.enforceCap(300)).toBe(700);
    expect(outbox.depth()).toBe(300);
    expect(outbox.counter('outbox_dropped')).toBe(700);
    expect(outbox.peek(0, 1)[0]!.messageId).toBe('m700');
    outbox.dropExpired(outbox.peek(0, 10).map((row) => row.id));
    expect(outbox.counter('outbox_expired')).toBe(10);
    expect(outbox.depth()).toBe(290);
    db.close();
  });
});

describe('event log', () => {
  it('holds events while the database is away and writes them, in order, when it is back', () => {
    const db = openDatabase(path.join(tempDir(), 'agent.db'));
    let available = false;
    const { log } = captureLogger();
    const events = new EventLog({ db: () => (available ? db : undefined), deviceId: 'dev', topic: 'cctv/dev/events', expiryMs: 1000, log });
    events.record({ kind: 'camera-state', subject: 'a', detail: { from: 'starting', to: 'streaming' } });
    events.record({ kind: 'storage-degraded', subject: 'database', code: 'STORAGE_DISK_FULL' });
    expect(events.pending).toBe(2);
    available = true;
    expect(events.retry()).toBe(true);
    const rows = db.prepare('SELECT kind, subject, code FROM events ORDER BY id').all();
    expect(rows).toEqual([
      { kind: 'camera-state', subject: 'a', code: null },
      { kind: 'storage-degraded', subject: 'database', code: 'STORAGE_DISK_FULL' },
    ]);
    const payload = JSON.parse(new SqliteOutbox(db).peek(0, 10)[1]!.payload.toString()) as Record<string, unknown>;
    expect(payload).toMatchObject({ deviceId: 'dev', kind: 'storage-degraded', code: 'STORAGE_DISK_FULL', subject: 'database' });
    db.close();
  });
});
