import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type CountingLine, countingSchema } from '../../agent/config/counting-schema.js';
import { ConfigError, loadConfig } from '../../agent/config/load.js';
import { CountingService } from '../../agent/counting/counting-service.js';
import type { CountErrorPayload, CountsPayload } from '../../agent/counting/counts-schema.js';
import { countErrorPayloadSchema, countsPayloadSchema } from '../../agent/counting/counts-schema.js';
import { isAgentError } from '../../agent/errors.js';
import type { InferenceResult, Vehicle } from '../../agent/inference/result.js';
import { deviceTopics } from '../../agent/mqtt/topics.js';
import { openDatabase } from '../../agent/storage/database.js';
import { SqliteOutbox } from '../../agent/storage/outbox.js';
import { captureLogger } from '../support/capture-log.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-counting-');
const topics = deviceTopics('cctv', 'dev');
/** Midnight UTC of some day: intervals start on whole minutes from here. */
const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
const LINE: CountingLine = { id: 'mid', from: [0, 0.5], to: [1, 0.5], directions: { leftToRight: 'southbound', rightToLeft: 'northbound' } };

function setup(lines: CountingLine[] = [LINE]) {
  const db = openDatabase(path.join(tempDir(), 'agent.db'));
  let now = T0;
  const evaluated: string[] = [];
  const counting = new CountingService({
    db: () => db,
    deviceId: 'dev',
    config: countingSchema.parse({ intervalSeconds: 60, graceSeconds: 5 }),
    cameras: [{ id: 'north', lines }],
    topic: topics.counts,
    onCountError: (cameraId) => evaluated.push(cameraId),
    now: () => now,
    log: captureLogger().log,
  });
  const outbox = new SqliteOutbox(db);
  const published = () =>
    outbox
      .peek(0, 10_000)
      .filter((row) => row.topic === topics.counts)
      .map((row) => JSON.parse(row.payload.toString()) as CountsPayload | CountErrorPayload);
  return { db, counting, published, evaluated, setNow: (ms: number) => (now = ms) };
}

let seq = 0;
function result(at: number, vehicles: Vehicle[]): InferenceResult {
  return { cameraId: 'north', seq: seq++, capturedAt: at, model: { id: 'm', version: '1' }, task: 'detection', vehicles, inferenceMs: 10 };
}

/**
 * Drives `count` vehicles down the picture (southbound) one after another from `start`, at 5
 * frames a second, each taking 2 s from y 0.1 to 0.9; `type` per vehicle.
 */
function drive(counting: CountingService, start: number, types: Array<Vehicle['type']>, northbound = false): number {
  let at = start;
  for (const type of types) {
    for (let f = 0; f <= 10; f++) {
      const y = northbound ? 0.9 - f * 0.08 : 0.1 + f * 0.08;
      counting.observe(result(at, [{ type, label: type, score: 0.8, box: [0.45, y - 0.04, 0.1, 0.08] }]));
      at += 200;
    }
    // A frame without vehicles long enough for the track to die before the next one.
    for (let f = 0; f < 7; f++) {
      counting.observe(result(at, []));
      at += 200;
    }
  }
  return at;
}

