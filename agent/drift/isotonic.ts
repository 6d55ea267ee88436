/**
 * Isotonic regression by pool-adjacent-violators (Ayer et al. 1955; the calibration of Zadrozny
 * and Elkan 2002): the non-decreasing step function of the score that best fits 0/1 outcomes
 * in squared error. Fitted once per calibration (not per frame); applied per detection.
 */
export interface IsotonicFit {
  /** Upper score of each block, ascending. */
  thresholds: number[];
  /** The calibrated probability of each block. */
  values: number[];
  /** How many outcomes it rests on. */
  n: number;
}

export function fitIsotonic(scores: ArrayLike<number>, outcomes: ArrayLike<number>): IsotonicFit {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((x, y) => scores[x]! - scores[y]!);
  // Blocks of pooled points: sum of outcomes, weight, and the highest score in the block.
  const sums: number[] = [];
  const weights: number[] = [];
  const upper: number[] = [];
  for (const index of order) {
    sums.push(outcomes[index]!);
    weights.push(1);
    upper.push(scores[index]!);
    // Pool while the last block's mean is below the one before it (a violation).
    while (sums.length > 1 && sums[sums.length - 2]! / weights[weights.length - 2]! > sums[sums.length - 1]! / weights[weights.length - 1]!) {
      const sum = sums.pop()!;
      const weight = weights.pop()!;
      const top = upper.pop()!;
      sums[sums.length - 1]! += sum;
      weights[weights.length - 1]! += weight;
      upper[upper.length - 1] = top;
    }
  }
  return { thresholds: upper, values: sums.map((sum, i) => sum / weights[i]!), n: scores.length };
}

/** The calibrated probability of a score: the value of the first block whose upper score reaches it. */
export function applyIsotonic(fit: IsotonicFit, score: number): number {
  const { thresholds, values } = fit;
  if (thresholds.length === 0) return score;
  let lo = 0;
  let hi = thresholds.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (thresholds[mid]! >= score) hi = mid;
    else lo = mid + 1;
  }
  return values[lo]!;
}
