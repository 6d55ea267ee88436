import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoadedModel, type SessionSettings } from '../../agent/inference/loaded-model.js';
import { resolveModel } from '../../agent/inference/model-files.js';
import { InferenceThreads, RunFailed, SessionWorker } from '../../agent/inference/session-worker.js';
import { manifestsDir } from '../../agent/paths.js';
import { assetPath } from '../support/assets.js';
import { frameFromImage } from '../support/image-frame.js';

const settings: SessionSettings = {
  intraOpThreads: 2,
  interOpThreads: 1,
  graphOptimization: 'all',
  executionProviders: ['cpu'],
  cpuMemArena: true,
  spinWait: false,
};
const assetsDir = path.dirname(assetPath('yolox-nano-int8.onnx'));
const int8 = (): ReturnType<typeof resolveModel> => resolveModel(path.join(manifestsDir(), 'yolox-nano-int8.json'), assetsDir);

describe('inference runs off the event loop', () => {
  let model: LoadedModel;
  beforeAll(async () => {
    model = await LoadedModel.load(int8(), settings);
  });
  afterAll(() => model.release());

  it('the event loop keeps turning while a frame runs (onnxruntime-node itself would block it)', async () => {
    const frame = await frameFromImage(assetPath('highway-frame-t5s.png'), model.geometry);
    let turns = 0;
    let running = true;
    const spin = (): void => {
      turns++;
      if (running) setImmediate(spin);
    };
    setImmediate(spin);
    let results = 0;
    for (let i = 0; i < 5; i++) results += (await model.infer(frame)).vehicles.length > 0 ? 1 : 0;
    running = false;
    expect(results).toBe(5);
    // Five runs of ~25 ms each: a blocked loop would turn about once per run.
    expect(turns).toBeGreaterThan(50);
  });
});

describe('two frames queued in the worker at once', () => {
  it('each lane gets the result of its own frame (the same as run one at a time)', async () => {
    const model = await LoadedModel.load(int8(), settings);
    try {
      const busy = await frameFromImage(assetPath('highway-frame-t5s.png'), model.geometry);
      const other = await frameFromImage(assetPath('bus-and-cars.jpg'), model.geometry);
      const alone = [(await model.infer(busy)).vehicles, (await model.infer(other)).vehicles];
      for (let round = 0; round < 3; round++) {
        const first = model.prepare(busy);
        const second = model.prepare(other);
        await Promise.all([model.execute(first), model.execute(second)]);
        expect([model.finish(first).vehicles, model.finish(second).vehicles]).toEqual(alone);
      }
    } finally {
      await model.release();
    }
  });
});

describe('the session worker', () => {
  let worker: SessionWorker;
  beforeAll(async () => {
    worker = await SessionWorker.open(int8().modelPath, { intraOpNumThreads: 1 });
    worker.bind({ inputName: 'images', inputType: 'float32', inputDims: [1, 3, 416, 416], outputName: 'output' });
  });
  afterAll(() => worker.close());

  it('a run that onnxruntime refuses gives the lane its buffers back, and the next run works', async () => {
    const wrongSize = new ArrayBuffer(100 * 4);
    const failure = await worker.run(0, wrongSize, null, null).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(RunFailed);
    expect(wrongSize.byteLength).toBe(0); // it travelled to the worker...
    expect((failure as RunFailed).input.byteLength).toBe(400); // ...and came back
    const outcome = await worker.run(0, new Float32Array(3 * 416 * 416).fill(114).buffer, null, null);
    expect(outcome.outputDims).toEqual([1, 3549, 85]);
    const first = new Float32Array(outcome.output).slice();
    // The second run writes into the output buffer handed back: same input, same numbers.
    const again = await worker.run(0, outcome.input, outcome.output, outcome.outputDims);
    expect(new Float32Array(again.output)).toEqual(first);
  });

  it('a missing model file is an open failure that ends its worker', async () => {
    await expect(SessionWorker.open('/nonexistent/model.onnx', {})).rejects.toThrow(/model/i);
  });

  it('after close, runs fail with INFERENCE_FAILED instead of hanging', async () => {
    const closing = await SessionWorker.open(int8().modelPath, { intraOpNumThreads: 1 });
    await closing.close();
    await expect(closing.run(0, new ArrayBuffer(4), null, null)).rejects.toMatchObject({ code: 'INFERENCE_FAILED' });
  });
});

describe('inference threads across model swaps', () => {
  it('the next model opens in the thread the released one ran in, also after a model that failed to open', async () => {
    const threads = new InferenceThreads();
    const threadOf = (session: SessionWorker): number => (session as unknown as { worker: { threadId: number } }).worker.threadId;
    try {
      const first = await SessionWorker.open(int8().modelPath, { intraOpNumThreads: 1 }, threads);
      const firstThread = threadOf(first);
      await first.close();
      await expect(SessionWorker.open('/nonexistent/model.onnx', {}, threads)).rejects.toThrow();
      const second = await SessionWorker.open(int8().modelPath, { intraOpNumThreads: 1 }, threads);
      expect(threadOf(second)).toBe(firstThread);
      second.bind({ inputName: 'images', inputType: 'float32', inputDims: [1, 3, 416, 416], outputName: 'output' });
      const outcome = await second.run(0, new Float32Array(3 * 416 * 416).buffer, null, null);
      expect(outcome.outputDims).toEqual([1, 3549, 85]);
      await second.close();
    } finally {
      await threads.close();
    }
  });
});