describe('CountingService on SQLite with an injected clock', () => {
  it('counts each crossing once per line, direction and type, and closes intervals into SQLite and the outbox together', async () => {
    const { db, counting, published, setNow } = setup();
    await counting.start();
    let at = drive(counting, T0 + 1000, ['car', 'car', 'truck']);
    at = drive(counting, at, ['car'], true);
    expect(at).toBeLessThan(T0 + 60_000);
    // Still inside the grace period: nothing closed yet.
    setNow(T0 + 62_000);
    counting.tick();
    expect(published()).toHaveLength(0);
    setNow(T0 + 65_001);
    counting.tick();
    const [counts] = published() as CountsPayload[];
    expect(countsPayloadSchema.parse(counts)).toBeTruthy();
    expect(counts).toMatchObject({
      kind: 'counts',
      cameraId: 'north',
      from: new Date(T0).toISOString(),
      to: new Date(T0 + 60_000).toISOString(),
      intervalSeconds: 60,
    });
    const south = counts!.lines.find((line) => line.direction === 'southbound')!;
    const north = counts!.lines.find((line) => line.direction === 'northbound')!;
    expect(south.counts).toMatchObject({ car: 2, truck: 1, bus: 0 });
    expect(south.total).toBe(3);
    expect(north.total).toBe(1);
    expect(north.counts.car).toBe(1);
    const rows = db.prepare('SELECT line_id, direction, vehicle_type, count FROM counts ORDER BY direction, vehicle_type').all();
    expect(rows).toEqual([
      { line_id: 'mid', direction: 'northbound', vehicle_type: 'car', count: 1 },
      { line_id: 'mid', direction: 'southbound', vehicle_type: 'car', count: 2 },
      { line_id: 'mid', direction: 'southbound', vehicle_type: 'truck', count: 1 },
    ]);
    const interval = db.prepare('SELECT message_id, frames FROM count_intervals').get() as { message_id: string; frames: number };
    expect(interval.message_id).toBe(counts!.id);
    expect(interval.frames).toBe(4 * 18);
    await counting.stop();
  });

  it('sets track ids on the results, and a frame of a later interval closes the one before', async () => {
    const { counting, published } = setup();
    await counting.start();
    const vehicles: Vehicle[][] = [];
    for (let f = 0; f < 3; f++) {
      const list: Vehicle[] = [{ type: 'car', label: 'car', score: 0.9, box: [0.2, 0.2 + f * 0.02, 0.1, 0.08] }];
      vehicles.push(list);
      counting.observe(result(T0 + 59_000 + f * 200, list));
    }
    expect(vehicles[0]![0]!.trackId).toBeUndefined();
    expect(vehicles[1]![0]!.trackId).toBeGreaterThan(0);
    expect(vehicles[2]![0]!.trackId).toBe(vehicles[1]![0]!.trackId);
    counting.observe(result(T0 + 60_100, []));
    counting.tick();
    expect(published()).toHaveLength(1);
    expect((published()[0] as CountsPayload).frames).toBe(3);
    await counting.stop();
    // Stop writes the interval in progress as it stands (one frame).
    expect(published()).toHaveLength(2);
  });

  it('compares reference counts per type (vans as cars), stores and publishes the count error, and tells the monitor', async () => {
    const { counting, published, evaluated, setNow } = setup();
    await counting.start();
    drive(counting, T0 + 1000, ['car', 'car', 'car', 'truck']);
    setNow(T0 + 70_000);
    counting.tick();
    const comparison = counting.compareWithReference({
      cameraId: 'north',
      from: new Date(T0).toISOString(),
      to: new Date(T0 + 60_000).toISOString(),
      counts: { car: 2, van: 2, truck: 2 },
      merge: { van: 'car' },
      source: 'loop',
    });
    expect(countErrorPayloadSchema.parse(comparison)).toBeTruthy();
    expect(comparison.byType).toEqual([
      { type: 'car', reference: 4, agent: 3, error: -0.25 },
      { type: 'truck', reference: 2, agent: 1, error: -0.5 },
    ]);
    expect(comparison.total).toEqual({ reference: 6, agent: 4, error: -0.3333 });
    expect(comparison).toMatchObject({ intervals: 1, expectedIntervals: 1, kind: 'count-error' });
    expect(published().filter((message) => message.kind === 'count-error')).toHaveLength(1);
    expect(evaluated).toEqual(['north']);
    expect(counting.countError('north')).toEqual({ value: 0.3333, n: 6 });
    expect(counting.countError('north', 'truck')).toEqual({ value: 0.5, n: 2 });
    expect(counting.countError('south')).toBeNull();
    await counting.stop();
  });

  it('refuses a comparison with a coded error: unknown camera, line or direction; no interval in the period', async () => {
    const { counting } = setup();
    await counting.start();
    const base = { cameraId: 'north', from: new Date(T0).toISOString(), to: new Date(T0 + 60_000).toISOString(), counts: { car: 1 }, source: 'x' };
    const codeOf = (args: Parameters<CountingService['compareWithReference']>[0]) => {
      try {
        counting.compareWithReference(args);
      } catch (error) {
        return isAgentError(error) ? error.code : 'not coded';
      }
      return 'no error';
    };
    expect(codeOf({ ...base, cameraId: 'south' })).toBe('COUNTS_UNKNOWN_TARGET');
    expect(codeOf({ ...base, lineId: 'nope' })).toBe('COUNTS_UNKNOWN_TARGET');
    expect(codeOf({ ...base, direction: 'eastbound' })).toBe('COUNTS_UNKNOWN_TARGET');
    expect(codeOf(base)).toBe('COUNTS_NO_INTERVALS');
    await counting.stop();
  });
});

