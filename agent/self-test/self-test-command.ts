import { z } from 'zod';
import { type CommandHandler, defineCommand } from '../mqtt/commands.js';
import { goldenVehicleSchema } from './golden.js';
import type { SelfTestService } from './self-test-service.js';

export const selfTestReportSchema = z.strictObject({
  at: z.string(),
  model: z.strictObject({ id: z.string(), version: z.string() }),
  trigger: z.enum(['start', 'interval', 'model-changed', 'command']),
  passed: z.boolean(),
  code: z.enum(['SELF_TEST_FILE_CHANGED', 'SELF_TEST_MISMATCH', 'SELF_TEST_UNAVAILABLE']).nullable(),
  file: z.strictObject({
    loaded: z.string().describe('sha256 the model was loaded with.'),
    onDisk: z.string().nullable().describe('sha256 of the file now; null when it cannot be read.'),
    changed: z.boolean(),
  }),
  golden: z
    .strictObject({
      file: z.string(),
      images: z.number().int(),
      mismatches: z.array(
        z.strictObject({
          image: z.string(),
          problem: z.enum(['missing', 'unexpected', 'score']),
          vehicle: goldenVehicleSchema,
          found: z.number().optional(),
        }),
      ),
    })
    .nullable()
    .describe('null: the model ships no golden samples (only the file is checked).'),
  durationMs: z.number(),
  message: z.string(),
});

/** `self-test`: runs the golden-sample self-test now and answers with its report. */
export function selfTestCommandHandler(selfTest: SelfTestService): CommandHandler {
  return defineCommand({
    description:
      "Runs the golden-sample self-test now (the model file's hash, the golden images through the live session) and answers with the report; a failure also raises the self-test alert.",
    args: z.strictObject({}).prefault({}),
    result: selfTestReportSchema,
    run: async () => selfTestReportSchema.parse(await selfTest.runNow('command')),
  });
}
