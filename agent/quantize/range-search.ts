/**
 * Choosing an activation's uint8 range from its histogram: the [lo, hi] that minimises the
 * expected squared error, where values inside the range carry rounding noise (step² / 12) and
 * values outside are clipped. For a conv output that feeds a SiLU, the error is measured
 * after the SiLU: silu is flat below about -4, so clipping there costs almost nothing and a
 * tighter range buys finer steps where the values matter.
 */

export const HISTOGRAM_BINS = 1024;

/**
 * A histogram grown in one pass: each side of zero has HISTOGRAM_BINS bins of one width,
 * doubled (pairs of bins merged) whenever a value falls beyond the last bin. Zero stays a bin
 * edge, and the result depends only on the values and their order, never on timing.
 */
export class Histogram {
  readonly positive = new Float64Array(HISTOGRAM_BINS);
  readonly negative = new Float64Array(HISTOGRAM_BINS);
  positiveWidth = 0;
  negativeWidth = 0;

  add(values: Float32Array): void {
    let low = 0;
    let high = 0;
    for (let i = 0; i < values.length; i++) {
      const value = values[i]!;
      if (value > high) high = value;
      else if (value < low) low = value;
    }
    this.positiveWidth = grow(this.positive, this.positiveWidth, high);
    this.negativeWidth = grow(this.negative, this.negativeWidth, -low);
    const perPositive = this.positiveWidth > 0 ? 1 / this.positiveWidth : 0;
    const perNegative = this.negativeWidth > 0 ? 1 / this.negativeWidth : 0;
    const last = HISTOGRAM_BINS - 1;
    const { positive, negative } = this;
    for (let i = 0; i < values.length; i++) {
      const value = values[i]!;
      if (value >= 0) {
        const bin = Math.min(last, Math.floor(value * perPositive));
        positive[bin] = positive[bin]! + 1;
      } else {
        const bin = Math.min(last, Math.floor(-value * perNegative));
        negative[bin] = negative[bin]! + 1;
      }
    }
  }

  /** Bin centres in ascending order with their counts. */
  bins(): { centres: Float64Array; counts: Float64Array } {
    const centres = new Float64Array(2 * HISTOGRAM_BINS);
    const counts = new Float64Array(2 * HISTOGRAM_BINS);
    for (let i = 0; i < HISTOGRAM_BINS; i++) {
      const n = HISTOGRAM_BINS - 1 - i;
      centres[i] = -(n + 0.5) * this.negativeWidth;
      counts[i] = this.negative[n]!;
      centres[HISTOGRAM_BINS + i] = (i + 0.5) * this.positiveWidth;
      counts[HISTOGRAM_BINS + i] = this.positive[i]!;
    }
    return { centres, counts };
  }

  get min(): number {
    const top = lastNonZero(this.negative);
    return top < 0 ? 0 : -(top + 1) * this.negativeWidth;
  }

  get max(): number {
    const top = lastNonZero(this.positive);
    return top < 0 ? 0 : (top + 1) * this.positiveWidth;
  }
}

function lastNonZero(counts: Float64Array): number {
  for (let i = counts.length - 1; i >= 0; i--) if (counts[i]! > 0) return i;
  return -1;
}

/** Doubles the bin width until `extent` fits, merging bin pairs; the first width covers the first extent seen. */
function grow(counts: Float64Array, width: number, extent: number): number {
  if (extent <= 0) return width;
  if (width === 0) return (extent * 1.0001) / HISTOGRAM_BINS;
  let current = width;
  while (extent >= current * HISTOGRAM_BINS) {
    for (let i = 0; i < HISTOGRAM_BINS / 2; i++) counts[i] = counts[2 * i]! + counts[2 * i + 1]!;
    counts.fill(0, HISTOGRAM_BINS / 2);
    current *= 2;
  }
  return current;
}

export interface QuantParams {
  scale: number;
  zeroPoint: number;
}

