import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { migrations } from '../../agent/storage/migrations.js';
import { TelemetryReader, bucketStarts, median } from '../../agent/telemetry/telemetry-reader.js';
import { useTempDir } from '../support/temp-dir.js';
import { MINUTE, T0, createAgentDatabase, insertEvent, insertResult, insertSample, makeSample } from './fixture.js';

const tempDir = useTempDir('cctv-telemetry-reader-');

function open(file: string): TelemetryReader {
  const reader = TelemetryReader.open(file);
  if (!reader) throw new Error('expected a reader');
  return reader;
}

describe('telemetry reader: aggregation on a synthetic database', () => {
  it('gives min, median and max per field, skipping nulls, and the latest sample with its JSON', () => {
    const { db, file } = createAgentDatabase(tempDir());
    const cpus = [10, 30, 20, 90];
    cpus.forEach((cpu, index) => {
      insertSample(db, makeSample(T0 + index * MINUTE, { cpu, temperature: index === 1 ? null : 40 + index, fps: 5 - index, p50: 10 + index }));
    });
    db.close();
    const reader = open(file);
    const summary = reader.summarize({ since: T0, until: T0 + 10 * MINUTE, bucketMs: 5 * MINUTE });
    reader.close();
    expect(summary.samples).toBe(4);
    expect(summary.fields.cpuPercent).toEqual({ min: 10, median: 25, max: 90, count: 4 });
    expect(summary.fields.temperatureC).toEqual({ min: 40, median: 42, max: 43, count: 3 });
    expect(summary.fields.fps).toEqual({ min: 2, median: 3.5, max: 5, count: 4 });
    expect(summary.fields.inferenceP50Ms).toMatchObject({ min: 10, max: 13 });
    expect(summary.latest?.at).toBe(T0 + 3 * MINUTE);
    expect(summary.latest?.values.cpuPercent).toBe(90);
    expect(summary.latest?.sample?.pipeline.cameras[0]?.id).toBe('north');
    expect(summary.series.map((point) => point.values.cpuPercent)).toEqual(cpus);
  });

  it('median of odd and even counts', () => {
    expect(median([1, 2, 3])).toBe(2);
    expect(median([1, 2, 3, 10])).toBe(2.5);
    expect(median([7])).toBe(7);
  });

  it('counts vehicles per type per bucket exactly, per camera when asked, and the events in range', () => {
    const { db, file } = createAgentDatabase(tempDir());
    // Buckets of 5 minutes from T0: [0,5) [5,10) [10,15)
    insertResult(db, T0 - 1, ['car']); // before the range
    insertResult(db, T0, ['car', 'car', 'truck']);
    insertResult(db, T0 + 4 * MINUTE, []);
    insertResult(db, T0 + 5 * MINUTE - 1, ['bus'], 'south');
    insertResult(db, T0 + 5 * MINUTE, ['van', 'car']);
    insertResult(db, T0 + 14 * MINUTE, ['motorcycle'], 'south');
    insertResult(db, T0 + 15 * MINUTE, ['car']); // at until: outside [since, until)
    for (let minute = 0; minute < 30; minute++) insertEvent(db, T0 - 5 * MINUTE + minute * MINUTE, 'camera-state', 'north', null, `event ${minute}`);
    db.close();
    const reader = open(file);
    const query = { since: T0, until: T0 + 15 * MINUTE, bucketMs: 5 * MINUTE };
    const all = reader.summarize(query);
    expect(all.vehicles.buckets).toEqual([
      { start: T0, results: 3, vehicles: { car: 2, truck: 1, bus: 1 } },
      { start: T0 + 5 * MINUTE, results: 1, vehicles: { van: 1, car: 1 } },
      { start: T0 + 10 * MINUTE, results: 1, vehicles: { motorcycle: 1 } },
    ]);
    expect(all.vehicles.totals).toEqual({ car: 3, truck: 1, bus: 1, van: 1, motorcycle: 1 });
    expect(all.vehicles.results).toBe(5);
    expect(all.vehicles.cameras).toEqual({ north: 3, south: 2 });
    // Events from T0 to T0+14m: 15 in range, the last 20 asked -> all 15, oldest first.
    expect(all.events.total).toBe(15);
    expect(all.events.recent.map((event) => event.detail)).toEqual(Array.from({ length: 15 }, (_, index) => `event ${index + 5}`));
    const south = reader.summarize({ ...query, cameraId: 'south', eventLimit: 3 });
    expect(south.vehicles.buckets.map((bucket) => bucket.results)).toEqual([1, 0, 1]);
    expect(south.vehicles.totals).toEqual({ bus: 1, motorcycle: 1 });
    expect(south.events.recent.map((event) => event.detail)).toEqual(['event 17', 'event 18', 'event 19']);
    reader.close();
  });

  it('filters by --since exactly and aligns buckets to the clock (partial first and last buckets)', () => {
    const { db, file } = createAgentDatabase(tempDir());
    for (let second = 0; second < 3600; second += 30) {
      insertSample(db, makeSample(T0 + second * 1000));
      insertResult(db, T0 + second * 1000, ['car']);
    }
    db.close();
    const reader = open(file);
    const since = T0 + 7.5 * MINUTE;
    const summary = reader.summarize({ since, until: T0 + 60 * MINUTE, bucketMs: 10 * MINUTE });
    // Samples at 7:30, 8:00, ... 59:30: (3600 - 450) / 30.
    expect(summary.samples).toBe(105);
    expect(summary.series[0]!.at).toBe(since);
    expect(bucketStarts(since, T0 + 60 * MINUTE, 10 * MINUTE)).toEqual([0, 10, 20, 30, 40, 50].map((m) => T0 + m * MINUTE));
    expect(summary.vehicles.buckets.map((bucket) => bucket.results)).toEqual([5, 20, 20, 20, 20, 20]);
    expect(summary.vehicles.buckets.map((bucket) => bucket.vehicles['car'])).toEqual([5, 20, 20, 20, 20, 20]);
    reader.close();
  });

  it('reads vehicles JSON written differently (spaces, key order) exactly, and counts a damaged row apart', () => {
    const { db, file } = createAgentDatabase(tempDir());
    const insert = db.prepare(
      "INSERT INTO results (message_id, camera_id, seq, captured_at, model_id, model_version, task, vehicle_count, vehicles, inference_ms) VALUES (?, 'north', 0, ?, 'm', '1', 'detection', ?, ?, 1)",
    );
    insert.run('a', T0, 2, '[ { "label": "type", "type" : "truck" }, {"score": 1, "type": "car"} ]');
    // A label that looks like a type is escaped in JSON, so the pattern does not see it.
    insert.run('b', T0 + 1, 1, JSON.stringify([{ type: 'bus', label: '"type":"car"', score: 1, box: [0, 0, 0, 0] }]));
    // A nested "type": the pattern finds 2 where vehicle_count says 1 -> the row is parsed instead.
    insert.run('c', T0 + 2, 1, JSON.stringify([{ type: 'car', attributes: { type: 'sedan' } }]));
    insert.run('d', T0 + 3, 2, '[{"type":"car"},{"ty');
    db.close();
    const reader = open(file);
    const summary = reader.summarize({ since: T0, until: T0 + MINUTE, bucketMs: MINUTE });
    expect(summary.vehicles.totals).toEqual({ truck: 1, car: 2, bus: 1 });
    expect(summary.vehicles.results).toBe(4);
    expect(summary.vehicles.unreadableRows).toBe(1);
    reader.close();
  });

  it('an empty database: no samples, no latest, no results', () => {
    const { db, file } = createAgentDatabase(tempDir());
    db.close();
    const reader = open(file);
    const summary = reader.summarize({ since: T0, until: T0 + MINUTE, bucketMs: MINUTE });
    expect(summary).toMatchObject({ samples: 0, latest: undefined, vehicles: { results: 0 }, events: { total: 0, recent: [] } });
    expect(summary.fields.cpuPercent).toBeNull();
    expect(reader.schemaVersion).toBe(migrations.at(-1)!.version);
    reader.close();
  });
});

