import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { evidenceCommand } from '../../agent/cli/evidence-command.js';
import { evidenceSchema } from '../../agent/config/monitor-schema.js';
import { EvidenceService } from '../../agent/evidence/evidence-service.js';
import type { InferenceResult, Vehicle } from '../../agent/inference/result.js';
import { openDatabase, type Db } from '../../agent/storage/database.js';
import { captureLogger } from '../support/capture-log.js';
import { checkCoco } from '../support/coco.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-evidence-export-');

const vehicle = (type: Vehicle['type'], score: number, box: Vehicle['box']): Vehicle => ({ type, label: type, score, box });

function result(cameraId: string, seq: number, vehicles: Vehicle[]): InferenceResult {
  return { cameraId, seq, capturedAt: 1_700_000_000_000 + seq, model: { id: 'm', version: '1' }, task: 'detection', vehicles, inferenceMs: 5 };
}

function feedback(db: Db, id: string, resultId: string, detection: number | null, verdict: string, trueType: string | null, box: string | null = null): void {
  db.prepare(
    `INSERT INTO feedback (feedback_id, received_at, source, result_id, camera_id, model_id, model_version, captured_at, detection_index, verdict, predicted_type, score, true_type, box)
     VALUES (?, 0, 'test', ?, 'north', 'm', '1', 0, ?, ?, NULL, NULL, ?, ?)`,
  ).run(id, resultId, detection, verdict, trueType, box);
}

/** Three samples as the agent keeps them (100x50 pictures), and reviewers' verdicts on the first. */
async function heldEvidence(): Promise<{ dir: string; db: Db }> {
  const dir = tempDir();
  const db = openDatabase(path.join(dir, 'agent.db'));
  const service = new EvidenceService({
    db: () => db,
    dir: path.join(dir, 'evidence'),
    config: evidenceSchema.parse({ randomShare: 1 }),
    cropOf: (cameraId) => (cameraId === 'roi' ? [0, 0.5, 1, 0.5] : null),
    recordEvent: () => undefined,
    random: () => 0,
    log: captureLogger().log,
  });
  await service.start();
  const picture = () => ({ kind: 'rgb' as const, width: 100, height: 50, channels: 3 as const, data: new Uint8Array(100 * 50 * 3).fill(128) });
  const frames: Array<[InferenceResult, string]> = [
    [result('north', 1, [vehicle('car', 0.9, [0.1, 0.2, 0.3, 0.4]), vehicle('truck', 0.4, [0.6, 0.1, 0.2, 0.3])]), 'rA'],
    [result('north', 2, [vehicle('car', 0.8, [0.1, 0.2, 0.3, 0.4])]), 'rB'],
    [result('roi', 3, [vehicle('car', 0.7, [0.2, 0.6, 0.2, 0.2])]), 'rC'],
  ];
  for (const [frame, id] of frames) {
    service.offer(frame, picture, id);
    await service.idle();
  }
  await service.stop();
  feedback(db, 'f1', 'rA', 0, 'false-positive', null);
  feedback(db, 'f2', 'rA', 1, 'wrong-type', 'bus');
  feedback(db, 'f3', 'rA', null, 'missed', 'van', '[0.5,0.5,0.2,0.2]');
  feedback(db, 'f4', 'rA', null, 'missed', 'car');
  return { dir, db };
}

function cli() {
  const text = { out: '', err: '' };
  const sink = (key: 'out' | 'err') =>
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        text[key] += chunk.toString();
        callback();
      },
    });
  return { io: { out: sink('out'), err: sink('err'), env: {} }, text };
}

describe('evidence export (cctv-agent evidence export, read-only)', () => {
  it('COCO: passes the structure check; feedback applied (false positive removed, wrong type retyped, a miss added); boxes in the JPEG pixels, ROI crop honoured', async () => {
    const { dir, db } = await heldEvidence();
    db.close();
    const out = path.join(dir, 'coco');
    const { io, text } = cli();
    expect(await evidenceCommand(['export', out, '--format', 'coco', '--data-dir', dir], io)).toBe(0);
    expect(text.out).toContain('3 images, 4 boxes (1 images reviewed)');
    expect(text.out).toContain('1 reported misses had no box');
    const coco = checkCoco(out);
    expect(coco.images).toHaveLength(3);
    const byResult = new Map(coco.images.map((image) => [(image as unknown as { result_id: string }).result_id, image.id]));
    const category = new Map(coco.categories.map((entry) => [entry.id, entry.name]));
    const boxes = (resultId: string) =>
      coco.annotations
        .filter((annotation) => annotation.image_id === byResult.get(resultId))
        .map((annotation) => [category.get(annotation.category_id), ...annotation.bbox]);
    expect(boxes('rA')).toEqual([
      ['bus', 60, 5, 20, 15],
      ['van', 50, 25, 20, 10],
    ]);
    expect(boxes('rB')).toEqual([['car', 10, 10, 30, 20]]);
    expect(boxes('rC')).toEqual([['car', 20, 10, 20, 20]]);
    for (const image of coco.images) {
      const meta = await sharp(path.join(out, image.file_name)).metadata();
      expect([meta.width, meta.height]).toEqual([image.width, image.height]);
    }
  });

  it('YOLO: one label file per image, class and normalised centre boxes, data.yaml naming the classes', async () => {
    const { dir } = await heldEvidence();
    const out = path.join(dir, 'yolo');
    const { io } = cli();
    expect(await evidenceCommand(['export', out, '--format', 'yolo', '--data-dir', dir], io)).toBe(0);
    const labels = fs.readdirSync(path.join(out, 'labels'));
    expect(labels).toHaveLength(3);
    expect(
      fs
        .readdirSync(path.join(out, 'images'))
        .map((name) => name.replace('.jpg', '.txt'))
        .sort(),
    ).toEqual(labels.sort());
    const lines = labels.flatMap((name) =>
      fs
        .readFileSync(path.join(out, 'labels', name), 'utf8')
        .trim()
        .split('\n'),
    );
    // bus (class 3) at x 60..80 of 100, y 5..20 of 50.
    expect(lines).toContain('3 0.700000 0.250000 0.200000 0.300000');
    expect(fs.readFileSync(path.join(out, 'data.yaml'), 'utf8')).toMatch(/names:\n {2}0: car\n {2}1: van\n/);
  });

  it('list: the samples with their reason and the unbiased range; --json; an unknown format is a usage error', async () => {
    const { dir } = await heldEvidence();
    const { io, text } = cli();
    expect(await evidenceCommand(['list', '--data-dir', dir, '--json'], io)).toBe(0);
    const listed = JSON.parse(text.out) as { totals: { samples: number }; samples: Array<{ resultId: string; reason: string }>; randomCompleteSince: string };
    expect(listed.totals.samples).toBe(3);
    expect(listed.samples.map((sample) => [sample.resultId, sample.reason])).toEqual([
      ['rA', 'random'],
      ['rB', 'random'],
      ['rC', 'random'],
    ]);
    expect(listed.randomCompleteSince).not.toBeNull();
    const bad = cli();
    expect(await evidenceCommand(['export', path.join(dir, 'x'), '--format', 'voc', '--data-dir', dir], bad.io)).toBe(2);
    expect(bad.text.err).toContain('USAGE');
  });
});
