import { z } from 'zod';
import { vehicleTypes } from '../inference/manifest.js';

/**
 * `cctv-agent model run --json`: what a model sees on still images, through the live pipeline's
 * preprocessing, decoding and suppression. The JSON Schema in docs/cli.md is generated from it.
 */
export const modelRunOutputSchema = z.strictObject({
  model: z.strictObject({
    id: z.string(),
    version: z.string(),
    file: z.string().describe('The ONNX file that ran.'),
    scoreThreshold: z.number().nullable().describe('The score threshold in force (detectors); null for classifiers.'),
    nms: z.enum(['class-agnostic', 'per-class']).nullable().describe('The suppression rule (detectors); null for classifiers.'),
  }),
  images: z.array(
    z.strictObject({
      file: z.string(),
      width: z.number().int().nonnegative().describe("The picture's size as ffmpeg decoded it (0 when unknown)."),
      height: z.number().int().nonnegative(),
      inferenceMs: z.number().nonnegative(),
      vehicles: z.array(
        z.strictObject({
          type: z.enum(vehicleTypes),
          label: z.string(),
          score: z.number().min(0).max(1),
          box: z.tuple([z.number(), z.number(), z.number(), z.number()]).describe('[x, y, width, height], normalised to the picture (0..1, origin top left).'),
          runnerUp: z.strictObject({ type: z.enum(vehicleTypes), label: z.string(), score: z.number().min(0).max(1) }).optional(),
        }),
      ),
      top: z
        .array(z.strictObject({ label: z.string(), type: z.enum(vehicleTypes).nullable(), score: z.number() }))
        .optional()
        .describe('Classifiers: the top-k classes.'),
    }),
  ),
});

export type ModelRunOutput = z.output<typeof modelRunOutputSchema>;

/** The generated part of docs/cli.md: the JSON Schema of `model run --json`. */
export function modelRunOutputMarkdown(): string {
  return ['```json', JSON.stringify(z.toJSONSchema(modelRunOutputSchema, { io: 'output' }), null, 2), '```'].join('\n');
}
