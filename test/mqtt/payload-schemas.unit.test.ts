import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { InferenceResult } from '../../agent/inference/result.js';
import { resultPayload, resultPayloadSchema } from '../../agent/storage/result-payload.js';

const detection: InferenceResult = {
  cameraId: 'north',
  seq: 12,
  capturedAt: 1_764_000_000_000,
  model: { id: 'yolox-nano-int8', version: '1.0.0' },
  task: 'detection',
  vehicles: [
    { type: 'car', label: 'car', score: 0.81, box: [0.1, 0.2, 0.05, 0.04] },
    { type: 'bus', label: 'bus', score: 0.5, box: [0.4, 0.1, 0.07, 0.1] },
  ],
  inferenceMs: 9.8,
};
const classification: InferenceResult = {
  ...detection,
  task: 'classification',
  vehicles: [],
  top: [
    { label: 'pickup', type: 'van', score: 0.7 },
    { label: 'tree', type: null, score: 0.1 },
  ],
};

describe('the documented result schema is the payload the writer builds', () => {
  it.each([
    ['detection', detection],
    ['classification', classification],
  ])('%s payloads parse strictly', (_task, result) => {
    const payload = JSON.parse(resultPayload(result, 'id-1', 'dev1')) as unknown;
    expect(resultPayloadSchema.parse(payload)).toEqual(payload);
  });

  it('a field the writer adds and the schema lacks fails', () => {
    const payload = { ...(JSON.parse(resultPayload(detection, 'id-1', 'dev1')) as object), extra: 1 };
    expect(() => resultPayloadSchema.parse(payload)).toThrow(z.ZodError);
  });
});