describe('telemetry reader: files it cannot use', () => {
  it('a missing database: STORAGE_READ_FAILED naming the file', () => {
    const file = path.join(tempDir(), 'agent.db');
    expect(() => TelemetryReader.open(file)).toThrow(expect.objectContaining({ code: 'STORAGE_READ_FAILED', message: expect.stringContaining(file) }));
    expect(fs.existsSync(file)).toBe(false);
  });

  it('a database of schema version 1 (no telemetry table): a clear message, not a crash', () => {
    const file = path.join(tempDir(), 'agent.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec(migrations[0]!.sql);
    db.pragma('user_version = 1');
    db.close();
    expect(() => TelemetryReader.open(file)).toThrow(
      expect.objectContaining({
        code: 'STORAGE_READ_FAILED',
        message: expect.stringMatching(/schema version 1, which has no telemetry table.*Start the current agent once/),
      }),
    );
  });

  it('a file that is not an agent database', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'garbage.db'), 'not sqlite at all, not even close'.repeat(100));
    expect(() => TelemetryReader.open(path.join(dir, 'garbage.db'))).toThrow(
      expect.objectContaining({ code: 'STORAGE_READ_FAILED', message: expect.stringContaining('SQLITE_NOTADB') }),
    );
    const empty = new Database(path.join(dir, 'empty.db'));
    empty.exec('CREATE TABLE other (x)');
    empty.close();
    expect(() => TelemetryReader.open(path.join(dir, 'empty.db'))).toThrow(
      expect.objectContaining({ message: expect.stringContaining('not a cctv-agent database') }),
    );
  });
});

