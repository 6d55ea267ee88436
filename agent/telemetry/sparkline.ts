/** Eight block heights, lowest first: one character per time slot. */
export const SPARK_BLOCKS = '▁▂▃▄▅▆▇█';

export interface SeriesPoint {
  at: number;
  value: number | null;
}

/**
 * Averages the points that fall in each of `width` equal time slots of [from, to). A long range
 * then fits a fixed width, and a slot with no sample stays null: the chart shows when the agent
 * was not running instead of closing the gap.
 */
export function resample(points: ReadonlyArray<SeriesPoint>, from: number, to: number, width: number): Array<number | null> {
  const slots = Math.max(1, Math.floor(width));
  const sums = new Array<number>(slots).fill(0);
  const counts = new Array<number>(slots).fill(0);
  const span = to - from;
  if (span <= 0) return new Array<number | null>(slots).fill(null);
  for (const point of points) {
    if (point.value === null || !Number.isFinite(point.value) || point.at < from || point.at >= to) continue;
    const slot = Math.min(slots - 1, Math.floor(((point.at - from) / span) * slots));
    sums[slot]! += point.value;
    counts[slot]! += 1;
  }
  return sums.map((sum, slot) => (counts[slot]! > 0 ? sum / counts[slot]! : null));
}

/**
 * One block per value, scaled between the lowest and highest value of the series (a chart of
 * shape, not of absolute level: the figures beside it give the level). A flat series is drawn
 * at mid height, a missing value as a space.
 */
export function sparkline(values: ReadonlyArray<number | null>): string {
  let low = Infinity;
  let high = -Infinity;
  for (const value of values) {
    if (value === null || !Number.isFinite(value)) continue;
    low = Math.min(low, value);
    high = Math.max(high, value);
  }
  if (low > high) return ' '.repeat(values.length);
  const top = SPARK_BLOCKS.length - 1;
  return values
    .map((value) => {
      if (value === null || !Number.isFinite(value)) return ' ';
      if (high === low) return SPARK_BLOCKS[Math.floor(top / 2)]!;
      return SPARK_BLOCKS[Math.round(((value - low) / (high - low)) * top)]!;
    })
    .join('');
}

/** Resample, then draw: at most `maxWidth` columns, fewer when there are fewer points. */
export function sparklineOf(points: ReadonlyArray<SeriesPoint>, from: number, to: number, maxWidth = 60): string {
  const present = points.filter((point) => point.value !== null).length;
  if (present === 0) return '';
  return sparkline(resample(points, from, to, Math.min(maxWidth, present)));
}
