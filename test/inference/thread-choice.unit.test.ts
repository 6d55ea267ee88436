import { describe, expect, it } from 'vitest';
import { chooseRunConfig, describeRunConfig, medianOf, type RunConfig, runConfigs, timeRound } from '../../agent/inference/thread-choice.js';

const key = (config: RunConfig): string => `${config.threads}x${config.sessions}`;
/** A fake timing source: the ms per frame a CPU would give, no model run. */
const timed = (msByConfig: Record<string, number>) => async (config: RunConfig) => ({ ...config, msPerRun: msByConfig[key(config)]!, runs: 12 });
const ONE = { threads: 1, sessions: 1 };
const TWO_THREADS = { threads: 2, sessions: 1 };
const TWO_SESSIONS = { threads: 1, sessions: 2 };
const ALL = [ONE, TWO_THREADS, TWO_SESSIONS];

describe('threads and sessions by measurement', () => {
  it('picks the fastest configuration: one thread when two are slower, two when they pay, two sessions when both cores infer side by side', async () => {
    expect((await chooseRunConfig(ALL, timed({ '1x1': 14, '2x1': 15.5, '1x2': 14.2 }))).chosen).toEqual(ONE);
    expect((await chooseRunConfig(ALL, timed({ '1x1': 40, '2x1': 24, '1x2': 26 }))).chosen).toEqual(TWO_THREADS);
    expect((await chooseRunConfig(ALL, timed({ '1x1': 22, '2x1': 21, '1x2': 12.5 }))).chosen).toEqual(TWO_SESSIONS);
  });

  it('within 5 % of the fastest the lighter wins: fewer threads in all, then fewer sessions', async () => {
    const choice = await chooseRunConfig(ALL, timed({ '1x1': 20.8, '2x1': 20, '1x2': 21 }));
    expect(choice.chosen).toEqual(ONE);
    expect(choice.timings).toEqual([
      { threads: 1, sessions: 1, msPerRun: 20.8, runs: 12 },
      { threads: 2, sessions: 1, msPerRun: 20, runs: 12 },
      { threads: 1, sessions: 2, msPerRun: 21, runs: 12 },
    ]);
    expect((await chooseRunConfig(ALL, timed({ '1x1': 30, '2x1': 20, '1x2': 20.5 }))).chosen).toEqual(TWO_THREADS);
    expect((await chooseRunConfig(ALL, timed({ '1x1': 30, '2x1': 21.5, '1x2': 20 }))).chosen).toEqual(TWO_SESSIONS);
  });

  it('candidates follow the cores and what the config fixes', () => {
    expect(runConfigs(1)).toEqual([ONE]);
    expect(runConfigs(2)).toEqual(ALL);
    expect(runConfigs(16)).toEqual(ALL);
    expect(runConfigs(2, { threads: 2, sessions: 'auto' })).toEqual([TWO_THREADS]);
    expect(runConfigs(2, { threads: 1, sessions: 'auto' })).toEqual([ONE, TWO_SESSIONS]);
    expect(runConfigs(2, { threads: 'auto', sessions: 1 })).toEqual([ONE, TWO_THREADS]);
    expect(runConfigs(4, { threads: 3, sessions: 2 })).toEqual([{ threads: 3, sessions: 2 }]);
    expect(describeRunConfig(TWO_SESSIONS)).toBe('2 sessions of 1 thread');
    expect(medianOf([5, 1, 3])).toBe(3);
    expect(medianOf([4, 1, 3, 2])).toBe(2.5);
  });

  it('a round with two sessions runs two frames side by side and counts ms per frame', async () => {
    let running = 0;
    let most = 0;
    const run = async (): Promise<void> => {
      running++;
      most = Math.max(most, running);
      await Promise.resolve();
      running--;
    };
    await timeRound(run, 2);
    expect(most).toBe(2);
    most = 0;
    await timeRound(run, 1);
    expect(most).toBe(1);
  });
});
