import { describe, expect, it } from 'vitest';
import { backoffDelay, RetryBackoff } from '../../agent/common/backoff.js';

/** The one retry-delay formula (camera restarts, broker reconnects), from test/ingest and test/mqtt. */
describe('backoff', () => {
  it('doubles from the initial delay, stays within [half, full], and is capped (camera restarts)', () => {
    expect(backoffDelay(0, 500, 30_000, () => 1)).toBe(500);
    expect(backoffDelay(0, 500, 30_000, () => 0)).toBe(250);
    expect(backoffDelay(3, 500, 30_000, () => 1)).toBe(4000);
    expect(backoffDelay(20, 500, 30_000, () => 1)).toBe(30_000);
    expect(backoffDelay(20, 500, 30_000, () => 0)).toBe(15_000);
  });

  it('backs off exponentially with jitter within [initial, max], resetting after a stable connection (broker reconnects)', () => {
    // The link's delays never go under reconnectMs (the floor): the low end of the jitter.
    const low = new RetryBackoff(1000, 30_000, 10_000, () => 0, 1000);
    expect(Array.from({ length: 7 }, () => low.next())).toEqual([1000, 1000, 2000, 4000, 8000, 15_000, 15_000]);
    const high = new RetryBackoff(1000, 30_000, 10_000, () => 0.999_999, 1000);
    expect(Array.from({ length: 7 }, () => high.next())).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    for (const delay of [...Array.from({ length: 40 }, () => new RetryBackoff(1000, 30_000, 10_000, Math.random, 1000))].flatMap((backoff) =>
      Array.from({ length: 12 }, () => backoff.next()),
    )) {
      expect(delay).toBeGreaterThanOrEqual(1000);
      expect(delay).toBeLessThanOrEqual(30_000);
    }
    high.succeededFor(5000);
    expect(high.next()).toBe(30_000);
    high.succeededFor(10_000);
    expect(high.next()).toBe(1000);
    expect(high.attempt).toBe(1);
    high.reset();
    expect(high.attempt).toBe(0);
  });
});
