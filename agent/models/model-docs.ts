import type { z } from 'zod';
import type { CommandHandler } from '../mqtt/commands.js';
import { deviceTopics } from '../mqtt/topics.js';
import { modelCommandHandlers } from './model-commands.js';
import { modelStatePayloadSchema } from './model-schemas.js';
import type { ModelUpdateService } from './model-update-service.js';

/** The model updates' topics and commands for docs/mqtt.md (scripts/gen-docs.mjs, test/docs); nothing here runs. */
export function modelSchemasForDocs(): { topics: Array<{ topic: string; text: string; schema: z.ZodType }>; commands: Record<string, CommandHandler> } {
  const device = deviceTopics('<prefix>', '<deviceId>');
  const unused = {} as ModelUpdateService;
  return {
    topics: [
      {
        topic: device.modelState,
        text: 'Retained: the active model version, the previous ones kept for a rollback, transfers in flight and the last error (docs/model-updates.md). Every lifecycle step is also an event of kind `model-update` on the events topic.',
        schema: modelStatePayloadSchema,
      },
    ],
    commands: modelCommandHandlers(unused),
  };
}
