import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { evidenceSchema } from '../../agent/config/monitor-schema.js';
import { EvidenceService } from '../../agent/evidence/evidence-service.js';
import { sharpOf } from '../../agent/evidence/jpeg-encoder.js';
import { EvidenceWriter } from '../../agent/evidence/evidence-store.js';
import { EvidenceQuota } from '../../agent/evidence/quota.js';
import type { Picture } from '../../agent/inference/picture.js';
import type { InferenceResult } from '../../agent/inference/result.js';
import { openDatabase } from '../../agent/storage/database.js';
import type { AgentEvent } from '../../agent/storage/event-schema.js';
import { captureLogger } from '../support/capture-log.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-evidence-');

function result(seq: number, scores: number[] = [0.9], capturedAt = 1_000_000 + seq * 200): InferenceResult {
  return {
    cameraId: 'north',
    seq,
    capturedAt,
    model: { id: 'm', version: '1' },
    task: 'detection',
    vehicles: scores.map((score) => ({ type: 'car', label: 'car', score, box: [0.25, 0.25, 0.5, 0.5] })),
    inferenceMs: 5,
  };
}

/** A noisy picture: its JPEG has a size that depends on the quality, as a camera frame's does. */
function picture(width = 64, height = 48): Picture {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2_654_435_761) >>> 24;
  return { kind: 'rgb', width, height, channels: 3, data };
}

function setup(overrides: Record<string, unknown> = {}, options: { now?: () => number; random?: () => number } = {}) {
  const dir = tempDir();
  const dbFile = path.join(dir, 'agent.db');
  const db = openDatabase(dbFile);
  const events: AgentEvent[] = [];
  let pictures = 0;
  const log = captureLogger();
  const make = () =>
    new EvidenceService({
      db: () => db,
      dir: path.join(dir, 'evidence'),
      config: evidenceSchema.parse({ randomShare: 1, ...overrides }),
      cropOf: () => null,
      recordEvent: (event) => events.push(event),
      random: options.random ?? (() => 0),
      ...(options.now ? { now: options.now } : {}),
      log: log.log,
    });
  const lazy = (): (() => Picture) => () => {
    pictures++;
    return picture();
  };
  return { db, dir, evidenceDir: path.join(dir, 'evidence'), events, make, lazy, pictures: () => pictures, log };
}

const rows = (db: ReturnType<typeof openDatabase>) =>
  db.prepare('SELECT sample_id, result_id, reason, file, bytes, width, height, detections, disputed FROM evidence ORDER BY id').all() as Array<{
    sample_id: string;
    result_id: string;
    reason: string;
    file: string;
    bytes: number;
    width: number;
    height: number;
    detections: string;
    disputed: number;
  }>;

