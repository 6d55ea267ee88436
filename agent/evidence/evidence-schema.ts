import { z } from 'zod';
import { resultPayloadSchema } from '../storage/result-payload.js';
import type { EvidenceSample } from './evidence-store.js';
import { sampleReasons } from './sampler.js';

/** Samples in one evidence-list reply, at most (a page; `next` continues). */
export const MAX_LIST = 500;

export const evidenceListArgsSchema = z.strictObject({
  cameraId: z.string().min(1).max(64).optional(),
  reason: z.enum(sampleReasons).optional().describe('Only random samples (the unbiased ones) or only low-confidence ones.'),
  disputed: z.boolean().optional().describe('Only samples whose result a reviewer disputed (true), or only the others (false).'),
  since: z.iso.datetime({ offset: true }).optional().describe('Captured at or after (ISO 8601).'),
  after: z.string().min(1).max(64).optional().describe("Paging: the previous reply's `next`."),
  limit: z.number().int().min(1).max(MAX_LIST).default(100),
});

export const sampleSummarySchema = z.strictObject({
  sampleId: z.string().describe('Pass to evidence-get.'),
  resultId: z.string().describe('The result it shows (its id on <prefix>/<deviceId>/results): feedback names this.'),
  cameraId: z.string(),
  model: z.strictObject({ id: z.string(), version: z.string() }),
  capturedAt: z.string(),
  reason: z.enum(sampleReasons).describe('random: the uniform draw (unbiased); low-confidence: a detection scored under lowConfidenceBelow.'),
  disputed: z.boolean().describe("A reviewer's verdict disputed the result (false positive, wrong type, a miss)."),
  bytes: z.number().int().describe('JPEG size.'),
  width: z.number().int(),
  height: z.number().int(),
  crop: z
    .tuple([z.number(), z.number(), z.number(), z.number()])
    .nullable()
    .describe("The camera's ROI [x, y, w, h] the JPEG shows, as fractions of the picture; null: the whole picture."),
  detections: z.number().int().describe('Vehicles the model reported.'),
});

export const evidenceListResultSchema = z.strictObject({
  samples: z.array(sampleSummarySchema),
  next: z.string().nullable().describe('Pass as `after` for the next page; null at the end.'),
  totals: z.strictObject({ samples: z.number().int(), bytes: z.number().int() }).describe('Everything held now, whatever the filter.'),
  randomCompleteSince: z
    .string()
    .nullable()
    .describe('Every random sample captured since then is still held: the range over which random samples are the whole uniform draw.'),
});

export const evidenceGetArgsSchema = z.strictObject({
  sampleId: z.string().min(1).max(64),
  offset: z.number().int().min(0).default(0).describe("Byte offset of the chunk: 0, then the previous reply's `next`."),
});

export const evidenceGetResultSchema = z.strictObject({
  sample: sampleSummarySchema,
  vehicles: resultPayloadSchema.shape.vehicles.describe("The result's vehicles, boxes normalised to the camera's picture (not to the crop)."),
  sha256: z.string().describe('Hex sha256 of the whole JPEG: check it on the reassembled file.'),
  offset: z.number().int(),
  chunk: z.string().describe('Base64 of the JPEG bytes from offset, at most monitor.evidence.maxChunkBytes of them.'),
  next: z.number().int().nullable().describe('Offset of the next chunk; null when this was the last.'),
});

export type SampleSummary = z.output<typeof sampleSummarySchema>;

export function sampleSummary(sample: EvidenceSample, detections: number): SampleSummary {
  return {
    sampleId: sample.sampleId,
    resultId: sample.resultId,
    cameraId: sample.cameraId,
    model: { id: sample.modelId, version: sample.modelVersion },
    capturedAt: new Date(sample.capturedAt).toISOString(),
    reason: sample.reason,
    disputed: sample.disputed,
    bytes: sample.bytes,
    width: sample.width,
    height: sample.height,
    crop: sample.crop,
    detections,
  };
}
