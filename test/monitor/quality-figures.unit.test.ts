import { describe, expect, it } from 'vitest';
import { type LabelledRow, windowFigures } from '../../agent/monitor/quality-figures.js';
import { wilson } from '../../agent/monitor/wilson.js';

const round = (value: number | undefined): number | undefined => (value === undefined ? undefined : Math.round(value * 10_000) / 10_000);

describe('Wilson 95 % intervals', () => {
  it('match the textbook values (8 of 10 gives 0.4902-0.9433) and hand-computed ones', () => {
    const cases: Array<[number, number, number, number]> = [
      [8, 10, 0.4902, 0.9433],
      [0, 10, 0, 0.2775],
      [40, 100, 0.3094, 0.498],
      [12, 30, 0.2459, 0.5768],
      [30, 30, 0.8865, 1],
      [3, 7, 0.1582, 0.7495],
    ];
    for (const [successes, n, low, high] of cases) {
      const estimate = wilson(successes, n)!;
      expect([round(estimate.low), round(estimate.high)], `${successes}/${n}`).toEqual([low, high]);
      expect(estimate.value).toBe(successes / n);
      expect(estimate.n).toBe(n);
    }
    expect(wilson(0, 0)).toBeNull();
  });
});

describe('precision, recall and the confusion table from verdicts', () => {
  // 10 car detections: 6 correct, 2 were vans (wrong type), 2 not vehicles; 4 truck detections:
  // 3 correct, 1 a bus; reviewers reported 2 missed cars and 1 missed van.
  const row = (
    verdict: LabelledRow['verdict'],
    predictedType: LabelledRow['predictedType'],
    trueType: LabelledRow['trueType'],
    capturedAt: number,
  ): LabelledRow => ({
    verdict,
    predictedType,
    trueType,
    capturedAt,
  });
  const rows: LabelledRow[] = [
    ...Array.from({ length: 6 }, (_, i) => row('correct', 'car', 'car', 1000 + i)),
    row('wrong-type', 'car', 'van', 1100),
    row('wrong-type', 'car', 'van', 1101),
    row('false-positive', 'car', null, 1102),
    row('false-positive', 'car', null, 1103),
    ...Array.from({ length: 3 }, (_, i) => row('correct', 'truck', 'truck', 1200 + i)),
    row('wrong-type', 'truck', 'bus', 1300),
    row('missed', null, 'car', 900),
    row('missed', null, 'car', 1400),
    row('missed', null, 'van', 1401),
  ];
  const figures = windowFigures(rows);

  it('overall: precision 9/14 (right vehicle and type), detection precision 12/14, recall 9/15, detection recall 12/15', () => {
    expect(figures.overall).toMatchObject({ labelled: 14, correct: 9, wrongType: 3, falsePositive: 2, missed: 3 });
    expect(figures.overall.precision).toMatchObject({ value: 9 / 14, n: 14 });
    expect(figures.overall.detectionPrecision).toMatchObject({ value: 12 / 14, n: 14 });
    // Vehicles there: 9 right + 3 found with the wrong type + 3 missed = 15.
    expect(figures.overall.recall).toMatchObject({ value: 9 / 15, n: 15 });
    expect(figures.overall.detectionRecall).toMatchObject({ value: 12 / 15, n: 15 });
    expect([figures.from, figures.to]).toEqual([900, 1401]);
  });

  it('per type: car precision 6/10, truck 3/4; van recall 0/3 (two found as cars, one missed); car recall 6/8', () => {
    expect(figures.byType.car!.precision).toMatchObject({ value: 6 / 10, n: 10 });
    expect(figures.byType.truck!.precision).toMatchObject({ value: 3 / 4, n: 4 });
    expect(figures.byType.van!.precision).toBeNull();
    expect(figures.byType.van!.recall).toMatchObject({ value: 0, n: 3 });
    expect(figures.byType.van!.detectionRecall).toMatchObject({ value: 2 / 3, n: 3 });
    expect(figures.byType.car!.recall).toMatchObject({ value: 6 / 8, n: 8 });
    expect(figures.byType.bus!.recall).toMatchObject({ value: 0, n: 1 });
    expect(round(figures.byType.car!.precision!.low)).toBe(round(wilson(6, 10)!.low));
  });

  it('the confusion table: predicted type by true type, "none" for false positives, a "missed" row', () => {
    expect(figures.confusion).toEqual({
      car: { car: 6, van: 2, none: 2 },
      truck: { truck: 3, bus: 1 },
      missed: { car: 2, van: 1 },
    });
  });

  it('without any reported miss, recall is unknown (null), not 100 %', () => {
    const noMisses = windowFigures(rows.filter((entry) => entry.verdict !== 'missed'));
    expect(noMisses.overall.recall).toBeNull();
    expect(noMisses.byType.car!.recall).toBeNull();
    expect(noMisses.overall.precision!.value).toBe(9 / 14);
  });

  it('an empty window has no figures', () => {
    const empty = windowFigures([]);
    expect(empty.overall.precision).toBeNull();
    expect(empty.from).toBeNull();
    expect(empty.confusion).toEqual({});
  });
});
