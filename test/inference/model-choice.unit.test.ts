import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseAutoModel, decideModel, type TimedCandidate } from '../../agent/inference/model-choice.js';
import type { ResolvedModel } from '../../agent/inference/model-files.js';
import type { RunConfig } from '../../agent/inference/thread-choice.js';
import { captureLogger } from '../support/capture-log.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-model-choice-');

const candidate = (id: string, msByThreads: Record<number, number>): TimedCandidate => ({
  id,
  timings: Object.entries(msByThreads).map(([threads, msPerRun]) => ({ threads: Number(threads), sessions: 1, msPerRun, runs: 10 })),
});

/** An assets directory with stand-in model files: "auto" looks only at which files are present. */
function assetsWith(files: string[]): string {
  const dir = tempDir();
  for (const file of files) fs.writeFileSync(path.join(dir, file), 'stand-in');
  fs.writeFileSync(path.join(dir, 'coco-labels.txt'), 'person\nbicycle\ncar\n');
  return dir;
}

/** A fake timing source: the figures a CPU would give, no model run. */
const fakeTimes =
  (ms: Record<string, Record<number, number>>) =>
  async (models: readonly ResolvedModel[], configs: readonly RunConfig[]): Promise<TimedCandidate[]> =>
    models.map((model) =>
      candidate(
        model.manifest.id,
        Object.fromEntries(configs.filter((config) => config.sessions === 1).map((config) => [config.threads, ms[model.manifest.id]![config.threads]!])),
      ),
    );

const logged = (capture: ReturnType<typeof captureLogger>): string[] => capture.lines().map((line) => String((JSON.parse(line) as { msg: unknown }).msg));

const settings = {
  intraOpThreads: 'auto' as const,
  sessions: 'auto' as const,
  interOpThreads: 1,
  graphOptimization: 'all' as const,
  executionProviders: ['cpu' as const],
  cpuMemArena: false,
  spinWait: true,
};

describe('model.manifest "auto": int8 never slower than float', () => {
  it('keeps the faster model, each at its best thread count', () => {
    const slowerInt8 = decideModel([candidate('yolox-nano-int8', { 1: 19.4, 2: 16.1 }), candidate('yolox-nano', { 1: 15.0, 2: 14.9 })]);
    expect(slowerInt8).toMatchObject({ chosen: 'yolox-nano', run: { threads: 1, sessions: 1 } });
    expect(slowerInt8.reason).toContain('yolox-nano fastest on this CPU');
    expect(decideModel([candidate('yolox-nano-int8', { 1: 12, 2: 13 }), candidate('yolox-nano', { 1: 15, 2: 14 })])).toMatchObject({
      chosen: 'yolox-nano-int8',
      run: { threads: 1, sessions: 1 },
    });
  });

  it('within 5 % of the fastest the earlier candidate (int8) wins; beyond, it does not', () => {
    const tie = decideModel([candidate('yolox-nano-int8', { 1: 15.6 }), candidate('yolox-nano', { 1: 15.0 })]);
    expect(tie.chosen).toBe('yolox-nano-int8');
    expect(tie.reason).toContain('within 5% of yolox-nano');
    expect(decideModel([candidate('yolox-nano-int8', { 1: 15.9 }), candidate('yolox-nano', { 1: 15.0 })]).chosen).toBe('yolox-nano');
  });

  it('times int8 and float when both are present, and carries the choice for status', async () => {
    const capture = captureLogger();
    const dir = assetsWith(['yolox-nano-int8.onnx', 'yolox-nano.onnx']);
    const fallback = { manifest: { id: 'unused' } } as ResolvedModel;
    const chosen = await chooseAutoModel(fallback, {
      assetsDir: dir,
      minAgreement: 0.9,
      settings,
      log: capture.log,
      cores: 2,
      time: fakeTimes({ 'yolox-nano-int8': { 1: 20, 2: 18 }, 'yolox-nano': { 1: 14, 2: 15 } }),
    });
    expect(chosen.manifest.id).toBe('yolox-nano');
    expect(chosen.selection).toMatchObject({ chosen: 'yolox-nano', run: { threads: 1, sessions: 1 }, excluded: [] });
    expect(chosen.selection!.timings).toHaveLength(4); // two models, each at 1 and 2 threads (the fake times one session)
    expect(logged(capture).some((msg) => msg.startsWith('model chosen by measurement: yolox-nano fastest'))).toBe(true);
  });

  it('leaves out an int8 model below model.autoMinAgreement, without timing anything', async () => {
    const capture = captureLogger();
    const dir = assetsWith(['yolox-nano-int8.onnx', 'yolox-nano.onnx']);
    let timed = false;
    const chosen = await chooseAutoModel({} as ResolvedModel, {
      assetsDir: dir,
      minAgreement: 0.95, // the catalogued int8 records 0.934 / 0.932
      settings,
      log: capture.log,
      time: async () => {
        timed = true;
        return [];
      },
    });
    expect(timed).toBe(false);
    expect(chosen.manifest.id).toBe('yolox-nano');
    expect(chosen.selection!.excluded).toEqual([{ model: 'yolox-nano-int8', reason: expect.stringContaining('below model.autoMinAgreement 0.95') }]);
  });

  it('with one model present nothing is timed; with configured threads only that count is timed', async () => {
    const only = await chooseAutoModel({} as ResolvedModel, {
      assetsDir: assetsWith(['yolox-nano.onnx']),
      minAgreement: 0.9,
      settings,
      log: captureLogger().log,
      time: async () => {
        throw new Error('not expected');
      },
    });
    expect(only.manifest.id).toBe('yolox-nano');
    expect(only.selection).toBeUndefined();

    const counts: string[][] = [];
    await chooseAutoModel({} as ResolvedModel, {
      assetsDir: assetsWith(['yolox-nano-int8.onnx', 'yolox-nano.onnx']),
      minAgreement: 0.9,
      settings: { ...settings, intraOpThreads: 2 },
      log: captureLogger().log,
      time: async (models, configs) => {
        counts.push(configs.map((config) => `${config.threads}x${config.sessions}`));
        return fakeTimes({ 'yolox-nano-int8': { 2: 10 }, 'yolox-nano': { 2: 12 } })(models, configs);
      },
    });
    expect(counts).toEqual([['2x1']]);
  });

  it('a failed timing falls back to the first candidate present, logged', async () => {
    const capture = captureLogger();
    const chosen = await chooseAutoModel({} as ResolvedModel, {
      assetsDir: assetsWith(['yolox-nano-int8.onnx', 'yolox-nano.onnx']),
      minAgreement: 0.9,
      settings,
      log: capture.log,
      time: async () => {
        throw new Error('session refused');
      },
    });
    expect(chosen.manifest.id).toBe('yolox-nano-int8');
    expect(logged(capture).some((msg) => msg.includes('timing the candidates failed'))).toBe(true);
  });
});
