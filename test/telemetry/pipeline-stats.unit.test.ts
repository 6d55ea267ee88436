import { describe, expect, it } from 'vitest';
import type { InferenceResult } from '../../agent/inference/result.js';
import { PipelineStats } from '../../agent/telemetry/pipeline-stats.js';

function result(cameraId: string, inferenceMs: number, types: string[]): InferenceResult {
  return {
    cameraId,
    seq: 0,
    capturedAt: 0,
    model: { id: 'm', version: '1' },
    task: 'detection',
    inferenceMs,
    vehicles: types.map((type) => ({ type: type as 'car', label: type, score: 0.9, box: [0, 0, 0.1, 0.1] })),
  };
}

describe('PipelineStats', () => {
  it('records each frame once; every reader gets its own windows over the same counts', () => {
    let now = 0;
    const stats = new PipelineStats(() => now);
    const status = stats.reader();
    const telemetry = stats.reader();
    for (let i = 1; i <= 10; i++) stats.record(result(i % 2 ? 'a' : 'b', i, ['car']));
    now = 2000;
    expect(status.takeWindow()).toMatchObject({ frames: 10, fps: 5, inferenceP50: 6, inferenceP95: 10, vehicles: { car: 10 } });
    stats.record(result('a', 100, ['bus', 'car']));
    now = 3000;
    // The status reader's second window holds only the new frame; telemetry's first holds all 11.
    expect(status.takeWindow()).toMatchObject({ frames: 1, fps: 1, inferenceP50: 100, vehicles: { bus: 1, car: 1 } });
    expect(telemetry.takeWindow()).toMatchObject({ frames: 11, vehicles: { car: 11, bus: 1 } });
    expect(telemetry.takeWindow()).toMatchObject({ frames: 0, inferenceP50: 0, vehicles: {} });
    expect(stats.totalResults).toBe(11);
    expect(Object.fromEntries(stats.framesOutByCamera)).toEqual({ a: 6, b: 5 });
  });
});
