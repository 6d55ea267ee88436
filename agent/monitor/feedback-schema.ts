import { z } from 'zod';
import { vehicleTypes } from '../common/vehicle-types.js';

/**
 * Ground truth from a reviewer, on <prefix>/<deviceId>/cmd/feedback (and <prefix>/fleet/cmd/feedback),
 * and in `cctv-agent feedback send FILE`. Each item has its own id: sending it again changes
 * nothing (idempotent), and the reply says so.
 */
const itemId = z.string().min(1).max(128).describe("The item's own id (e.g. a UUID from the labelling tool): the same id sent twice is stored once.");
const resultId = z.string().min(1).max(64).describe("The result's `id` (the results message, results.message_id).");
const box = z.tuple([z.number().min(0).max(1), z.number().min(0).max(1), z.number().min(0).max(1), z.number().min(0).max(1)]);

const detection = z.number().int().min(0).max(999).describe("Index into the result's vehicles array (from 0).");

export const feedbackItemSchema = z.discriminatedUnion('verdict', [
  z.strictObject({ id: itemId, resultId, detection, verdict: z.literal('correct') }).describe('The detection is right: a vehicle, of the type reported.'),
  z.strictObject({ id: itemId, resultId, detection, verdict: z.literal('false-positive') }).describe('The detection is not a vehicle.'),
  z
    .strictObject({ id: itemId, resultId, detection, verdict: z.literal('wrong-type'), trueType: z.enum(vehicleTypes).describe('What the vehicle really is.') })
    .describe('A vehicle, but of another type.'),
  z
    .strictObject({
      id: itemId,
      resultId,
      verdict: z.literal('missed'),
      type: z.enum(vehicleTypes).describe('The type of the vehicle the model did not report.'),
      box: box.optional().describe("Where it was: [x, y, width, height], normalised like the result's boxes."),
    })
    .describe('A vehicle in the frame that the model did not report.'),
]);

export type FeedbackItem = z.output<typeof feedbackItemSchema>;

/** The command's args; the item limit is monitor.maxFeedbackItems. */
export function feedbackArgsSchema(maxItems: number) {
  return z.strictObject({
    items: z.array(feedbackItemSchema).min(1).max(maxItems).describe(`The verdicts, at most ${maxItems} (monitor.maxFeedbackItems); all are stored or none.`),
  });
}

export const feedbackItemStatus = z.enum(['stored', 'duplicate', 'replaced', 'not-mine']);

export const feedbackResultSchema = z.strictObject({
  stored: z.number().int().nonnegative().describe('New verdicts stored.'),
  duplicates: z.number().int().nonnegative().describe('Items whose id was already stored: nothing changed.'),
  replaced: z.number().int().nonnegative().describe('New ids for a detection that already had a verdict: the newer verdict replaced it.'),
  notMine: z.number().int().nonnegative().describe('Fleet feedback only: items about results this device does not hold (ignored).'),
  items: z.array(z.strictObject({ id: z.string(), status: feedbackItemStatus })),
});

export type FeedbackResult = z.output<typeof feedbackResultSchema>;
