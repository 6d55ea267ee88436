import { z } from 'zod';
import { vehicleTypes } from '../common/vehicle-types.js';

/**
 * A model's golden samples (named by its manifest's `golden.file`): still images with the
 * vehicles the model must find on them. The tolerances absorb what legitimately differs
 * between machines (int8 kernels differ between AVX2 and VNNI CPUs; ffmpeg builds scale a
 * little differently) and nothing more: a changed weight file or a broken runtime moves
 * scores and boxes far beyond them.
 */
export const goldenVehicleSchema = z.strictObject({
  type: z.enum(vehicleTypes),
  score: z.number().min(0).max(1),
  box: z.tuple([z.number(), z.number(), z.number(), z.number()]).describe('[x, y, width, height], normalised 0..1, as in results.'),
});

export const goldenFileSchema = z.strictObject({
  schemaVersion: z.literal(1),
  description: z.string().optional(),
  tolerance: z
    .strictObject({
      score: z.number().min(0).max(1).default(0.12).describe('Largest score difference of a matched vehicle.'),
      iou: z.number().min(0).max(1).default(0.6).describe('Smallest overlap of a matched box with the expected one.'),
      decisiveScore: z
        .number()
        .min(0)
        .max(1)
        .default(0.5)
        .describe('Expected vehicles scored at least this must be found; found vehicles scored at least this plus `score` must be expected.'),
    })
    .prefault({}),
  samples: z
    .array(
      z.strictObject({
        image: z.string().min(1).describe('Image file, relative to this file (or in the assets directory).'),
        vehicles: z.array(goldenVehicleSchema),
      }),
    )
    .min(1),
});
export type GoldenFile = z.output<typeof goldenFileSchema>;
export type GoldenVehicle = z.output<typeof goldenVehicleSchema>;

export interface Mismatch {
  image: string;
  problem: 'missing' | 'unexpected' | 'score';
  vehicle: GoldenVehicle;
  /** The found vehicle's score, for 'score'. */
  found?: number;
}

function iou(a: readonly number[], b: readonly number[]): number {
  const x1 = Math.max(a[0]!, b[0]!);
  const y1 = Math.max(a[1]!, b[1]!);
  const x2 = Math.min(a[0]! + a[2]!, b[0]! + b[2]!);
  const y2 = Math.min(a[1]! + a[3]!, b[1]! + b[3]!);
  const inter = Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
  const union = a[2]! * a[3]! + b[2]! * b[3]! - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * One image's vehicles against its expectation. Vehicles near the decision line (between the
 * model's threshold and `decisiveScore`) may come and go between CPUs, so only decisive ones
 * are checked both ways: each decisive expected vehicle must be found (same type, overlapping
 * box, score within tolerance), and each clearly scored found vehicle must have been expected.
 */
export function compareGolden(
  image: string,
  expected: readonly GoldenVehicle[],
  found: readonly GoldenVehicle[],
  tolerance: GoldenFile['tolerance'],
): Mismatch[] {
  const mismatches: Mismatch[] = [];
  const bestMatch = (vehicle: GoldenVehicle, among: readonly GoldenVehicle[]): GoldenVehicle | undefined => {
    let best: GoldenVehicle | undefined;
    let bestOverlap = tolerance.iou;
    for (const other of among) {
      if (other.type !== vehicle.type) continue;
      const overlap = iou(vehicle.box, other.box);
      if (overlap >= bestOverlap) {
        best = other;
        bestOverlap = overlap;
      }
    }
    return best;
  };
  for (const vehicle of expected) {
    if (vehicle.score < tolerance.decisiveScore) continue;
    const match = bestMatch(vehicle, found);
    if (!match) mismatches.push({ image, problem: 'missing', vehicle });
    else if (Math.abs(match.score - vehicle.score) > tolerance.score) mismatches.push({ image, problem: 'score', vehicle, found: match.score });
  }
  for (const vehicle of found) {
    if (vehicle.score < tolerance.decisiveScore + tolerance.score) continue;
    if (!bestMatch(vehicle, expected)) mismatches.push({ image, problem: 'unexpected', vehicle });
  }
  return mismatches;
}
