import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceService } from '../../agent/inference/inference-service.js';
import { LoadedModel, type SessionSettings } from '../../agent/inference/loaded-model.js';
import { resolveModel } from '../../agent/inference/model-files.js';
import type { InferenceResult } from '../../agent/inference/result.js';
import { manifestsDir } from '../../agent/paths.js';
import { assetPath } from '../support/assets.js';
import { captureLogger } from '../support/capture-log.js';
import { frameFromImage } from '../support/image-frame.js';

const settings: SessionSettings = {
  intraOpThreads: 1,
  interOpThreads: 1,
  graphOptimization: 'all',
  executionProviders: ['cpu'],
  cpuMemArena: true,
  spinWait: true,
};
const resolved = resolveModel(path.join(manifestsDir(), 'yolox-nano-int8.json'), path.dirname(assetPath('yolox-nano-int8.onnx')));
const stripTimes = (result: InferenceResult): Omit<InferenceResult, 'inferenceMs'> => {
  const { inferenceMs: _ignored, ...rest } = result;
  return rest;
};

/**
 * Issue #19: two sessions run the scheduler's two lanes side by side. The same frames must give
 * the same detections as one session, whichever session ran them, also when both run at once.
 */
describe('two onnxruntime sessions for the two lanes', () => {
  let one: LoadedModel;
  let two: LoadedModel;
  beforeAll(async () => {
    one = await LoadedModel.load(resolved, { ...settings, sessions: 1 });
    two = await LoadedModel.load(resolved, { ...settings, sessions: 2 });
  }, 60_000);
  afterAll(async () => {
    await one?.release();
    await two?.release();
  });

  it('give the same detections as one session, frames run side by side', async () => {
    expect(one.sessionCount).toBe(1);
    expect(two.sessionCount).toBe(2);
    const frames = await Promise.all(
      ['bus-and-cars.jpg', 'bicycle-pickup-dog.jpg', 'highway-frame-t5s.png'].map((name) => frameFromImage(assetPath(name), one.geometry)),
    );
    const expected: InferenceResult[] = [];
    for (const frame of frames) expected.push(await one.infer(frame));
    // Each pair runs at once, one frame in each session; then the other way round.
    for (const [a, b] of [
      [0, 1],
      [2, 0],
      [1, 2],
    ] as const) {
      const [first, second] = await Promise.all([two.infer(frames[a]!), two.infer(frames[b]!)]);
      expect(stripTimes(first)).toEqual(stripTimes(expected[a]!));
      expect(stripTimes(second)).toEqual(stripTimes(expected[b]!));
    }
    expect(expected.every((result) => result.vehicles.length > 0)).toBe(true);
  }, 60_000);

  it('the inference service times 1 and 2 threads and 2 sessions and keeps what it measured fastest; sessions: 2 fixes it', async () => {
    const capture = captureLogger();
    const service = new InferenceService(resolved, { ...settings, intraOpThreads: 'auto', sessions: 'auto' }, capture.log, 2);
    await service.start();
    const detail = service.health().detail as {
      threads: number;
      sessions: number;
      threadTimings: Array<{ threads: number; sessions: number; msPerRun: number }>;
    };
    await service.stop();
    expect(detail.threadTimings.map((timing) => `${timing.threads}x${timing.sessions}`)).toEqual(['1x1', '2x1', '1x2']);
    console.log(
      `ms per frame, every session busy: ${detail.threadTimings.map((timing) => `${timing.threads}x${timing.sessions} ${timing.msPerRun}`).join(', ')}; chosen ${detail.threads}x${detail.sessions}`,
    );

    const fixed = new InferenceService(resolved, { ...settings, intraOpThreads: 1, sessions: 2 }, captureLogger().log, 2);
    await fixed.start();
    expect(fixed.health().detail).toMatchObject({ threads: 1, sessions: 2, threadsBy: 'config' });
    expect(fixed.active!.sessionCount).toBe(2);
    await fixed.stop();
  }, 60_000);
});
