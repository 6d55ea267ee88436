import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FrameScheduler } from '../../agent/inference/frame-scheduler.js';
import type { Lane, LoadedModel } from '../../agent/inference/loaded-model.js';
import type { InferenceResult } from '../../agent/inference/result.js';
import { LatestFrameSlot } from '../../agent/ingest/frame-slot.js';
import type { Frame } from '../../agent/ingest/frame.js';
import { captureLogger } from '../support/capture-log.js';

/**
 * A stand-in for LoadedModel with its two lanes: each run takes `runMs` of fake time; runs of
 * frames whose camera is in `failFor` fail. It records the order frames were taken in.
 */
function fakeModel(runMs: number, failFor = new Set<string>()): LoadedModel & { taken: string[]; maxBusy: number } {
  const lanes: Lane[] = [0, 1].map((index) => ({ index, busy: false, cameraId: '', seq: 0 }) as unknown as Lane);
  const model = {
    taken: [] as string[],
    maxBusy: 0,
    get canPrepare() {
      return lanes.some((lane) => !lane.busy);
    },
    prepare(frame: Frame): Lane {
      const lane = lanes.find((candidate) => !candidate.busy)!;
      lane.busy = true;
      lane.cameraId = frame.cameraId;
      lane.seq = frame.seq;
      model.taken.push(`${frame.cameraId}#${frame.seq}`);
      model.maxBusy = Math.max(model.maxBusy, lanes.filter((candidate) => candidate.busy).length);
      return lane;
    },
    execute(lane: Lane): Promise<void> {
      return new Promise((resolve, reject) => setTimeout(() => (failFor.has(lane.cameraId) ? reject(new Error('run refused')) : resolve()), runMs));
    },
    finish(lane: Lane): InferenceResult {
      lane.busy = false;
      return {
        cameraId: lane.cameraId,
        seq: lane.seq,
        capturedAt: 0,
        model: { id: 'fake', version: '1' },
        task: 'detection',
        vehicles: [],
        inferenceMs: runMs,
      };
    },
    abandon(lane: Lane): void {
      lane.busy = false;
    },
  };
  return model as unknown as LoadedModel & { taken: string[]; maxBusy: number };
}

const slot = (id: string): LatestFrameSlot => new LatestFrameSlot(id, 4, 4, 48);

describe('the frame scheduler, on fake time', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('takes cameras round-robin, so a camera that always has a frame cannot starve the others', async () => {
    const slots = [slot('a'), slot('b'), slot('c')];
    const model = fakeModel(10);
    const results: string[] = [];
    const scheduler = new FrameScheduler({
      slots: () => slots,
      models: { active: model },
      onResult: (result) => results.push(`${result.cameraId}#${result.seq}`),
      log: captureLogger().log,
    });
    await scheduler.start();
    // Camera a offers a new frame every 2 ms, b and c every 10 ms: a would win every time if taken first.
    let seq = 0;
    const feed = setInterval(() => {
      seq++;
      slots[0]!.publish(seq, Date.now(), 4, 4);
      if (seq % 5 === 0) for (const other of slots.slice(1)) other.publish(seq, Date.now(), 4, 4);
    }, 2);
    await vi.advanceTimersByTimeAsync(400);
    clearInterval(feed);
    const stopping = scheduler.stop();
    await vi.runAllTimersAsync();
    await stopping;
    const perCamera = (id: string): number => results.filter((entry) => entry.startsWith(`${id}#`)).length;
    // The model does about 100 frames in 400 ms (two lanes, 10 ms each): shared out, not all a's.
    expect(perCamera('b')).toBeGreaterThanOrEqual(15);
    expect(perCamera('c')).toBeGreaterThanOrEqual(15);
    expect(Math.abs(perCamera('b') - perCamera('c'))).toBeLessThanOrEqual(2);
    // Latest wins: a's frames that came while the model was busy were replaced, and counted.
    expect(slots[0]!.dropped).toBeGreaterThan(0);
    expect(model.maxBusy).toBe(2);
    // Results complete in the order the frames were taken.
    expect(results).toEqual(model.taken);
  });

  it('a run that fails is abandoned and counted; the next frames go on', async () => {
    const slots = [slot('good'), slot('bad')];
    const model = fakeModel(5, new Set(['bad']));
    const results: string[] = [];
    const scheduler = new FrameScheduler({
      slots: () => slots,
      models: { active: model },
      onResult: (result) => results.push(result.cameraId),
      log: captureLogger().log,
    });
    await scheduler.start();
    for (let i = 1; i <= 10; i++) {
      for (const each of slots) each.publish(i, Date.now(), 4, 4);
      await vi.advanceTimersByTimeAsync(20);
    }
    const stopping = scheduler.stop();
    await vi.runAllTimersAsync();
    await stopping;
    expect(results.filter((camera) => camera === 'good')).toHaveLength(10);
    expect(results).not.toContain('bad');
    expect(scheduler.health().detail).toMatchObject({ processed: 10, errors: 10 });
  });

  it('a frame left waiting while the lanes were held for a still image is taken on nudge(), with no new frame arriving', async () => {
    const slots = [slot('file')];
    const model = fakeModel(5);
    let held = true;
    const gated = Object.create(model, { canPrepare: { get: () => !held && model.canPrepare } }) as LoadedModel;
    const results: string[] = [];
    const scheduler = new FrameScheduler({
      slots: () => slots,
      models: { active: gated },
      onResult: (result) => results.push(`${result.cameraId}#${result.seq}`),
      log: captureLogger().log,
    });
    await scheduler.start();
    // A camera that waits for the scheduler (a file without -re) publishes one frame, then nothing.
    slots[0]!.publish(1, Date.now(), 4, 4);
    await vi.advanceTimersByTimeAsync(50);
    expect(results).toEqual([]);
    held = false; // the still image is done with the lanes
    await vi.advanceTimersByTimeAsync(50);
    expect(results).toEqual([]); // nothing woke the scheduler
    scheduler.nudge();
    await vi.advanceTimersByTimeAsync(50);
    expect(results).toEqual(['file#1']);
    const stopping = scheduler.stop();
    await vi.runAllTimersAsync();
    await stopping;
  });
});