export interface RangeChoice extends QuantParams {
  lo: number;
  hi: number;
  /** Expected squared error per value (in the measured domain: after the SiLU when it applies). */
  mse: number;
  /** Signal power per value in the same domain, for the SQNR. */
  power: number;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
const silu = (x: number): number => x * sigmoid(x);
const siluSlope = (x: number): number => {
  const s = sigmoid(x);
  return s * (1 + x * (1 - s));
};

/** uint8 parameters for a range; zero stays exactly representable (padding, ReLU-like zeros). */
export function paramsFor(lo: number, hi: number): QuantParams {
  const low = Math.min(lo, 0);
  const high = Math.max(hi, 0);
  if (high - low < 1e-12) return { scale: 1, zeroPoint: 0 };
  const scale = Math.fround((high - low) / 255);
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-low / scale)));
  return { scale, zeroPoint };
}

/**
 * Prefix sums over the bins of count, count*f, count*f², count*f'² (f: identity or SiLU), so
 * each candidate range costs O(1): the clipped tails are sums of (f(x) - f(edge))², expanded.
 */
export function chooseRange(histogram: Histogram, siluAfter: boolean, upperSteps = 256, lowerSteps = 32): RangeChoice {
  const { centres, counts } = histogram.bins();
  const bins = centres.length;
  const f = siluAfter ? silu : (x: number): number => x;
  const slope2 = siluAfter ? (x: number): number => siluSlope(x) ** 2 : (): number => 1;
  const c = new Float64Array(bins + 1);
  const cf = new Float64Array(bins + 1);
  const cf2 = new Float64Array(bins + 1);
  const cd = new Float64Array(bins + 1);
  for (let i = 0; i < bins; i++) {
    const x = centres[i]!;
    const n = counts[i]!;
    const fx = f(x);
    c[i + 1] = c[i]! + n;
    cf[i + 1] = cf[i]! + n * fx;
    cf2[i + 1] = cf2[i]! + n * fx * fx;
    cd[i + 1] = cd[i]! + n * slope2(x);
  }
  const total = c[bins]!;
  const power = total > 0 ? cf2[bins]! / total : 0;
  const low = histogram.min;
  const high = histogram.max;
  const full = paramsFor(low, high);
  if (total === 0 || high - low <= 0) return { ...full, lo: low, hi: high, mse: 0, power };

  // Sum over bins [from, to) of n * (f(x) - v)^2.
  const tail = (from: number, to: number, v: number): number =>
    to <= from ? 0 : cf2[to]! - cf2[from]! - 2 * v * (cf[to]! - cf[from]!) + v * v * (c[to]! - c[from]!);
  // The first bin whose centre is at or above x (binary search: the bins are not all one width).
  const binOf = (x: number): number => {
    let a = 0;
    let b = bins;
    while (a < b) {
      const m = (a + b) >> 1;
      if (centres[m]! < x) a = m + 1;
      else b = m;
    }
    return a;
  };
  const evaluate = (params: QuantParams): number => {
    const qlo = (0 - params.zeroPoint) * params.scale;
    const qhi = (255 - params.zeroPoint) * params.scale;
    const a = binOf(qlo);
    const b = binOf(qhi);
    const noise = ((params.scale * params.scale) / 12) * (cd[b]! - cd[a]!);
    return (tail(0, a, f(qlo)) + noise + tail(b, bins, f(qhi))) / total;
  };

  let best: RangeChoice = { ...full, lo: low, hi: high, mse: evaluate(full), power };
  for (let j = 0; j < lowerSteps; j++) {
    const candidateLo = low * (1 - j / lowerSteps);
    for (let k = 0; k < upperSteps; k++) {
      const candidateHi = high * (1 - k / upperSteps);
      if (candidateHi - candidateLo <= 0) continue;
      const params = paramsFor(candidateLo, candidateHi);
      const mse = evaluate(params);
      if (mse < best.mse) best = { ...params, lo: candidateLo, hi: candidateHi, mse, power };
    }
  }
  return best;
}

/** Signal-to-quantization-noise ratio in dB; Infinity when there is no noise. */
export function sqnrDb(power: number, noise: number): number {
  if (noise <= 0) return Number.POSITIVE_INFINITY;
  if (power <= 0) return Number.NEGATIVE_INFINITY;
  return 10 * Math.log10(power / noise);
}
