import type { LoadedModel } from '../inference/loaded-model.js';
import type { ModelManifest } from '../inference/manifest.js';
import { frameOf } from './evaluate.js';

export interface ThresholdCalibration {
  /** The float model's own threshold (its manifest's). */
  floatThreshold: number;
  /** The int8 model's threshold that gives, on the calibration frames, as many detections as float. */
  int8Threshold: number;
  floatDetections: number;
  int8DetectionsAtFloatThreshold: number;
  int8DetectionsAtInt8Threshold: number;
}

const STEP = 0.005;
const MAX_RAISE = 0.1;

/**
 * Quantization noise shifts the scores a little, and near the threshold that turns into extra or
 * missing boxes. On the calibration frames (never the held-out ones) this finds the int8 score
 * threshold whose detection count matches the float model's at its own threshold. Counting at
 * a higher threshold from one run is exact: NMS only lets a higher score suppress a lower one,
 * so dropping the low-score boxes does not change which high-score boxes survive.
 */
export async function calibrateScoreThreshold(
  float: LoadedModel,
  int8: LoadedModel,
  frames: Buffer[],
  floatThreshold: number | undefined,
): Promise<ThresholdCalibration | undefined> {
  if (floatThreshold === undefined) return undefined;
  let floatDetections = 0;
  const int8Scores: number[] = [];
  for (const [seq, data] of frames.entries()) {
    floatDetections += (await float.infer(frameOf(data, float, seq))).vehicles.length;
    for (const vehicle of (await int8.infer(frameOf(data, int8, seq))).vehicles) int8Scores.push(vehicle.score);
  }
  const countAt = (threshold: number): number => int8Scores.filter((score) => score >= threshold).length;
  let best = floatThreshold;
  for (let raise = STEP; raise <= MAX_RAISE + 1e-9; raise += STEP) {
    const candidate = Math.round((floatThreshold + raise) * 1000) / 1000;
    if (Math.abs(countAt(candidate) - floatDetections) < Math.abs(countAt(best) - floatDetections)) best = candidate;
  }
  return {
    floatThreshold,
    int8Threshold: best,
    floatDetections,
    int8DetectionsAtFloatThreshold: int8Scores.length,
    int8DetectionsAtInt8Threshold: countAt(best),
  };
}

/** A detector's score threshold from its manifest; undefined for a classifier (nothing to calibrate). */
export function detectionThreshold(manifest: ModelManifest): number | undefined {
  return 'scoreThreshold' in manifest.output ? manifest.output.scoreThreshold : undefined;
}