describe('counting config', () => {
  const write = (text: string): string => {
    const file = path.join(tempDir(), 'c.yaml');
    fs.writeFileSync(file, text);
    return file;
  };
  const problemsOf = (text: string): string[] => {
    try {
      loadConfig({ file: write(text), env: {} });
    } catch (error) {
      if (error instanceof ConfigError) return error.problems;
      throw error;
    }
    return [];
  };
  const camera = (lines: string) => `cameras:\n  - id: cam1\n    url: rtsp://10.0.0.5/stream\n    lines:\n${lines}`;

  it('accepts a line and fills the counting defaults', () => {
    const { config } = loadConfig({
      file: write(camera('      - {id: north, from: [0.4, 0.55], to: [0.95, 0.55], directions: {rightToLeft: northbound}}\n')),
      env: {},
    });
    expect(config.cameras[0]!.lines[0]).toMatchObject({ id: 'north', from: [0.4, 0.55], directions: { rightToLeft: 'northbound' } });
    expect(config.counting).toMatchObject({ enabled: true, intervalSeconds: 60, tracker: { expand: 0.5, highScore: 0.5 } });
  });

  it('names the key and the fix of each mistake', () => {
    const lines = camera(
      [
        '      - {id: a, from: [0.4, 1.2], to: [0.9, 0.5], directions: {leftToRight: x}}',
        '      - {id: b, from: [0.5, 0.5], to: [0.5, 0.5], directions: {}}',
        '      - {id: a, from: [0, 0], to: [1, 1], directions: {leftToRight: same, rightToLeft: same}}',
        '      - {id: Bad_Id, from: [0, 0], to: [1, 1], directions: {leftToRight: x}}',
        '',
      ].join('\n'),
    );
    const problems = problemsOf(`${lines}counting:\n  intervalSeconds: 7\n  tracker: { highScore: 0.7, newTrackScore: 0.6 }\n`);
    expect(problems).toContain('counting.tracker.newTrackScore: must be at least highScore (0.7): a track starts only from a high-score detection');
    expect(problems.find((p) => p.startsWith('cameras.0.lines.0.from.1:'))).toMatch(/<=1/);
    expect(problems).toContain('cameras.0.lines.1.to: is (almost) the same point as from: give the two ends of the line, at least 0.01 apart');
    expect(problems).toContain('cameras.0.lines.1.directions: counts nothing: give a label for leftToRight, rightToLeft or both');
    expect(problems).toContain('cameras.0.lines.2.directions.rightToLeft: repeats leftToRight\'s label "same": the two directions need different labels');
    expect(problems).toContain('cameras.0.lines.2.id: duplicate line id "a" on this camera: give each line its own id');
    expect(problems.find((p) => p.startsWith('cameras.0.lines.3.id:'))).toMatch(/lower-case letters/);
    expect(problems.find((p) => p.startsWith('counting.intervalSeconds:'))).toMatch(/>=10|must divide a day/);
  });
});

