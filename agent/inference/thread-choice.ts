import { performance } from 'node:perf_hooks';

/**
 * How a model runs: onnxruntime threads inside one run, and sessions (each in its own worker
 * thread) running the scheduler's two lanes side by side. Two sessions of one thread keep both
 * cores of a small box inferring while frames queue; one session runs one frame at a time.
 */
export interface RunConfig {
  threads: number;
  sessions: number;
}

/** How fast a model ran in one configuration: the median ms per frame, every session busy. */
export interface ThreadTiming extends RunConfig {
  msPerRun: number;
  runs: number;
}

/** A configuration this close to the fastest one (as a share) counts as fast as it: the lighter one wins. */
export const THREAD_TIE_SHARE = 0.05;

/**
 * The configuration to run a model with, by measurement: each candidate is timed (by `time`,
 * which runs the model on this CPU), and the fastest wins, except that a lighter one (fewer
 * threads in all, then fewer sessions) within THREAD_TIE_SHARE of it is preferred. Fewer
 * threads leave cores to ffmpeg, preprocessing and the other cameras; fewer sessions save
 * memory. On small shared CPUs two threads are often no faster than one (issue #19 measured
 * 70-75 runs/s at one thread and 64-66 at two on a 2-vCPU EPYC), while two one-thread sessions
 * side by side use both cores.
 */
export async function chooseRunConfig(
  candidates: readonly RunConfig[],
  time: (config: RunConfig) => Promise<ThreadTiming>,
): Promise<{ chosen: RunConfig; timings: ThreadTiming[] }> {
  if (candidates.length === 0) throw new Error('chooseRunConfig: no candidate');
  const timings: ThreadTiming[] = [];
  for (const config of candidates) timings.push(await time(config));
  const { threads, sessions } = pickThreads(timings);
  return { chosen: { threads, sessions }, timings };
}

/** The timing to run with among measured ones: the fastest, or a lighter one within THREAD_TIE_SHARE of it. */
export function pickThreads(timings: readonly ThreadTiming[]): ThreadTiming {
  if (timings.length === 0) throw new Error('pickThreads: no timing');
  const fastest = Math.min(...timings.map((timing) => timing.msPerRun));
  const weight = (timing: ThreadTiming): number => timing.threads * timing.sessions * 10 + timing.sessions;
  return timings
    .filter((timing) => timing.msPerRun <= fastest * (1 + THREAD_TIE_SHARE))
    .reduce((best, timing) => (weight(timing) < weight(best) ? timing : best));
}

/**
 * Candidates on a box with `cores` cores: one session at 1 and at 2 threads, and two sessions
 * of one thread (never more threads in all than cores). A number in the config fixes its part.
 */
export function runConfigs(cores: number, fixed: { threads: number | 'auto'; sessions: number | 'auto' } = { threads: 'auto', sessions: 'auto' }): RunConfig[] {
  const all: RunConfig[] =
    cores >= 2
      ? [
          { threads: 1, sessions: 1 },
          { threads: 2, sessions: 1 },
          { threads: 1, sessions: 2 },
        ]
      : [{ threads: 1, sessions: 1 }];
  const fitting = all.filter(
    (config) => (fixed.threads === 'auto' || config.threads === fixed.threads) && (fixed.sessions === 'auto' || config.sessions === fixed.sessions),
  );
  if (fitting.length > 0) return fitting;
  return [{ threads: fixed.threads === 'auto' ? 1 : fixed.threads, sessions: fixed.sessions === 'auto' ? 1 : fixed.sessions }];
}

/**
 * ms per frame of one round with every session busy: one run for one session, `sessions` runs
 * side by side otherwise (the wall time divided by the frames).
 */
export async function timeRound(run: () => Promise<unknown>, sessions: number): Promise<number> {
  const started = performance.now();
  if (sessions === 1) await run();
  else await Promise.all(Array.from({ length: sessions }, run));
  return (performance.now() - started) / sessions;
}

/** "1 thread", "2 threads", "2 sessions of 1 thread". */
export function describeRunConfig(config: RunConfig): string {
  const threads = `${config.threads} thread${config.threads > 1 ? 's' : ''}`;
  return config.sessions > 1 ? `${config.sessions} sessions of ${threads}` : threads;
}

export function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
