import { jensenShannon, kolmogorovSmirnov, psi } from './tests.js';
import { detectionFeatures, histogramFeatures, inputFeatures, type StatsSnapshot } from './window-stats.js';

export interface DriftThresholds {
  /** PSI at or above which a distribution has shifted (the "major shift" band). */
  psi: number;
  /** KS: both the distance and the p-value must say so (large windows make tiny shifts significant). */
  ksStatistic: number;
  ksPValue: number;
  /** Values each side needs before a feature is compared at all. */
  minValues: number;
  /** Features that must drift together for the window to count as drifted. */
  minFeatures: number;
}

export interface FeatureDrift {
  feature: string;
  kind: 'input' | 'prediction';
  test: 'ks' | 'psi';
  /** KS distance D, or PSI. */
  value: number;
  /** KS only. */
  pValue: number | null;
  /** Histograms only: Jensen-Shannon divergence (bits), reported beside PSI. */
  jensenShannon: number | null;
  referenceValues: number;
  currentValues: number;
  drifted: boolean;
  /** Too few values on one side to compare. */
  insufficient: boolean;
}

export interface WindowDrift {
  features: FeatureDrift[];
  driftedFeatures: number;
  drifted: boolean;
}

const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);

/**
 * One window against the reference: Kolmogorov-Smirnov for the continuous features (per frame:
 * luminance, contrast, sharpness, saturation, dark and blown-out shares; per detection: score,
 * box size), PSI (with Jensen-Shannon beside it) for the distributions (colour, vehicle types,
 * vehicles per frame, box positions). docs/monitoring.md gives the thresholds and why.
 */
export function compareWindows(reference: StatsSnapshot, current: StatsSnapshot, thresholds: DriftThresholds): WindowDrift {
  const features: FeatureDrift[] = [];
  const ks = (feature: string, kind: FeatureDrift['kind'], a: number[], b: number[]): void => {
    const insufficient = a.length < thresholds.minValues || b.length < thresholds.minValues;
    const result = insufficient ? { statistic: 0, pValue: 1 } : kolmogorovSmirnov(a, b);
    features.push({
      feature,
      kind,
      test: 'ks',
      value: round(result.statistic),
      pValue: result.pValue,
      jensenShannon: null,
      referenceValues: a.length,
      currentValues: b.length,
      drifted: !insufficient && result.statistic >= thresholds.ksStatistic && result.pValue < thresholds.ksPValue,
      insufficient,
    });
  };
  for (const feature of inputFeatures) ks(feature, 'input', reference.input[feature], current.input[feature]);
  for (const feature of detectionFeatures) ks(feature, 'prediction', reference.detection[feature], current.detection[feature]);
  for (const feature of histogramFeatures) {
    const a = reference.histograms[feature];
    const b = current.histograms[feature];
    // For the colour histogram the unit is the sampled frame, not the pixel.
    const values = (counts: number[]): number => (feature === 'colour' ? Math.round(sum(counts) / 3 / 1000) : sum(counts));
    const insufficient = sum(a) === 0 || sum(b) === 0 || (feature !== 'colour' && (values(a) < thresholds.minValues || values(b) < thresholds.minValues));
    const value = insufficient ? 0 : psi(a, b);
    features.push({
      feature,
      kind: feature === 'colour' ? 'input' : 'prediction',
      test: 'psi',
      value: round(value),
      pValue: null,
      jensenShannon: insufficient ? null : round(jensenShannon(a, b)),
      referenceValues: values(a),
      currentValues: values(b),
      drifted: !insufficient && value >= thresholds.psi,
      insufficient,
    });
  }
  const driftedFeatures = features.filter((entry) => entry.drifted).length;
  return { features, driftedFeatures, drifted: driftedFeatures >= thresholds.minFeatures };
}

const round = (value: number): number => Math.round(value * 10_000) / 10_000;