describe('telemetry reader: speed', () => {
  it('summarises 100k results and 10k telemetry samples (time printed, not asserted)', () => {
    const { db, file } = createAgentDatabase(tempDir());
    const types = ['car', 'car', 'car', 'truck', 'bus', 'van', 'motorcycle'];
    const started = performance.now();
    db.transaction(() => {
      for (let index = 0; index < 100_000; index++) {
        // 5 fps for 5.5 hours, 0 to 6 vehicles a frame, two cameras.
        insertResult(
          db,
          T0 + index * 200,
          types.slice(0, index % 7).map((_, k) => types[(index + k) % 7]!),
          index % 2 === 0 ? 'north' : 'south',
        );
      }
      for (let index = 0; index < 10_000; index++) insertSample(db, makeSample(T0 + index * 2000, { cpu: index % 100, fps: 5 }));
    })();
    db.close();
    const filled = performance.now() - started;
    const reader = open(file);
    const range = { since: T0, until: T0 + 100_000 * 200, bucketMs: 30 * MINUTE };
    const times: number[] = [];
    let summary = reader.summarize(range);
    for (let run = 0; run < 3; run++) {
      const start = performance.now();
      summary = reader.summarize(range);
      times.push(performance.now() - start);
    }
    const cameraStart = performance.now();
    reader.summarize({ ...range, cameraId: 'south' });
    const cameraMs = performance.now() - cameraStart;
    reader.close();
    expect(summary.vehicles.results).toBe(100_000);
    expect(summary.samples).toBe(10_000);
    const expectedVehicles = Array.from({ length: 100_000 }, (_, index) => index % 7).reduce((sum, count) => sum + count, 0);
    expect(Object.values(summary.vehicles.totals).reduce((sum, count) => sum + count, 0)).toBe(expectedVehicles);
    console.log(
      `telemetry summary of 100k results + 10k samples: ${times.map((ms) => ms.toFixed(0)).join(', ')} ms (3 runs), ` +
        `one camera ${cameraMs.toFixed(0)} ms; database filled in ${filled.toFixed(0)} ms`,
    );
  });
});
