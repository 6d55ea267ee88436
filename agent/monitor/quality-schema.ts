import { z } from 'zod';
import { vehicleTypes } from '../common/vehicle-types.js';
import { alertMetrics } from '../config/monitor-schema.js';
import type { Figures, WindowFigures } from './quality-figures.js';
import type { Estimate } from './wilson.js';

/**
 * The monitoring payloads (docs/mqtt.md has their JSON Schemas, generated from these), each
 * with the one function that builds it from the figures, typed from the schema.
 */

const estimateSchema = z
  .strictObject({
    value: z.number().min(0).max(1),
    low: z.number().min(0).max(1).describe('95 % Wilson interval, low end.'),
    high: z.number().min(0).max(1),
    n: z.number().int().nonnegative().describe('The labels it rests on.'),
  })
  .nullable()
  .describe('null: no labels for it (or, for recall, no reported misses in the window).');

const figuresSchema = z.strictObject({
  labelled: z.number().int().nonnegative().describe('Detections with a verdict.'),
  correct: z.number().int().nonnegative(),
  wrongType: z.number().int().nonnegative(),
  falsePositive: z.number().int().nonnegative(),
  missed: z.number().int().nonnegative().describe('Vehicles reported missed.'),
  precision: estimateSchema.describe('Right vehicle and type, of the labelled detections.'),
  detectionPrecision: estimateSchema.describe('A vehicle at all (a wrong type counts), of the labelled detections.'),
  recall: estimateSchema.describe('Right vehicle and type, of the vehicles there (found or reported missed).'),
  detectionRecall: estimateSchema.describe('Found at all, of the vehicles there.'),
});

const windowSchema = z.strictObject({
  kind: z.enum(['labels', 'minutes']),
  size: z.number().positive().describe('labels: the last N labelled detections; minutes: the last T minutes of capture time.'),
  from: z.string().nullable().describe('Capture time of the oldest verdict in the window (ISO 8601); null when empty.'),
  to: z.string().nullable(),
  overall: figuresSchema,
  byType: z
    .partialRecord(z.enum(vehicleTypes), figuresSchema)
    .describe('Per vehicle type (precision over detections of that type, recall over vehicles of that type).'),
  confusion: z
    .record(z.string(), z.record(z.string(), z.number().int()))
    .describe('Predicted type (rows, "missed" for vehicles not detected) by true type (columns, "none" for not a vehicle).'),
});

export const qualityPayloadSchema = z.strictObject({
  id: z.string().describe('Unique message id (UUID).'),
  deviceId: z.string(),
  at: z.string().describe('When the figures were computed (ISO 8601).'),
  cameraId: z.string(),
  model: z.strictObject({ id: z.string(), version: z.string() }),
  windows: z.strictObject({ labels: windowSchema, minutes: windowSchema }),
});

export type QualityPayload = z.output<typeof qualityPayloadSchema>;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const round4 = (value: number): number => Math.round(value * 10_000) / 10_000;
const estimateOut = (estimate: Estimate | null) =>
  estimate === null ? null : { value: round4(estimate.value), low: round4(estimate.low), high: round4(estimate.high), n: estimate.n };
const figuresOut = (figures: Figures): z.output<typeof figuresSchema> => ({
  labelled: figures.labelled,
  correct: figures.correct,
  wrongType: figures.wrongType,
  falsePositive: figures.falsePositive,
  missed: figures.missed,
  precision: estimateOut(figures.precision),
  detectionPrecision: estimateOut(figures.detectionPrecision),
  recall: estimateOut(figures.recall),
  detectionRecall: estimateOut(figures.detectionRecall),
});

export function windowOut(kind: 'labels' | 'minutes', size: number, window: WindowFigures): z.output<typeof windowSchema> {
  return {
    kind,
    size,
    from: iso(window.from),
    to: iso(window.to),
    overall: figuresOut(window.overall),
    byType: Object.fromEntries(Object.entries(window.byType).map(([type, figures]) => [type, figuresOut(figures)])),
    confusion: window.confusion,
  };
}

const alertSchema = z.strictObject({
  alertId: z.string(),
  ruleId: z.string(),
  cameraId: z.string(),
  model: z.strictObject({ id: z.string(), version: z.string() }),
  metric: z.enum(alertMetrics),
  vehicleType: z.enum(vehicleTypes).nullable(),
  threshold: z.number().describe("The rule's `below` or `above`."),
  direction: z.enum(['below', 'above']).describe('below: raised at or below the threshold; above: at or above.'),
  clearAt: z.number(),
  value: z.number().describe('The figure when it was raised.'),
  labels: z.number().int().describe('The labels that figure rested on.'),
  raisedAt: z.string(),
});

export const alertsPayloadSchema = z
  .strictObject({
    deviceId: z.string(),
    at: z.string(),
    active: z.array(alertSchema).describe('Every alert raised and not cleared; empty when all is well.'),
  })
  .describe('Retained: a new subscriber sees at once what is wrong now.');

export type AlertsPayload = z.output<typeof alertsPayloadSchema>;
export type ActiveAlert = z.output<typeof alertSchema>;

export const retrainStates = ['pending', 'acknowledged', 'superseded'] as const;
export type RetrainState = (typeof retrainStates)[number];

export const retrainEvidenceSchema = z.strictObject({
  alert: alertSchema.nullable().describe('The alert that fired it; null for a request raised by hand.'),
  windows: z
    .strictObject({ labels: windowSchema, minutes: windowSchema })
    .describe('The figures with their intervals and label counts, and the confusion table, when it was raised.'),
  timeRange: z.strictObject({ from: z.string().nullable(), to: z.string().nullable() }).describe('Capture times of the labelled frames the figures rest on.'),
  evidenceSampleIds: z.array(z.string()).describe('Evidence samples of this camera and model (disputed first), to pull with evidence-get.'),
  sourceFigures: z
    .record(z.string(), z.unknown())
    .optional()
    .describe(
      "When a rule on another subsystem's metric fired it: that subsystem's latest figures (drift: the last window's verdict, drifted features and label-free estimate).",
    ),
});

export const retrainPayloadSchema = z
  .strictObject({
    id: z.string().describe('Unique message id (UUID).'),
    deviceId: z.string(),
    at: z.string(),
    requestId: z.string().describe("The request's id: acknowledge it with cmd/retrain-ack."),
    state: z.enum(retrainStates),
    cameraId: z.string(),
    model: z.strictObject({ id: z.string(), version: z.string() }),
    trigger: z.string().describe('rule:<rule id>, or manual.'),
    reason: z.string(),
    raisedAt: z.string(),
    stateAt: z.string(),
    evidence: retrainEvidenceSchema,
  })
  .describe('One message per change of a request; retained on the device topic (the latest change), repeated on <prefix>/fleet/retrain when raised.');

export type RetrainPayload = z.output<typeof retrainPayloadSchema>;
export type RetrainEvidence = z.output<typeof retrainEvidenceSchema>;
