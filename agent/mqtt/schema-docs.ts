import { z } from 'zod';
import { pingCommandHandler, statusCommandHandler } from './builtin-commands.js';
import { commandEnvelopeSchema, commandReplySchema } from './command-schemas.js';
import type { CommandHandler } from './commands.js';
import { resultPayloadSchema } from '../storage/result-payload.js';
import { deviceTopics } from './topics.js';

/** The payload schemas owned by other folders, handed in by scripts/gen-docs.mjs and the docs test. */
export interface PayloadSchemaInputs {
  telemetry: z.ZodType;
  /** agent/storage/event-schema.ts eventPayloadSchema. */
  events: z.ZodType;
  /** Commands beyond the built-in ping and status (as registered in agent/daemon.ts). */
  commands?: Record<string, CommandHandler>;
  /** Other payloads the agent publishes, by topic (the monitor's quality, alerts, retrain). */
  topics?: Array<{ topic: string; text: string; schema: z.ZodType }>;
}

/** The commands every agent answers, for the docs (their run() is never called here). */
export function builtinCommandsForDocs(): Record<string, CommandHandler> {
  return { ping: pingCommandHandler(), status: statusCommandHandler(() => ({})) };
}

/** Payloads we send are documented as produced ('output'); requests as accepted ('input': defaults are optional). */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output' = 'output'): string {
  return ['```json', JSON.stringify(z.toJSONSchema(schema, { io }), null, 2), '```'].join('\n');
}

/**
 * The generated part of docs/mqtt.md: one JSON Schema per payload, from the very schemas the
 * code builds or checks payloads with (zod 4 toJSONSchema, output side).
 */
export function mqttSchemasMarkdown(inputs: PayloadSchemaInputs): string {
  const topics = deviceTopics('<prefix>', '<deviceId>');
  const commands = { ...builtinCommandsForDocs(), ...inputs.commands };
  const out: string[] = [];
  const section = (title: string, text: string, schema: z.ZodType, io: 'input' | 'output' = 'output'): void => {
    out.push(`### ${title}`, '', text, '', jsonSchema(schema, io), '');
  };
  section(`\`${topics.results}\``, 'One message per inferred frame.', resultPayloadSchema);
  section(`\`${topics.telemetry}\``, 'One message per telemetry sample (`telemetry.intervalSeconds`).', inputs.telemetry);
  section(`\`${topics.events}\``, 'One message per event (state changes, errors, alerts).', inputs.events);
  for (const extra of inputs.topics ?? []) section(`\`${extra.topic}\``, extra.text, extra.schema);
  section(
    `\`${topics.command('<name>')}\` (request)`,
    "Every command takes this envelope; `args` is checked against the command's own schema below.",
    commandEnvelopeSchema,
    'input',
  );
  section(`\`${topics.commandReply('<name>')}\` (reply)`, 'Exactly one per request.', commandReplySchema);
  for (const name of Object.keys(commands).sort()) {
    const handler = commands[name]!;
    out.push(`#### Command \`${name}\``, '', handler.description, '', '`args`:', '', jsonSchema(handler.args, 'input'), '');
    if (handler.result) out.push('`result` of a successful reply:', '', jsonSchema(handler.result), '');
  }
  return out.join('\n').trimEnd();
}
