import { z } from 'zod';
import { vehicleTypes } from '../common/vehicle-types.js';
import type { InferenceResult } from '../inference/result.js';

/**
 * The results payload on <prefix>/<deviceId>/results: its schema (the JSON Schema in
 * docs/mqtt.md) and, below, the one function that builds it, typed from the schema, so the two
 * cannot drift apart; test/mqtt/payload-schemas.test.ts also checks real payloads strictly.
 */
export const resultPayloadSchema = z.strictObject({
  id: z.string().describe('Unique message id (UUID), the same as results.message_id in SQLite: the deduplication key.'),
  deviceId: z.string(),
  cameraId: z.string(),
  seq: z.number().int().nonnegative().describe('Per-camera frame number since the agent started, increasing across ffmpeg restarts.'),
  capturedAt: z.string().describe("When the frame's last byte arrived from ffmpeg (ISO 8601, UTC)."),
  model: z.strictObject({ id: z.string(), version: z.string() }).describe('Manifest id and version of the model that produced the result.'),
  task: z.enum(['detection', 'classification']),
  vehicles: z
    .array(
      z.strictObject({
        type: z.enum(vehicleTypes).describe("The manifest's map of the model's label."),
        label: z.string().describe("The model's own class."),
        score: z.number().min(0).max(1),
        box: z
          .tuple([z.number(), z.number(), z.number(), z.number()])
          .describe('[x, y, width, height], normalised to the source picture (0..1, origin top left).'),
        runnerUp: z
          .strictObject({
            type: z.enum(vehicleTypes),
            label: z.string(),
            score: z.number().min(0).max(1),
          })
          .optional()
          .describe(
            'The best-scoring other vehicle type for the same box (score >= 0.05), from the same output row or a box of that type suppressed into this one: a car/truck confusion. Absent when none.',
          ),
        trackId: z
          .number()
          .int()
          .positive()
          .optional()
          .describe(
            "The vehicle's track on this camera (docs/counting.md): the same id in every result while the tracker follows it. Unique per camera until the agent restarts; absent on a track's first sighting, for unconfirmed boxes, and when counting is disabled.",
          ),
      }),
    )
    .describe('Detectors: one entry per vehicle (empty for classifiers).'),
  top: z
    .array(
      z.strictObject({
        label: z.string(),
        type: z.enum(vehicleTypes).nullable().describe('null for non-vehicle classes.'),
        score: z.number().min(0).max(1),
      }),
    )
    .optional()
    .describe('Classifiers only: the top-k classes.'),
  inferenceMs: z.number().nonnegative().describe('Preprocessing + onnxruntime + decoding time of this frame.'),
});

export type ResultPayload = z.output<typeof resultPayloadSchema>;

/** The payload of one result, as stored in the outbox (JSON text). */
export function resultPayload(result: InferenceResult, messageId: string, deviceId: string): string {
  const payload: ResultPayload = {
    id: messageId,
    deviceId,
    cameraId: result.cameraId,
    seq: result.seq,
    capturedAt: new Date(result.capturedAt).toISOString(),
    model: result.model,
    task: result.task,
    vehicles: result.vehicles,
    ...(result.top ? { top: result.top } : {}),
    inferenceMs: result.inferenceMs,
  };
  return JSON.stringify(payload);
}