describe('evidence service (real SQLite file, real sharp)', () => {
  it('keeps a sampled frame: JPEG decodes at the picture size, the row holds the detections and the result id', async () => {
    const { db, evidenceDir, make, lazy } = setup();
    const service = make();
    await service.start();
    const frame = result(1, [0.9, 0.3]);
    service.offer(frame, lazy(), 'result-1');
    await service.idle();
    const [row] = rows(db);
    expect(row).toMatchObject({ result_id: 'result-1', reason: 'random', width: 64, height: 48, disputed: 0 });
    expect(JSON.parse(row!.detections)).toEqual(frame.vehicles);
    const file = path.join(evidenceDir, row!.file);
    expect(fs.statSync(file).size).toBe(row!.bytes);
    const meta = await sharp(file).metadata();
    expect(meta).toMatchObject({ format: 'jpeg', width: 64, height: 48 });
    expect(fs.readdirSync(evidenceDir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    expect(service.health().detail).toMatchObject({ samples: 1, sampled: 1, encoded: 1, droppedBusy: 0, failed: 0 });
    await service.stop();
  });

  it('drops (and counts) a frame chosen while another is being written; the picture is made only for a kept frame', async () => {
    const { db, make, lazy, pictures } = setup();
    const service = make();
    await service.start();
    for (let seq = 0; seq < 5; seq++) service.offer(result(seq), lazy(), `r${seq}`);
    await service.idle();
    expect(rows(db)).toHaveLength(1);
    expect(pictures()).toBe(1);
    expect(service.health().detail).toMatchObject({ sampled: 5, encoded: 1, droppedBusy: 4, byReason: { random: { sampled: 5, droppedBusy: 4 } } });
    await service.stop();
  });

  it('nothing is copied for a frame the draw passes over', async () => {
    const { db, make, lazy, pictures } = setup({ randomShare: 0.001, lowConfidencePerHour: 0 }, { random: () => 0.5 });
    const service = make();
    await service.start();
    for (let seq = 0; seq < 100; seq++) service.offer(result(seq, [0.2]), lazy(), `r${seq}`);
    await service.idle();
    expect(pictures()).toBe(0);
    expect(rows(db)).toHaveLength(0);
    await service.stop();
  });

  it('the count quota deletes the oldest undisputed first, disputed ones only when nothing else is left; evidence-pruned once', async () => {
    let now = 10_000_000;
    const { db, evidenceDir, events, make, lazy } = setup({ maxSamples: 3 }, { now: () => now });
    const service = make();
    await service.start();
    const keep = async (seq: number) => {
      now += 1000;
      service.offer(result(seq, [0.9], now), lazy(), `r${seq}`);
      await service.idle();
    };
    await keep(0);
    await keep(1);
    service.markDisputed(['r0']);
    await keep(2);
    await keep(3); // over by one: r1 (the oldest undisputed) goes, not r0
    expect(rows(db).map((row) => row.result_id)).toEqual(['r0', 'r2', 'r3']);
    await keep(4);
    expect(rows(db).map((row) => row.result_id)).toEqual(['r0', 'r3', 'r4']);
    expect(fs.readdirSync(evidenceDir).sort()).toEqual(
      rows(db)
        .map((row) => row.file)
        .sort(),
    );
    expect(events.filter((event) => event.kind === 'evidence-pruned')).toHaveLength(1);
    expect(events[0]!.detail).toMatchObject({ samples: 1, byQuota: 1, random: 1 });
    // randomCompleteSince moved past the newest random sample pruned (r2).
    expect(service.randomCompleteSince()).toBe(10_000_000 + 3000 + 1);
    // Every held sample disputed: the newest, undisputed one is the one that goes.
    service.markDisputed(['r3', 'r4']);
    await keep(5);
    expect(rows(db).map((row) => row.result_id)).toEqual(['r0', 'r3', 'r4']);
    expect(service.health().detail).toMatchObject({ pruned: 3, disputedMarked: 3 });
    await service.stop();
  });

  it('the byte quota holds: bytes held never exceed maxMegabytes', async () => {
    const { db, make, lazy } = setup({ maxMegabytes: 0.02 });
    const service = make();
    await service.start();
    for (let seq = 0; seq < 20; seq++) {
      service.offer(result(seq), lazy(), `r${seq}`);
      await service.idle();
      const { bytes } = db.prepare('SELECT coalesce(sum(bytes), 0) AS bytes FROM evidence').get() as { bytes: number };
      expect(bytes).toBeLessThanOrEqual(0.02 * 1024 * 1024);
    }
    expect(rows(db).length).toBeGreaterThan(0);
    expect(rows(db).length).toBeLessThan(20);
    await service.stop();
  });

  it('retention deletes samples older than retentionDays, disputed ones too', async () => {
    let now = 10_000_000;
    const { db, make, lazy } = setup({ retentionDays: 1 }, { now: () => now });
    const service = make();
    await service.start();
    service.offer(result(0), lazy(), 'r0');
    await service.idle();
    service.markDisputed(['r0']);
    now += 2 * 86_400_000;
    service.offer(result(1), lazy(), 'r1');
    await service.idle();
    expect(rows(db).map((row) => row.result_id)).toEqual(['r1']);
    await service.stop();
  });

  it('at start, sweeps temporary files and files without a row, and deletes rows whose file is gone', async () => {
    const { db, evidenceDir, make, lazy } = setup();
    const first = make();
    await first.start();
    for (const seq of [0, 1]) {
      first.offer(result(seq), lazy(), `r${seq}`);
      await first.idle();
    }
    await first.stop();
    const [kept, lost] = rows(db);
    fs.rmSync(path.join(evidenceDir, lost!.file));
    fs.writeFileSync(path.join(evidenceDir, 'orphan.jpg'), 'x');
    fs.writeFileSync(path.join(evidenceDir, 'half.jpg.tmp'), 'x');
    fs.writeFileSync(path.join(evidenceDir, 'README.txt'), 'not ours');
    const second = make();
    await second.start();
    expect(rows(db).map((row) => row.sample_id)).toEqual([kept!.sample_id]);
    expect(fs.readdirSync(evidenceDir).sort()).toEqual(['README.txt', kept!.file].sort());
    expect(second.health().detail).toMatchObject({ swept: 3 });
    await second.stop();
  });

  it('an encoder failure is counted, leaves no file and no row, and the next sample is kept', async () => {
    const { db, dir, events } = setup();
    let fail = true;
    const service = new EvidenceService({
      db: () => openDatabase(path.join(dir, 'agent.db')),
      dir: path.join(dir, 'evidence'),
      config: evidenceSchema.parse({ randomShare: 1 }),
      cropOf: () => [0, 0.5, 1, 0.5],
      recordEvent: (event) => events.push(event),
      random: () => 0,
      encode: async (pic, quality) => {
        if (fail) throw Object.assign(new Error('no memory'), { code: 'ENOMEM' });
        return sharpOf(pic).jpeg({ quality }).toBuffer();
      },
      log: captureLogger().log,
    });
    await service.start();
    service.offer(result(0), () => picture(), 'r0');
    await service.idle();
    expect(service.health()).toMatchObject({ ok: false, detail: { failed: 1, lastError: 'ENOMEM' } });
    fail = false;
    service.offer(result(1), () => picture(), 'r1');
    await service.idle();
    expect(service.health()).toMatchObject({ ok: true, detail: { failed: 1, encoded: 1 } });
    expect(db.prepare('SELECT result_id, crop FROM evidence').all()).toEqual([{ result_id: 'r1', crop: '[0,0.5,1,0.5]' }]);
    await service.stop();
  });
});

describe('evidence quota (plan only)', () => {
  function held(count: number, disputed: (i: number) => boolean, bytes = 1000) {
    const db = openDatabase(path.join(tempDir(), 'agent.db'));
    const writer = new EvidenceWriter(db);
    for (let i = 0; i < count; i++) {
      writer.insert({
        sampleId: `s${i}`,
        resultId: `r${i}`,
        cameraId: 'north',
        modelId: 'm',
        modelVersion: '1',
        capturedAt: 1000 + i,
        reason: i % 2 === 0 ? 'random' : 'low-confidence',
        file: `s${i}.jpg`,
        bytes,
        width: 10,
        height: 10,
        detections: '[]',
        crop: null,
        disputed: disputed(i),
        createdAt: 5000 + i,
      });
    }
    return db;
  }
  const ids = (plan: ReturnType<EvidenceQuota['plan']>) => plan.map((doomed) => `${doomed.sampleId}:${doomed.why}`);

  it('within quota and retention: nothing', () => {
    const db = held(5, () => false);
    expect(new EvidenceQuota(db, { maxBytes: 5000, maxSamples: 5, retentionMs: 1e9 }).plan(6000)).toEqual([]);
  });

  it('over the count: the oldest undisputed, then (a hard bound) the oldest disputed', () => {
    const db = held(6, (i) => i < 3);
    expect(ids(new EvidenceQuota(db, { maxBytes: 1e9, maxSamples: 4, retentionMs: 1e9 }).plan(6000))).toEqual(['s3:quota', 's4:quota']);
    expect(ids(new EvidenceQuota(db, { maxBytes: 1e9, maxSamples: 1, retentionMs: 1e9 }).plan(6000))).toEqual([
      's3:quota',
      's4:quota',
      's5:quota',
      's0:quota',
      's1:quota',
    ]);
  });

  it('over the bytes, likewise; retention first, disputed or not', () => {
    const db = held(6, (i) => i === 0);
    // Created at 5000..5005; retention 3 ms at 5005: s0, s1 (created before 5002) expire.
    expect(ids(new EvidenceQuota(db, { maxBytes: 2500, maxSamples: 100, retentionMs: 3 }).plan(5005))).toEqual(['s0:age', 's1:age', 's2:quota', 's3:quota']);
  });
});