describe('the lines overlay of `camera snapshot --lines`', () => {
  it('puts an arrow per counted direction on the line, pointing the way the counted vehicles go', async () => {
    const { directionArrows, linesOverlaySvg } = await import('../../agent/counting/line-overlay.js');
    // A horizontal line across a 320x240 picture: leftToRight vehicles go down (+y), rightToLeft up.
    const arrows = directionArrows(LINE, 320, 240);
    expect(arrows.map((arrow) => arrow.label)).toEqual(['southbound', 'northbound']);
    const [down, up] = arrows;
    expect(down!.from[1]).toBeCloseTo(120);
    expect(down!.to[1]).toBeGreaterThan(down!.from[1]);
    expect(down!.to[0]).toBeCloseTo(down!.from[0]);
    expect(up!.to[1]).toBeLessThan(up!.from[1]);
    // An arrow's direction crosses the line the way crossingDirection counts it.
    const { crossingDirection } = await import('../../agent/counting/crossing.js');
    const n = (v: number, size: number) => v / size;
    expect(crossingDirection(0, 0.5, 1, 0.5, n(down!.from[0], 320), n(down!.from[1] - 5, 240), n(down!.to[0], 320), n(down!.to[1], 240))).toBe(1);
    expect(crossingDirection(0, 0.5, 1, 0.5, n(up!.from[0], 320), n(up!.from[1] + 5, 240), n(up!.to[0], 320), n(up!.to[1], 240))).toBe(-1);
    const svg = linesOverlaySvg([{ ...LINE, id: 'a<b' }], 320, 240);
    expect(svg).toContain('a&#60;b');
    expect(svg.match(/marker-end/g)).toHaveLength(2);
  });
});

describe('countedCameras (compose)', () => {
  it('gives a file read faster than real time the media-time clock, and nothing else', async () => {
    const { countedCameras } = await import('../../agent/compose/counting.js');
    const { configSchema } = await import('../../agent/config/schema.js');
    const config = configSchema.parse({
      cameras: [
        { id: 'file-fast', url: '/clips/a.mp4', realtime: false, sampleFps: 5 },
        { id: 'file-live', url: '/clips/a.mp4', sampleFps: 5 },
        { id: 'rtsp', url: 'rtsp://10.0.0.5/s', realtime: false, sampleFps: 5 },
        { id: 'every-frame', url: 'file:///clips/a.mp4', realtime: false, sampleFps: null },
        { id: 'off', url: '/clips/a.mp4', enabled: false },
      ],
    });
    expect(countedCameras(config.cameras)).toEqual([
      { id: 'file-fast', lines: [], frameIntervalMs: 200 },
      { id: 'file-live', lines: [] },
      { id: 'rtsp', lines: [] },
      { id: 'every-frame', lines: [] },
    ]);
  });
});

describe('retention of the counting tables', () => {
  it('prunes intervals, counts and comparisons older than storage.retention.eventsDays', async () => {
    const { configSchema } = await import('../../agent/config/schema.js');
    const { RetentionService } = await import('../../agent/storage/retention.js');
    const { DiskReserve } = await import('../../agent/storage/disk-reserve.js');
    const { StorageCondition } = await import('../../agent/storage/storage-condition.js');
    const { CountStore } = await import('../../agent/counting/count-store.js');
    const dir = tempDir();
    const file = path.join(dir, 'agent.db');
    const db = openDatabase(file);
    const store = new CountStore(db);
    const DAY = 86_400_000;
    const now = Date.now();
    const counts = { car: 2, van: 0, truck: 1, bus: 0, motorcycle: 0, bicycle: 0, other: 0 };
    for (const [i, startAt] of [now - 400 * DAY, now - 399 * DAY, now - DAY].entries()) {
      store.writeInterval(
        { cameraId: 'north', startAt, intervalMs: 60_000, frames: 300, lines: [{ lineId: 'mid', direction: 'up', counts, total: 3 }] },
        `m${i}`,
        '{}',
      );
    }
    db.prepare(
      "INSERT INTO count_errors (at, camera_id, from_at, to_at, reference_total, agent_total, total_error, sample) VALUES (?, 'north', 0, 1, 1, 1, 0, '{}')",
    ).run(now - 400 * DAY);
    const { log } = captureLogger();
    const retention = new RetentionService({
      db: () => db,
      databaseFile: file,
      dataDir: dir,
      config: {
        ...configSchema.parse({ cameras: [{ id: 'c', url: '/dev/null' }] }).storage.retention,
        eventsDays: 365,
        minFreeDiskMB: 0,
        pruneIntervalSeconds: 3600,
      },
      condition: new StorageCondition(() => {}),
      reserve: new DiskReserve(dir, log),
      recordEvent: () => {},
      log,
    });
    await retention.start();
    await retention.trigger();
    await retention.stop();
    const n = (table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    expect([n('count_intervals'), n('counts'), n('count_errors')]).toEqual([1, 2, 0]);
    db.close();
  });
});
