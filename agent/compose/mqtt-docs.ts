import { modelSchemasForDocs } from '../models/model-docs.js';
import { monitorSchemasForDocs } from '../monitor/monitor-docs.js';
import { mqttSchemasMarkdown } from '../mqtt/schema-docs.js';
import { eventPayloadSchema } from '../storage/event-schema.js';
import { telemetryCommandHandler } from '../telemetry/telemetry-command-handler.js';
import { telemetrySampleSchema } from '../telemetry/telemetry-sample.js';

/**
 * The generated part of docs/mqtt.md: every payload and command the agent has, from the schemas
 * the code checks and builds them with. scripts/gen-docs.mjs writes it, test/docs checks it;
 * a subsystem that adds topics or commands adds them here. No handler here ever runs.
 */
export function mqttDocsMarkdown(): string {
  const monitor = monitorSchemasForDocs();
  const models = modelSchemasForDocs();
  return mqttSchemasMarkdown({
    telemetry: telemetrySampleSchema,
    events: eventPayloadSchema,
    commands: {
      telemetry: telemetryCommandHandler(
        () => undefined,
        () => Promise.reject(new Error('docs only')),
      ),
      ...monitor.commands,
      ...models.commands,
    },
    topics: [...monitor.topics, ...models.topics],
  });
}
