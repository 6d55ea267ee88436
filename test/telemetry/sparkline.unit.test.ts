import { describe, expect, it } from 'vitest';
import { SPARK_BLOCKS, resample, sparkline, sparklineOf } from '../../agent/telemetry/sparkline.js';

describe('sparkline', () => {
  it('scales between the lowest and highest value, one block per value', () => {
    expect(sparkline([0, 1, 2, 3, 4, 5, 6, 7])).toBe(SPARK_BLOCKS);
    expect(sparkline([10, 20])).toBe('▁█');
  });

  it('draws a flat series at mid height and a missing value as a space', () => {
    expect(sparkline([5, 5, 5])).toBe('▄▄▄');
    expect(sparkline([1, null, 3])).toBe('▁ █');
    expect(sparkline([null, null])).toBe('  ');
    expect(sparkline([Number.NaN, 2])).toBe(' ▄');
  });

  it('averages the points of each time slot and leaves slots without a point empty', () => {
    const points = [
      { at: 0, value: 1 },
      { at: 10, value: 3 }, // slot 0: mean 2
      { at: 25, value: 10 }, // slot 1
      // slot 2 (40..60) has nothing: the agent was down
      { at: 70, value: 4 },
      { at: 79, value: null }, // slot 3: the null is ignored
    ];
    expect(resample(points, 0, 80, 4)).toEqual([2, 10, null, 4]);
    expect(resample(points, 0, 80, 1)).toEqual([18 / 4]);
    // Points outside [from, to) are left out.
    expect(
      resample(
        [
          { at: -1, value: 9 },
          { at: 80, value: 9 },
        ],
        0,
        80,
        2,
      ),
    ).toEqual([null, null]);
  });

  it('fits a long series into at most the width, and a short one into fewer columns', () => {
    const long = Array.from({ length: 10_000 }, (_, index) => ({ at: index, value: Math.sin(index / 500) }));
    const line = sparklineOf(long, 0, 10_000, 60);
    expect([...line]).toHaveLength(60);
    expect(line).toContain('█');
    expect(line).toContain('▁');
    expect([
      ...sparklineOf(
        [
          { at: 0, value: 1 },
          { at: 5, value: 2 },
        ],
        0,
        10,
        60,
      ),
    ]).toHaveLength(2);
    expect(sparklineOf([{ at: 0, value: null }], 0, 10)).toBe('');
  });
});
