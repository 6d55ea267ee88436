import { z } from 'zod';
import { vehicleTypes } from '../common/vehicle-types.js';

/**
 * The model manifest: the contract every model and every model update is held to.
 * docs/model-manifest.md documents it; `manifestJsonSchema()` publishes it as JSON Schema.
 */

export { vehicleTypes, type VehicleType } from '../common/vehicle-types.js';

const triple = z.tuple([z.number(), z.number(), z.number()]);

const resizeSchema = z.discriminatedUnion('mode', [
  z.strictObject({
    mode: z.literal('letterbox'),
    padValue: z.number().int().min(0).max(255).default(114),
    anchor: z.enum(['top-left', 'center']).default('top-left').describe('YOLOX pads right and bottom (top-left anchor).'),
  }),
  z.strictObject({ mode: z.literal('stretch') }),
  z.strictObject({ mode: z.literal('center-crop') }),
]);

const inputSchema = z.strictObject({
  name: z.string().min(1).describe('The ONNX graph input name.'),
  layout: z.enum(['NCHW', 'NHWC']),
  dtype: z.enum(['float32', 'uint8']),
  width: z.number().int().min(8).max(4096),
  height: z.number().int().min(8).max(4096),
  colorOrder: z.enum(['BGR', 'RGB']),
  normalization: z
    .strictObject({
      mean: triple.default([0, 0, 0]).describe('Per channel, in colorOrder, on the 0..255 scale.'),
      std: triple.default([1, 1, 1]).describe('value = (pixel - mean) / std'),
    })
    .prefault({}),
  resize: resizeSchema,
});

const detectionOutput = z.strictObject({
  name: z.string().min(1),
  decoder: z.enum(['yolox', 'boxes']).describe('yolox: [1, cells, 5+C] grid offsets over strides; boxes: [1, N, 4+1+C] with cx, cy, w, h in input pixels.'),
  strides: z.array(z.number().int().positive()).default([8, 16, 32]),
  scoreThreshold: z.number().min(0).max(1).default(0.3),
  nmsIouThreshold: z.number().min(0).max(1).default(0.45),
  nms: z
    .enum(['class-agnostic', 'per-class'])
    .default('class-agnostic')
    .describe(
      'class-agnostic: one box per object whatever its class (the classes are alternative labels of one vehicle; the best other type is kept as the runner-up). per-class: boxes of different classes never suppress each other.',
    ),
  maxDetections: z.number().int().min(1).max(1000).default(100),
});

const classificationOutput = z.strictObject({
  name: z.string().min(1),
  scores: z.enum(['probabilities', 'logits']).describe('logits get a softmax.'),
  topK: z.number().int().min(1).max(100).default(5),
});

/** A file carried by a model bundle: a plain name (no directory), its size and sha256. */
const bundleFileSchema = z.strictObject({
  path: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, { error: 'a plain file name: letters, digits, ".", "_" or "-", no directory' })
    .describe('Name of the file inside the bundle.'),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

const bundleSchema = z.strictObject({
  format: z.literal(1).describe('The bundle format version.'),
  files: z
    .array(bundleFileSchema)
    .min(1)
    .max(32)
    .describe('Every file of the bundle besides the manifest and its signature; the signature covers these hashes.'),
  createdAt: z.string().optional().describe('When the bundle was packed (ISO 8601).'),
});

export type BundleFile = z.output<typeof bundleFileSchema>;

const base = {
  schemaVersion: z.literal(1),
  id: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, { error: 'lower-case letters, digits, ".", "_" or "-"' }),
  version: z.string().min(1).max(64),
  description: z.string().optional(),
  file: z.string().min(1).describe("ONNX file, relative to the manifest's directory or the assets directory."),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional()
    .describe('Checked at load when present.'),
  input: inputSchema,
  labels: z
    .union([z.array(z.string()).min(1), z.strictObject({ file: z.string().min(1) })])
    .describe('Class names in output order, or a file with one per line.'),
  vehicleTypes: z.record(z.string(), z.enum(vehicleTypes)).describe('Label -> vehicle type; detections of labels not listed are not reported.'),
  referenceStatistics: z
    .strictObject({ file: z.string().min(1) })
    .optional()
    .describe('Drift reference shipped with the model (docs/monitoring.md): used instead of capturing one on each camera.'),
  calibration: z
    .strictObject({ file: z.string().min(1) })
    .optional()
    .describe('Score calibration table for the label-free precision estimate, used until feedback can calibrate it.'),
  agreement: z
    .strictObject({
      reference: z.string().min(1).describe('Id of the model this one was measured against (a quantized model: its float original).'),
      precision: z.number().min(0).max(1).describe("Share of this model's vehicles the reference also found (IoU >= 0.5)."),
      recall: z.number().min(0).max(1).describe("Share of the reference's vehicles this model also found."),
      frames: z.number().int().min(1).describe('Frames the figures were measured on.'),
      measuredOn: z.string().optional().describe('Where the figures come from (frames, CPU, test or report).'),
    })
    .optional()
    .describe('How this model agrees with a reference: model.manifest "auto" only picks it when both figures reach model.autoMinAgreement.'),
  golden: z
    .strictObject({ file: z.string().min(1) })
    .optional()
    .describe('Golden samples: images with their expected detections, for the self-test.'),
  bundle: bundleSchema.optional().describe('Present in a model bundle (docs/model-updates.md): the format and every file the bundle carries.'),
};

export const manifestSchema = z.discriminatedUnion('task', [
  z.strictObject({ ...base, task: z.literal('detection'), output: detectionOutput }),
  z.strictObject({ ...base, task: z.literal('classification'), output: classificationOutput }),
]);

export type ModelManifest = z.output<typeof manifestSchema>;
export type DetectionManifest = Extract<ModelManifest, { task: 'detection' }>;
export type ClassificationManifest = Extract<ModelManifest, { task: 'classification' }>;

export function manifestJsonSchema(): unknown {
  return z.toJSONSchema(manifestSchema, { io: 'input' });
}
