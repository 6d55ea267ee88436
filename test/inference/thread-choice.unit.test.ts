import { describe, expect, it } from 'vitest';
import { chooseIntraOpThreads, medianOf, threadCandidates } from '../../agent/inference/thread-choice.js';

/** A fake timing source: the figures a CPU would give, no model run. */
const timed = (msByThreads: Record<number, number>) => async (threads: number) => ({ threads, msPerRun: msByThreads[threads]!, runs: 12 });

describe('intra-op thread count by measurement', () => {
  it('picks the faster count: one thread when two are slower (a small shared CPU), two when they pay', async () => {
    expect((await chooseIntraOpThreads([1, 2], timed({ 1: 14, 2: 15.5 }))).chosen).toBe(1);
    expect((await chooseIntraOpThreads([1, 2], timed({ 1: 40, 2: 24 }))).chosen).toBe(2);
  });

  it('within 5 % of the fastest, fewer threads win (a core left to ffmpeg and the other cameras)', async () => {
    const choice = await chooseIntraOpThreads([1, 2], timed({ 1: 20.8, 2: 20 }));
    expect(choice.chosen).toBe(1);
    expect(choice.timings).toEqual([
      { threads: 1, msPerRun: 20.8, runs: 12 },
      { threads: 2, msPerRun: 20, runs: 12 },
    ]);
    expect((await chooseIntraOpThreads([1, 2], timed({ 1: 21.5, 2: 20 }))).chosen).toBe(2);
  });

  it('candidates follow the cores; medians of timings', () => {
    expect(threadCandidates(1)).toEqual([1]);
    expect(threadCandidates(2)).toEqual([1, 2]);
    expect(threadCandidates(16)).toEqual([1, 2]);
    expect(medianOf([5, 1, 3])).toBe(3);
    expect(medianOf([4, 1, 3, 2])).toBe(2.5);
  });
});
