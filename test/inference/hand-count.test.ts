import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runModelOnImages } from '../../agent/cli/model-run-command.js';
import type { ModelRunOutput } from '../../agent/cli/model-run-output.js';
import { inferenceSchema } from '../../agent/config/schema.js';
import { cpuInt8Features, describeCpuInt8 } from '../../agent/inference/cpu-features.js';
import { resolveConfiguredModel, resolveModel } from '../../agent/inference/model-files.js';
import { bundledFfmpegPath } from '../../agent/ingest/ffmpeg-binary.js';
import { manifestsDir } from '../../agent/paths.js';
import { iou } from '../../agent/quantize/evaluate.js';
import { assetPath } from '../support/assets.js';

/**
 * Issue #13: the default int8 model against vehicles counted by eye in 12 frames of the
 * catalog's highway clip (test/fixtures/highway-hand-count.md says how they were counted).
 */
interface HandVehicle {
  type: string;
  box: [number, number, number, number];
  small?: boolean;
}
interface HandFrame {
  t: number;
  vehicles: HandVehicle[];
  count: number;
  countAll: number;
}
const fixture = JSON.parse(fs.readFileSync(new URL('../fixtures/highway-hand-count.json', import.meta.url), 'utf8')) as { frames: HandFrame[] };
const assetsDir = path.dirname(assetPath('yolox-nano.onnx'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-hand-count-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface FrameScore {
  t: number;
  hand: number;
  model: number;
  truePositives: number;
  falsePositives: number;
  missed: number;
  crossTypeDuplicates: number;
}

/**
 * Greedy matching of detections (best score first) to hand boxes at IoU >= 0.3 (the hand boxes
 * are estimated to about 0.01-0.02 of the picture, a third of a small car). A detection on a
 * vehicle flagged small is neither credited nor blamed, and does not count; a missed vehicle is
 * one not flagged small.
 */
function score(frame: HandFrame, vehicles: ModelRunOutput['images'][number]['vehicles']): FrameScore {
  const used = new Set<number>();
  let truePositives = 0;
  let falsePositives = 0;
  let onSmall = 0;
  for (const vehicle of [...vehicles].sort((a, b) => b.score - a.score)) {
    let best = -1;
    let bestIou = 0.3;
    frame.vehicles.forEach((hand, index) => {
      if (used.has(index)) return;
      const overlap = iou(vehicle.box, hand.box);
      if (overlap >= bestIou) {
        best = index;
        bestIou = overlap;
      }
    });
    if (best < 0) falsePositives++;
    else if (frame.vehicles[best]!.small) onSmall++;
    else truePositives++;
    if (best >= 0) used.add(best);
  }
  const missed = frame.vehicles.filter((hand, index) => !hand.small && !used.has(index)).length;
  let crossTypeDuplicates = 0;
  vehicles.forEach((a, i) => {
    for (const b of vehicles.slice(i + 1)) if (a.type !== b.type && iou(a.box, b.box) > 0.7) crossTypeDuplicates++;
  });
  return { t: frame.t, hand: frame.count, model: vehicles.length - onSmall, truePositives, falsePositives, missed, crossTypeDuplicates };
}

describe('detections against vehicles counted by eye (12 frames of the highway clip)', () => {
  let images: string[];
  const settings = inferenceSchema.parse(undefined);
  beforeAll(() => {
    // Extracted as the fixture says: input seek, first frame at or after t.
    images = fixture.frames.map((frame) => {
      const file = path.join(dir, `t${frame.t.toFixed(1)}.png`);
      execFileSync(bundledFfmpegPath(), [
        '-hide_banner',
        '-loglevel',
        'error',
        '-ss',
        String(frame.t),
        '-i',
        assetPath('highway-cctv-320x240.mp4'),
        '-frames:v',
        '1',
        '-y',
        file,
      ]);
      return file;
    });
  });

  it('the default int8 model: no cross-type duplicate, count within 1 of the hand count on most frames, precision and recall reported', async () => {
    const model = resolveConfiguredModel('auto', assetsDir);
    const output = await runModelOnImages(images, { model, inference: settings, ffmpegPath: undefined });
    const scores = output.images.map((image, index) => score(fixture.frames[index]!, image.vehicles));
    const sum = (key: keyof FrameScore): number => scores.reduce((total, entry) => total + entry[key], 0);
    const precision = sum('truePositives') / (sum('truePositives') + sum('falsePositives'));
    const recall = sum('truePositives') / (sum('truePositives') + sum('missed'));
    const within = scores.filter((entry) => Math.abs(entry.model - entry.hand) <= 1);
    console.log(
      `${model.manifest.id} on ${describeCpuInt8()} (${cpuInt8Features().int8Path})\n` +
        scores
          .map(
            (entry) =>
              `t=${entry.t}: hand ${entry.hand}, model ${entry.model} (true ${entry.truePositives}, false ${entry.falsePositives}, missed ${entry.missed}), cross-type duplicates ${entry.crossTypeDuplicates}`,
          )
          .join('\n') +
        `\nprecision ${precision.toFixed(3)}, recall ${recall.toFixed(3)}; count within 1 on ${within.length} of ${scores.length} frames`,
    );
    expect(model.manifest.id).toMatch(/^yolox-nano-int8/);
    // One vehicle, one detection: no two vehicles of different types on one box, in any frame.
    expect(sum('crossTypeDuplicates')).toBe(0);
    // What this model reaches on this clip (docs/benchmarks/detection-accuracy.md): it misses
    // vehicles half under the burned-in captions and scores a dark van and a white car at 0.24-0.27,
    // and takes a gantry sign for a bus. The floors hold with margin on AVX2 and VNNI CPUs.
    expect(within.length).toBeGreaterThanOrEqual(8);
    expect(precision).toBeGreaterThanOrEqual(0.8);
    expect(recall).toBeGreaterThanOrEqual(0.72);
  }, 120_000);

  it('per-class suppression (the old rule) puts cross-type duplicates on the same frames; class-agnostic removes them', async () => {
    const floatManifest = resolveModel(path.join(manifestsDir(), 'yolox-nano.json'), assetsDir);
    const perClass = {
      ...floatManifest,
      manifest: { ...floatManifest.manifest, output: { ...floatManifest.manifest.output, nms: 'per-class' as const } },
    } as typeof floatManifest;
    const before = await runModelOnImages(images, { model: perClass, inference: settings, ffmpegPath: undefined });
    const after = await runModelOnImages(images, { model: floatManifest, inference: settings, ffmpegPath: undefined });
    const duplicates = (output: ModelRunOutput): number =>
      output.images.reduce((total, image, index) => total + score(fixture.frames[index]!, image.vehicles).crossTypeDuplicates, 0);
    const detections = (output: ModelRunOutput): number => output.images.reduce((total, image) => total + image.vehicles.length, 0);
    console.log(
      `float model, 12 frames: per-class ${detections(before)} detections with ${duplicates(before)} cross-type duplicate pairs; class-agnostic ${detections(after)} with ${duplicates(after)}`,
    );
    expect(duplicates(after)).toBe(0);
    expect(detections(after)).toBeLessThanOrEqual(detections(before));
  }, 120_000);
});
