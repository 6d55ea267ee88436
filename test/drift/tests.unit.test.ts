import { describe, expect, it } from 'vitest';
import { applyIsotonic, fitIsotonic } from '../../agent/drift/isotonic.js';
import { jensenShannon, kolmogorovSmirnov, psi } from '../../agent/drift/tests.js';

/** Reference values from scipy 1.17 / numpy (the script is in the test's comments). */
describe('drift tests against hand and reference values', () => {
  it('PSI: hand-computed on [10,20,30,40] vs [20,20,30,30] = 0.0981; 0 for equal shares; empty bins smoothed, finite', () => {
    // sum((q - p) ln(q/p)) with p = .1 .2 .3 .4, q = .2 .2 .3 .3: .1 ln 2 + .1 ln(4/3) = 0.098083
    expect(psi([10, 20, 30, 40], [20, 20, 30, 30], 0)).toBeCloseTo(0.0980829253, 9);
    expect(psi([1, 2, 3], [10, 20, 30])).toBeCloseTo(0, 12);
    const withEmpty = psi([50, 50, 0], [0, 50, 50]);
    expect(Number.isFinite(withEmpty)).toBe(true);
    expect(withEmpty).toBeGreaterThan(1); // a whole bin moved: far past the 0.25 "major shift" band
  });

  it('Jensen-Shannon in bits: 0.0174258 (scipy jensenshannon(p, q, base=2) ** 2), 1 for disjoint, symmetric', () => {
    expect(jensenShannon([10, 20, 30, 40], [20, 20, 30, 30])).toBeCloseTo(0.017425777279838593, 12);
    expect(jensenShannon([1, 0], [0, 1])).toBeCloseTo(1, 12);
    expect(jensenShannon([3, 1, 0], [1, 1, 2])).toBeCloseTo(jensenShannon([1, 1, 2], [3, 1, 0]), 12);
  });

  it('Kolmogorov-Smirnov: D and the asymptotic p-value match scipy (ks_2samp statistic, kstwobign.sf)', () => {
    const small = kolmogorovSmirnov([0.1, 0.4, 0.7, 1.2, 1.5, 2.0, 2.2, 3.1], [0.5, 0.9, 1.1, 1.8, 2.5, 2.9, 3.3, 3.8, 4.0, 4.4]);
    expect(small.statistic).toBeCloseTo(0.475, 12);
    expect(small.pValue).toBeCloseTo(0.2685148591228448, 8);
    // x_i = frac(0.618034 i) * 2 (500 values), y_j = frac(0.414214 j) * 2 + 0.3 (400 values).
    const x = Array.from({ length: 500 }, (_, i) => ((i * 0.618034) % 1) * 2);
    const y = Array.from({ length: 400 }, (_, j) => ((j * 0.414214) % 1) * 2 + 0.3);
    const big = kolmogorovSmirnov(x, y);
    expect(big.statistic).toBeCloseTo(0.15350000000000003, 10);
    expect(big.pValue / 5.663043873058345e-5).toBeCloseTo(1, 6);
    expect(kolmogorovSmirnov(x, x)).toMatchObject({ statistic: 0, pValue: 1 });
  });

  it('isotonic regression (pool-adjacent-violators) equals scipy.optimize.isotonic_regression on hand data', () => {
    const scores = [0.3, 0.35, 0.4, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 0.95];
    const outcomes = [0, 1, 0, 0, 1, 1, 0, 1, 1, 1];
    const fit = fitIsotonic(scores, outcomes);
    const fitted = scores.map((score) => applyIsotonic(fit, score));
    const expected = [0, 1 / 3, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 1, 1, 1];
    for (const [i, value] of fitted.entries()) expect(value).toBeCloseTo(expected[i]!, 12);
    // Between and beyond the fitted scores: the step function (non-decreasing).
    expect(applyIsotonic(fit, 0.2)).toBe(0);
    expect(applyIsotonic(fit, 0.99)).toBe(1);
    expect(applyIsotonic(fit, 0.52)).toBeCloseTo(2 / 3, 12);
  });
});
