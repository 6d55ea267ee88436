import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { configSchema } from '../../agent/config/schema.js';
import { openDatabase, type Db } from '../../agent/storage/database.js';
import { DiskReserve } from '../../agent/storage/disk-reserve.js';
import { RetentionService } from '../../agent/storage/retention.js';
import { StorageCondition } from '../../agent/storage/storage-condition.js';
import { captureLogger } from '../support/capture-log.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-retention-timing-');
const DAY_MS = 86_400_000;
const MINUTE = 60_000;
const NOW = Date.parse('2026-06-01T12:00:00Z');
const defaults = configSchema.parse({ cameras: [{ id: 'c', url: '/dev/null' }] }).storage.retention;

function setup(overrides: Partial<typeof defaults> = {}): { db: Db; retention: RetentionService } {
  const dir = tempDir();
  const file = path.join(dir, 'agent.db');
  const db = openDatabase(file);
  const { log } = captureLogger();
  const retention = new RetentionService({
    db: () => db,
    databaseFile: file,
    dataDir: dir,
    config: { ...defaults, minFreeDiskMB: 0, maxDatabaseMB: null, ...overrides },
    condition: new StorageCondition(() => undefined),
    reserve: new DiskReserve(dir, log),
    recordEvent: () => undefined,
    log,
  });
  return { db, retention };
}

function insertAt(db: Db, table: 'results' | 'events' | 'telemetry', at: number): void {
  if (table === 'results') {
    db.prepare(`INSERT INTO results (message_id, camera_id, seq, captured_at, model_id, model_version, task, vehicle_count, vehicles, top, inference_ms)
      VALUES (?, 'cam', 0, ?, 'm', '1', 'detection', 0, '[]', NULL, 1)`).run(`r${at}-${Math.random()}`, at);
  } else if (table === 'events') {
    db.prepare("INSERT INTO events (at, kind, subject, code, detail) VALUES (?, 'agent-started', NULL, NULL, NULL)").run(at);
  } else {
    db.prepare(`INSERT INTO telemetry (message_id, at, interval_s, cpu_percent, temperature_c, memory_available_bytes, disk_free_bytes, rss_bytes, fps,
      inference_p50_ms, inference_p95_ms, outbox_depth, database_bytes, sample) VALUES (?, ?, 30, 1, NULL, 1, 1, 1, 1, 1, 1, 0, 1, '{}')`).run(
      `t${at}-${Math.random()}`,
      at,
    );
  }
}

const count = (db: Db, table: string): number => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;

describe('retention arithmetic and timing, on fake time', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval', 'clearTimeout', 'clearInterval', 'Date'] });
    vi.setSystemTime(NOW);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("deletes exactly the rows older than each table's age limit", async () => {
    const { db, retention } = setup({ resultsDays: 30, telemetryDays: 90, eventsDays: 365 });
    for (const [table, days] of [
      ['results', 30],
      ['telemetry', 90],
      ['events', 365],
    ] as const) {
      insertAt(db, table, NOW - days * DAY_MS - MINUTE); // one minute too old
      insertAt(db, table, NOW - days * DAY_MS + MINUTE); // one minute young enough
    }
    await retention.start();
    await retention.trigger();
    for (const table of ['results', 'telemetry', 'events']) expect(count(db, table), table).toBe(1);
    expect(retention.health().detail).toMatchObject({ pruned: { results: 1, telemetry: 1, events: 1 } });
    await retention.stop();
    db.close();
  });

  it('runs a pass every pruneIntervalSeconds, and rows age into pruning as time passes', async () => {
    const { db, retention } = setup({ resultsDays: 1, pruneIntervalSeconds: 600 });
    insertAt(db, 'results', NOW - DAY_MS + 5 * MINUTE); // too old in 5 minutes
    await retention.start();
    await retention.trigger();
    const passes = (retention.health().detail as { passes: number }).passes;
    expect(count(db, 'results')).toBe(1);
    await vi.advanceTimersByTimeAsync(599_000);
    expect((retention.health().detail as { passes: number }).passes).toBe(passes);
    await vi.advanceTimersByTimeAsync(1000);
    // The tick's pass runs on (its free-space check is real I/O): wait for it, start no other.
    await vi.waitFor(() => expect((retention.health().detail as { passes: number }).passes).toBe(passes + 1));
    await retention.trigger();
    expect(count(db, 'results')).toBe(0);
    await retention.stop();
    db.close();
  });

  it('a second emergency within 5 s waits until 5 s after the first', async () => {
    const { db, retention } = setup({ pruneIntervalSeconds: 86_400, pruneBatchRows: 10 });
    for (let i = 0; i < 200; i++) insertAt(db, 'results', NOW - i * MINUTE);
    await retention.start();
    await retention.trigger();
    retention.emergency();
    await retention.trigger();
    expect(count(db, 'results')).toBe(180); // the oldest tenth
    await vi.advanceTimersByTimeAsync(1000);
    retention.emergency();
    await retention.trigger(); // an ordinary pass; the emergency is deferred to a timer
    const afterSecond = count(db, 'results');
    await vi.advanceTimersByTimeAsync(3998);
    expect(count(db, 'results')).toBe(afterSecond);
    await vi.advanceTimersByTimeAsync(10);
    await retention.trigger();
    expect(afterSecond).toBe(180);
    expect(count(db, 'results')).toBe(162);
    await retention.stop();
    db.close();
  });
});
