import type { z } from 'zod';
import { type CommandHandler, defineCommand } from '../mqtt/commands.js';
import { deviceTopics } from '../mqtt/topics.js';
import type { CountingService } from './counting-service.js';
import { countErrorPayloadSchema, countsPayloadSchema, referenceCountsArgsSchema } from './counts-schema.js';

/** `reference-counts`: an independent counter's counts for a period; the reply is the comparison. */
export function referenceCountsCommandHandler(counting: Pick<CountingService, 'compareWithReference'>): CommandHandler {
  return defineCommand({
    description:
      "Counts per vehicle type from an independent counter (inductive loops, ANPR, a person with a clicker) over a period; the agent compares its own closed intervals inside it, per type and in total, publishes the comparison on <prefix>/<deviceId>/counts (kind count-error) and feeds the monitor's countError rules. Refusals: COUNTS_UNKNOWN_TARGET, COUNTS_NO_INTERVALS.",
    args: referenceCountsArgsSchema,
    result: countErrorPayloadSchema,
    run: async (args) => counting.compareWithReference(args),
  });
}

/** The counts topic and command for docs/mqtt.md (scripts/gen-docs.mjs, test/docs); nothing here runs. */
export function countingSchemasForDocs(): {
  topics: Array<{ topic: string; text: string; schema: z.ZodType }>;
  commands: Record<string, CommandHandler>;
} {
  const device = deviceTopics('<prefix>', '<deviceId>');
  const unused = {} as CountingService;
  return {
    topics: [
      {
        topic: device.counts,
        text: 'Interval counts per camera, line, direction and vehicle type, one message per closed interval (`counting.intervalSeconds`), zero counts included (kind `counts`, docs/counting.md).',
        schema: countsPayloadSchema,
      },
      {
        topic: `${device.counts} (count-error)`,
        text: 'On the same topic: each comparison with reference counts (the `reference-counts` command), kind `count-error`.',
        schema: countErrorPayloadSchema,
      },
    ],
    commands: { 'reference-counts': referenceCountsCommandHandler(unused) },
  };
}
