import { z } from 'zod';
import { vehicleTypes } from '../common/vehicle-types.js';

/**
 * The payloads on <prefix>/<deviceId>/counts (kind "counts" and "count-error") and the
 * reference-counts command: the schemas docs/mqtt.md shows, and the types the code builds them with.
 */

const typeCounts = z
  .strictObject(Object.fromEntries(vehicleTypes.map((type) => [type, z.number().int().nonnegative()])) as Record<(typeof vehicleTypes)[number], z.ZodNumber>)
  .describe('Vehicles counted per type (every type present, zeros included).');

export const countsPayloadSchema = z.strictObject({
  id: z.string().describe('Unique message id (UUID), the same as count_intervals.message_id in SQLite: the deduplication key.'),
  deviceId: z.string(),
  kind: z.literal('counts'),
  cameraId: z.string(),
  from: z.string().describe('Start of the interval (ISO 8601, UTC), a multiple of counting.intervalSeconds since midnight UTC.'),
  to: z.string().describe('End of the interval (exclusive).'),
  intervalSeconds: z.number().int().positive(),
  frames: z.number().int().nonnegative().describe('Frames tracked in the interval: few frames (a camera that stopped) mean a partial count.'),
  lines: z
    .array(
      z.strictObject({
        lineId: z.string(),
        direction: z.string().describe("The direction's label from the line's config."),
        counts: typeCounts,
        total: z.number().int().nonnegative(),
      }),
    )
    .describe('One entry per counted direction of every line of the camera, zero counts included.'),
});
export type CountsPayload = z.output<typeof countsPayloadSchema>;

const comparison = z.strictObject({
  reference: z.number().int().nonnegative(),
  agent: z.number().int().nonnegative(),
  error: z.number().nullable().describe('(agent - reference) / reference; null when the reference is 0.'),
});

export const countErrorPayloadSchema = z.strictObject({
  id: z.string().describe('Unique message id (UUID).'),
  deviceId: z.string(),
  kind: z.literal('count-error'),
  at: z.string().describe('When the comparison was made (ISO 8601, UTC).'),
  cameraId: z.string(),
  source: z.string().describe('Who counted the reference (a loop, an ANPR system, a person).'),
  from: z.string(),
  to: z.string(),
  lineId: z.string().nullable().describe('The line compared; null: all lines of the camera.'),
  direction: z.string().nullable().describe('The direction label compared; null: both.'),
  intervals: z.number().int().nonnegative().describe("The agent's closed intervals inside [from, to) the comparison rests on."),
  expectedIntervals: z.number().int().nonnegative().describe('How many there would be with the camera running throughout.'),
  byType: z
    .array(comparison.extend({ type: z.enum(vehicleTypes) }))
    .describe('Each type the reference counted (after `merge`), and each type the agent counted that the reference did not.'),
  total: comparison,
});
export type CountErrorPayload = z.output<typeof countErrorPayloadSchema>;

export const referenceCountsArgsSchema = z.strictObject({
  cameraId: z.string().min(1).max(64),
  from: z.iso.datetime({ offset: true }).describe('Start of the counted period (ISO 8601); it should fall on an interval boundary (counting.intervalSeconds).'),
  to: z.iso.datetime({ offset: true }).describe('End of the period (exclusive).'),
  lineId: z.string().min(1).max(48).optional().describe('Compare one line; unset: all lines of the camera together.'),
  direction: z.string().min(1).max(48).optional().describe('Compare one direction label; unset: both.'),
  counts: z
    .partialRecord(z.enum(vehicleTypes), z.number().int().nonnegative().max(10_000_000))
    .refine((counts) => Object.keys(counts).length > 0, { error: 'give at least one vehicle type with its count' })
    .describe('The reference count per vehicle type over the period.'),
  merge: z
    .partialRecord(z.enum(vehicleTypes), z.enum(vehicleTypes))
    .optional()
    .describe('Types to count as another on both sides before comparing, e.g. {"van": "car"} when the reference or the model does not tell vans from cars.'),
  source: z.string().min(1).max(64).default('reference').describe('Who counted (kept with the comparison).'),
});
export type ReferenceCountsArgs = z.output<typeof referenceCountsArgsSchema>;
