import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { vehicleTypes } from '../../agent/common/vehicle-types.js';
import { calibrateOnFeedback, estimatePrecision, type LabelledScore, UNCALIBRATED } from '../../agent/drift/estimate.js';
import { LoadedModel } from '../../agent/inference/loaded-model.js';
import { resolveModel } from '../../agent/inference/model-files.js';
import type { Vehicle } from '../../agent/inference/result.js';
import { readSourceFrames } from '../../agent/quantize/calibration-source.js';
import { EVALUATION_SETTINGS, frameOf } from '../../agent/quantize/evaluate.js';
import { assetPath, projectRoot } from '../support/assets.js';

function iou(a: readonly number[], b: readonly number[]): number {
  const w = Math.max(0, Math.min(a[0]! + a[2]!, b[0]! + b[2]!) - Math.max(a[0]!, b[0]!));
  const h = Math.max(0, Math.min(a[1]! + a[3]!, b[1]! + b[3]!) - Math.max(a[1]!, b[1]!));
  const inter = w * h;
  return inter / (a[2]! * a[3]! + b[2]! * b[3]! - inter);
}

/** Each int8 vehicle is right when a float vehicle of the same type overlaps it (IoU >= 0.5), one to one. */
function judge(pseudoTruth: Vehicle[], detections: Vehicle[]): LabelledScore[] {
  const used = new Set<number>();
  return [...detections]
    .sort((a, b) => b.score - a.score)
    .map((vehicle) => {
      let best = -1;
      let bestOverlap = 0.5;
      pseudoTruth.forEach((truth, i) => {
        const overlap = iou(truth.box, vehicle.box);
        if (!used.has(i) && truth.type === vehicle.type && overlap >= bestOverlap) {
          best = i;
          bestOverlap = overlap;
        }
      });
      if (best >= 0) used.add(best);
      return { type: vehicle.type, score: vehicle.score, correct: best >= 0 ? 1 : 0 };
    });
}

/**
 * Issue #17: the label-free precision estimate on the highway clip. The float model's vehicles
 * are the pseudo ground truth for the int8 model's (run with a low threshold, so that a real
 * share of its detections is wrong); scores are calibrated on the first half of the clip and the
 * estimate of the second half is compared with its measured precision.
 */
describe('label-free precision estimate (int8 against float pseudo-truth)', () => {
  it('calibrated on one half, the estimate of the other half is within 10 points of its measured precision', async () => {
    const manifests = path.join(projectRoot, 'models', 'manifests');
    const float = await LoadedModel.load(resolveModel(path.join(manifests, 'yolox-nano.json')), EVALUATION_SETTINGS);
    const int8 = await LoadedModel.load(resolveModel(path.join(manifests, 'yolox-nano-int8.json')), { ...EVALUATION_SETTINGS, scoreThreshold: 0.1 });
    try {
      const { frames } = await readSourceFrames({ kind: 'video', file: assetPath('highway-cctv-320x240.mp4'), fps: 10, seconds: 'all' }, float.geometry, 400);
      const judged: LabelledScore[][] = [];
      for (const [seq, data] of frames.entries()) {
        const truth = (await float.infer(frameOf(data, float, seq))).vehicles;
        const found = (await int8.infer(frameOf(data, int8, seq))).vehicles;
        judged.push(judge(truth, found));
      }
      const half = Math.floor(judged.length / 2);
      const calibrationRows = judged.slice(0, half).flat();
      const heldOut = judged.slice(half).flat();
      const calibration = calibrateOnFeedback(calibrationRows, 50);
      expect(calibration).toBeDefined();
      const typeIndex = (type: string): number => (vehicleTypes as readonly string[]).indexOf(type);
      const scores = Float64Array.from(heldOut.map((row) => row.score));
      const types = Uint8Array.from(heldOut.map((row) => typeIndex(row.type)));
      const estimate = estimatePrecision(scores, types, calibration!)!;
      const raw = estimatePrecision(scores, types, UNCALIBRATED)!;
      const measured = heldOut.reduce((sum, row) => sum + row.correct, 0) / heldOut.length;
      const calibratedOn = calibrationRows.reduce((sum, row) => sum + row.correct, 0) / calibrationRows.length;
      console.log(
        `label-free estimate: ${frames.length} frames; calibration half ${calibrationRows.length} detections (precision ${calibratedOn.toFixed(3)}); ` +
          `held-out half ${heldOut.length} detections: measured ${measured.toFixed(3)}, estimated ${estimate.value.toFixed(3)} [${estimate.low.toFixed(3)}-${estimate.high.toFixed(3)}], raw scores would say ${raw.value.toFixed(3)}`,
      );
      expect(heldOut.length).toBeGreaterThan(100);
      expect(measured).toBeLessThan(0.95); // a real share of wrong detections, or the test proves nothing
      expect(Math.abs(estimate.value - measured)).toBeLessThanOrEqual(0.1);
    } finally {
      await float.release();
      await int8.release();
    }
  }, 300_000);
});
