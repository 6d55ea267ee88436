/** How fast a model ran at one intra-op thread count: the median of timed runs. */
export interface ThreadTiming {
  threads: number;
  msPerRun: number;
  runs: number;
}

/** A thread count this close to the fastest one (as a share) counts as fast as it: fewer threads win. */
export const THREAD_TIE_SHARE = 0.05;

/**
 * The intra-op thread count to run a model with, by measurement: each candidate is timed (by
 * `time`, which runs the model on this CPU), and the fastest wins, except that a count with
 * fewer threads within THREAD_TIE_SHARE of it is preferred. Fewer threads leave cores to ffmpeg,
 * preprocessing and the other cameras, and on small shared CPUs two threads are often no faster
 * than one (issue #19 measured 70-75 runs/s at one thread and 64-66 at two on a 2-vCPU EPYC).
 */
export async function chooseIntraOpThreads(
  candidates: readonly number[],
  time: (threads: number) => Promise<ThreadTiming>,
): Promise<{ chosen: number; timings: ThreadTiming[] }> {
  if (candidates.length === 0) throw new Error('chooseIntraOpThreads: no candidate');
  const timings: ThreadTiming[] = [];
  for (const threads of candidates) timings.push(await time(threads));
  return { chosen: pickThreads(timings).threads, timings };
}

/** The timing to run with among measured ones: the fastest, or fewer threads within THREAD_TIE_SHARE of it. */
export function pickThreads(timings: readonly ThreadTiming[]): ThreadTiming {
  if (timings.length === 0) throw new Error('pickThreads: no timing');
  const fastest = Math.min(...timings.map((timing) => timing.msPerRun));
  return timings
    .filter((timing) => timing.msPerRun <= fastest * (1 + THREAD_TIE_SHARE))
    .reduce((best, timing) => (timing.threads < best.threads ? timing : best));
}

/** Candidates: 1 and 2 threads, never more than the cores this process may use. */
export function threadCandidates(cores: number): number[] {
  return cores >= 2 ? [1, 2] : [1];
}

export function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
