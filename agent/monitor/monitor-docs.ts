import type { z } from 'zod';
import type { CommandHandler } from '../mqtt/commands.js';
import { deviceTopics, fleetTopics } from '../mqtt/topics.js';
import { feedbackCommandHandler, retrainAckCommandHandler, retrainCommandHandler } from './monitor-commands.js';
import type { MonitorService } from './monitor-service.js';
import { alertsPayloadSchema, qualityPayloadSchema, retrainPayloadSchema } from './quality-schema.js';

/** The monitor's topics and commands for docs/mqtt.md (scripts/gen-docs.mjs, test/docs); nothing here runs. */
export function monitorSchemasForDocs(maxFeedbackItems = 500): {
  topics: Array<{ topic: string; text: string; schema: z.ZodType }>;
  commands: Record<string, CommandHandler>;
} {
  const device = deviceTopics('<prefix>', '<deviceId>');
  const fleet = fleetTopics('<prefix>');
  const unused = {} as MonitorService;
  return {
    topics: [
      {
        topic: device.quality,
        text: 'Measured quality per camera and model version, on each new feedback and every monitor.publishIntervalSeconds.',
        schema: qualityPayloadSchema,
      },
      { topic: device.alerts, text: 'Retained: the alerts raised now.', schema: alertsPayloadSchema },
      {
        topic: device.retrain,
        text: `Retained: the latest change of a retrain request. A new request is repeated (not retained) on \`${fleet.retrain}\`.`,
        schema: retrainPayloadSchema,
      },
    ],
    commands: {
      feedback: feedbackCommandHandler(unused, maxFeedbackItems, 'device'),
      retrain: retrainCommandHandler(unused),
      'retrain-ack': retrainAckCommandHandler(unused),
    },
  };
}
