import { vehicleTypes } from '../common/vehicle-types.js';
import { applyIsotonic, fitIsotonic, type IsotonicFit } from './isotonic.js';

/** How the scores of a model version are turned into probabilities of being right. */
export interface Calibration {
  source: 'feedback' | 'manifest' | 'uncalibrated';
  /** Labelled detections the feedback calibration rests on (0 otherwise). */
  labels: number;
  /** Per vehicle type index; types without enough labels use `pooled`. */
  byType: Map<number, IsotonicFit>;
  pooled: IsotonicFit | undefined;
}

export const UNCALIBRATED: Calibration = { source: 'uncalibrated', labels: 0, byType: new Map(), pooled: undefined };

export interface LabelledScore {
  type: string;
  score: number;
  /** 1: the detection was right (vehicle and type); 0: wrong type or not a vehicle. */
  correct: 0 | 1;
}

const TYPE_INDEX = new Map<string, number>(vehicleTypes.map((type, index) => [type, index]));

/**
 * Isotonic calibration of scores on verdicts: per vehicle type where it has `minLabels`,
 * over all types pooled otherwise; undefined when even the pool is too small.
 */
export function calibrateOnFeedback(rows: readonly LabelledScore[], minLabels: number): Calibration | undefined {
  if (rows.length < minLabels) return undefined;
  const byType = new Map<number, IsotonicFit>();
  for (const [type, index] of TYPE_INDEX) {
    const own = rows.filter((row) => row.type === type);
    if (own.length >= minLabels)
      byType.set(
        index,
        fitIsotonic(
          own.map((row) => row.score),
          own.map((row) => row.correct),
        ),
      );
  }
  return {
    source: 'feedback',
    labels: rows.length,
    byType,
    pooled: fitIsotonic(
      rows.map((row) => row.score),
      rows.map((row) => row.correct),
    ),
  };
}

/** A manifest's calibration table: {"all": [[score, p], ...], "byType": {"car": [[score, p], ...]}} as step functions. */
export function calibrationFromTable(table: { all?: Array<[number, number]>; byType?: Record<string, Array<[number, number]>> }): Calibration {
  const toFit = (points: Array<[number, number]>): IsotonicFit => {
    const sorted = [...points].sort((a, b) => a[0] - b[0]);
    return { thresholds: sorted.map((point) => point[0]), values: sorted.map((point) => point[1]), n: sorted.length };
  };
  const byType = new Map<number, IsotonicFit>();
  for (const [type, points] of Object.entries(table.byType ?? {})) {
    const index = TYPE_INDEX.get(type);
    if (index !== undefined && points.length > 0) byType.set(index, toFit(points));
  }
  return { source: 'manifest', labels: 0, byType, pooled: table.all && table.all.length > 0 ? toFit(table.all) : undefined };
}

export interface PrecisionEstimate {
  /** The expected precision: the mean probability that each detection is right. */
  value: number;
  low: number;
  high: number;
  /** Detections it rests on; 0 when uncalibrated (so no alert rule acts on raw scores). */
  n: number;
  detections: number;
  calibration: Calibration['source'];
  calibrationLabels: number;
}

/**
 * Confidence-based performance estimation (as NannyML's CBPE does offline): the expected
 * precision of a window is the mean calibrated probability that each of its detections is right.
 * Its interval is the spread of a sum of independent Bernoulli outcomes with those probabilities
 * (normal approximation, 95 %): the uncertainty of the window's outcome, not of the calibration.
 */
export function estimatePrecision(scores: ArrayLike<number>, types: ArrayLike<number>, calibration: Calibration): PrecisionEstimate | null {
  const n = scores.length;
  if (n === 0) return null;
  let sum = 0;
  let variance = 0;
  for (let i = 0; i < n; i++) {
    const fit = calibration.byType.get(types[i]!) ?? calibration.pooled;
    const p = fit ? applyIsotonic(fit, scores[i]!) : scores[i]!;
    sum += p;
    variance += p * (1 - p);
  }
  const value = sum / n;
  const half = (1.96 * Math.sqrt(variance)) / n;
  const calibrated = calibration.source !== 'uncalibrated';
  return {
    value,
    low: Math.max(0, value - half),
    high: Math.min(1, value + half),
    n: calibrated ? n : 0,
    detections: n,
    calibration: calibration.source,
    calibrationLabels: calibration.labels,
  };
}
