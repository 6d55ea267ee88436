import { z } from 'zod';

const estimateSchema = z
  .strictObject({
    value: z.number().min(0).max(1),
    low: z.number().min(0).max(1),
    high: z.number().min(0).max(1),
    n: z.number().int().nonnegative().describe('Detections it rests on; 0 when uncalibrated (alert rules then ignore it).'),
    detections: z.number().int().nonnegative(),
    calibration: z
      .enum(['feedback', 'manifest', 'uncalibrated'])
      .describe("feedback: isotonic on reviewers' verdicts; manifest: the table the model ships; uncalibrated: raw scores (not to be trusted)."),
    calibrationLabels: z.number().int().nonnegative(),
  })
  .nullable();

export const featureDriftSchema = z.strictObject({
  feature: z.string(),
  kind: z.enum(['input', 'prediction']),
  test: z.enum(['ks', 'psi']).describe('ks: Kolmogorov-Smirnov (value = distance D); psi: Population Stability Index.'),
  value: z.number(),
  pValue: z.number().nullable(),
  jensenShannon: z.number().nullable().describe('Histograms: the Jensen-Shannon divergence in bits, beside PSI.'),
  referenceValues: z.number().int(),
  currentValues: z.number().int(),
  drifted: z.boolean(),
  insufficient: z.boolean().describe('Too few values on one side: not compared.'),
});

const spanSchema = z.strictObject({
  from: z.string(),
  to: z.string(),
  frames: z.number().int().describe('Sampled frames (input statistics).'),
  results: z.number().int(),
  detections: z.number().int(),
});

export const driftPayloadSchema = z.strictObject({
  id: z.string().describe('Unique message id (UUID).'),
  deviceId: z.string(),
  at: z.string(),
  cameraId: z.string(),
  model: z.strictObject({ id: z.string(), version: z.string() }),
  window: spanSchema,
  reference: spanSchema.extend({ source: z.enum(['captured', 'shipped']) }),
  features: z.array(featureDriftSchema),
  driftedFeatures: z.number().int(),
  drifted: z.boolean().describe('At least monitor.drift.minFeatures features shifted.'),
  consecutive: z.number().int().describe('Drifted windows in a row, this one included (the `drift` alert metric).'),
  estimatedPrecision: estimateSchema.describe('The label-free precision estimate of the window.'),
  measuredPrecision: z
    .strictObject({ value: z.number(), low: z.number(), high: z.number(), n: z.number().int() })
    .nullable()
    .describe('The precision measured from feedback (count window), when there is any.'),
  gap: z.number().nullable().describe('estimated - measured, when both exist.'),
});

export type DriftPayload = z.output<typeof driftPayloadSchema>;
