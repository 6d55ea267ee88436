/** A proportion with its 95 % Wilson score interval. */
export interface Estimate {
  /** successes / n */
  value: number;
  low: number;
  high: number;
  /** The number of trials it rests on. */
  n: number;
}

const Z95 = 1.959963984540054;

/**
 * The Wilson score interval (Wilson 1927) for `successes` out of `n`: unlike the normal
 * approximation it stays inside [0, 1] and keeps a sensible width at small n and at 0 % or
 * 100 %, which is where a monitor on a few dozen labels lives. Undefined for n = 0.
 */
export function wilson(successes: number, n: number, z = Z95): Estimate | null {
  if (n <= 0) return null;
  const p = successes / n;
  const z2 = z * z;
  const denominator = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denominator;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denominator;
  return { value: p, low: Math.max(0, centre - half), high: Math.min(1, centre + half), n };
}
