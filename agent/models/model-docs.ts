import { z } from 'zod';
import type { CommandHandler } from '../mqtt/commands.js';
import { deviceTopics, fleetTopics } from '../mqtt/topics.js';
import { modelCommandHandlers, pullCommandHandlers, pushCommandHandlers } from './model-commands.js';
import { modelAnnouncementSchema, modelStatePayloadSchema } from './model-schemas.js';
import type { ModelPuller } from './puller.js';
import { pushAckSchema, pushResultSchema } from './push-protocol.js';
import type { PushReceiver } from './push-receiver.js';
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
      {
        topic: `${device.base}/model/push/<transferId>/chunk/<index>`,
        text: 'A pushed chunk (binary, not JSON): the sha256 of the data (32 bytes), then the data. Sent by `cctv-agent model push`, received by the device.',
        schema: z.string().describe('Binary: 32 bytes of sha256 over the data, then the data (at most modelUpdates.push.maxChunkBytes).'),
      },
      { topic: `${device.base}/model/push/<transferId>/ack`, text: "The device's acknowledgement of each chunk: it paces the sender.", schema: pushAckSchema },
      {
        topic: `${device.base}/model/push/<transferId>/result`,
        text: 'The outcome of a push once verified (and activated), or its refusal with an error code.',
        schema: pushResultSchema,
      },
      {
        topic: fleetTopics('<prefix>').model('<modelId>'),
        text: 'Retained, published by whoever releases models: the newest version of a model and where to download it. A device running that model pulls a newer version (modelUpdates.pull.announcements: once a retrain request is pending, by default).',
        schema: modelAnnouncementSchema,
      },
    ],
    commands: { ...modelCommandHandlers(unused), ...pushCommandHandlers({} as PushReceiver), ...pullCommandHandlers({} as ModelPuller) },
  };
}
