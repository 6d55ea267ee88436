import { countingSchemasForDocs } from '../counting/counting-commands.js';
import { modelSchemasForDocs } from '../models/model-docs.js';
import { driftReferenceResetCommandHandler } from '../drift/drift-commands.js';
import { driftPayloadSchema } from '../drift/drift-schema.js';
import type { DriftService } from '../drift/drift-service.js';
import { evidenceCommandsForDocs } from '../evidence/evidence-docs.js';
import { monitorSchemasForDocs } from '../monitor/monitor-docs.js';
import { mqttSchemasMarkdown } from '../mqtt/schema-docs.js';
import { selfTestCommandHandler } from '../self-test/self-test-command.js';
import type { SelfTestService } from '../self-test/self-test-service.js';
import { deviceTopics } from '../mqtt/topics.js';
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
  const device = deviceTopics('<prefix>', '<deviceId>');
  // Drift: its one topic and one command, beside the monitor's.
  const driftTopics = [
    {
      topic: device.drift,
      text: 'Each compared window per camera and model version (every monitor.drift.windowSeconds): the drift tests per feature, the verdict, and the label-free precision estimate.',
      schema: driftPayloadSchema,
    },
  ];
  // counting (issue #18)
  const counting = countingSchemasForDocs();
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
      'drift-reference-reset': driftReferenceResetCommandHandler({} as DriftService),
      'self-test': selfTestCommandHandler({} as SelfTestService),
      ...counting.commands,
      // Evidence samples (#15).
      ...evidenceCommandsForDocs(),
      ...models.commands,
    },
    topics: [...monitor.topics, ...driftTopics, ...counting.topics, ...models.topics],
  });
}
