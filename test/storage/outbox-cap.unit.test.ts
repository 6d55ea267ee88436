import { describe, expect, it } from 'vitest';
import { OutboxCapPolicy } from '../../agent/storage/outbox-cap.js';
import { captureLogger } from '../support/capture-log.js';

describe('the outbox cap (injected clock)', () => {
  it('drops beyond the cap after each commit, and reports at most once a minute with the count since the last report', () => {
    let depth = 0;
    let now = 0;
    const reports: Array<[number, number]> = [];
    const outbox = {
      enforceCap: (max: number): number => {
        const excess = Math.max(0, depth - max);
        depth -= excess;
        return excess;
      },
    };
    const cap = new OutboxCapPolicy({
      outbox: () => outbox,
      max: 100,
      report: (dropped, max) => reports.push([dropped, max]),
      now: () => now,
      log: captureLogger().log,
    });
    depth = 90;
    cap.afterCommit();
    expect(reports).toEqual([]);
    depth = 130;
    cap.afterCommit();
    expect(depth).toBe(100);
    expect(reports).toEqual([[30, 100]]);
    // Within the minute: dropped and counted, not reported yet.
    for (const at of [10_000, 30_000, 59_999]) {
      now = at;
      depth += 10;
      cap.afterCommit();
    }
    expect(reports).toEqual([[30, 100]]);
    now = 60_000;
    cap.afterCommit();
    expect(reports).toEqual([
      [30, 100],
      [30, 100],
    ]);
    // A quiet minute: nothing dropped, nothing reported.
    now = 200_000;
    cap.afterCommit();
    expect(reports).toHaveLength(2);
  });
});
