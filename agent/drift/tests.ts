/**
 * The drift tests, on histograms (counts per bin) and on samples of continuous values. Pure
 * functions; test/drift/tests.unit.test.ts checks them against values computed by hand and by
 * the textbook formulas.
 */

/** Smoothing added to every bin's share, so an empty bin on one side does not make PSI infinite. */
export const PSI_EPSILON = 1e-4;

function shares(counts: ArrayLike<number>, epsilon: number): number[] {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  const out: number[] = [];
  for (let i = 0; i < counts.length; i++) out.push(total > 0 ? counts[i]! / total : 0);
  if (epsilon === 0) return out;
  // Every bin gets at least epsilon, then the shares are normalised again.
  const smoothed = out.map((share) => Math.max(share, epsilon));
  const sum = smoothed.reduce((a, b) => a + b, 0);
  return smoothed.map((share) => share / sum);
}

/**
 * Population Stability Index: sum over bins of (actual - expected) x ln(actual / expected),
 * on shares with empty bins smoothed to PSI_EPSILON. 0 for identical distributions.
 */
export function psi(reference: ArrayLike<number>, current: ArrayLike<number>, epsilon = PSI_EPSILON): number {
  if (reference.length !== current.length) throw new Error(`psi: ${reference.length} bins against ${current.length}`);
  const expected = shares(reference, epsilon);
  const actual = shares(current, epsilon);
  let sum = 0;
  for (let i = 0; i < expected.length; i++) sum += (actual[i]! - expected[i]!) * Math.log(actual[i]! / expected[i]!);
  return sum;
}

/**
 * Jensen-Shannon divergence in bits (log base 2): bounded by [0, 1], symmetric, finite with
 * empty bins (no smoothing needed). Its square root is the Jensen-Shannon distance.
 */
export function jensenShannon(reference: ArrayLike<number>, current: ArrayLike<number>): number {
  if (reference.length !== current.length) throw new Error(`jensenShannon: ${reference.length} bins against ${current.length}`);
  const p = shares(reference, 0);
  const q = shares(current, 0);
  let sum = 0;
  for (let i = 0; i < p.length; i++) {
    const m = (p[i]! + q[i]!) / 2;
    if (p[i]! > 0) sum += 0.5 * p[i]! * Math.log2(p[i]! / m);
    if (q[i]! > 0) sum += 0.5 * q[i]! * Math.log2(q[i]! / m);
  }
  return Math.max(0, sum);
}

export interface KsResult {
  /** The largest distance between the two empirical distribution functions. */
  statistic: number;
  /** Two-sided p-value from the asymptotic Kolmogorov distribution (scipy.stats.kstwobign.sf(sqrt(nm/(n+m)) D)); good for the hundreds of values a window holds. */
  pValue: number;
  n: number;
  m: number;
}

/** The Kolmogorov distribution's survival function Q(λ) = 2 Σ (-1)^(k-1) e^(-2 k² λ²). */
function kolmogorovQ(lambda: number): number {
  if (lambda < 0.2) return 1;
  let sum = 0;
  for (let k = 1; k <= 100; k++) {
    const term = (k % 2 === 1 ? 1 : -1) * Math.exp(-2 * k * k * lambda * lambda);
    sum += term;
    if (Math.abs(term) < 1e-12) break;
  }
  return Math.min(1, Math.max(0, 2 * sum));
}

/** Two-sample Kolmogorov-Smirnov test. Sorts copies of the samples (never per frame: per window). */
export function kolmogorovSmirnov(reference: ArrayLike<number>, current: ArrayLike<number>): KsResult {
  const a = Float64Array.from(reference).sort();
  const b = Float64Array.from(current).sort();
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0) return { statistic: 0, pValue: 1, n, m };
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < n && j < m) {
    const x = Math.min(a[i]!, b[j]!);
    while (i < n && a[i]! <= x) i++;
    while (j < m && b[j]! <= x) j++;
    d = Math.max(d, Math.abs(i / n - j / m));
  }
  const effective = Math.sqrt((n * m) / (n + m));
  const pValue = kolmogorovQ(effective * d);
  return { statistic: d, pValue, n, m };
}
