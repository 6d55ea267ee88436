import { z } from 'zod';
import type { CommandHandler } from '../mqtt/commands.js';
import { telemetrySampleSchema, type TelemetrySample } from './telemetry-sample.js';

export const telemetryArgsSchema = z.strictObject({
  fresh: z
    .boolean()
    .default(false)
    .describe('true: take a sample now (it is also stored and published); false: the latest sample, or a new one if none was taken yet.'),
});

/** `telemetry`: the latest (or a fresh) telemetry sample, for a fleet tool that asks now. */
export function telemetryCommandHandler(latest: () => TelemetrySample | undefined, takeSample: () => Promise<TelemetrySample>): CommandHandler {
  const handler: CommandHandler<typeof telemetryArgsSchema> = {
    description: 'The latest telemetry sample, or a fresh one with {"fresh": true}.',
    args: telemetryArgsSchema,
    result: telemetrySampleSchema,
    run: async (args) => {
      const current = latest();
      return args.fresh || current === undefined ? takeSample() : current;
    },
  };
  return handler as unknown as CommandHandler;
}
