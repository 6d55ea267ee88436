import type { Health } from '../lifecycle/service.js';
import { noArgsSchema, pingResultSchema, statusResultSchema } from './command-schemas.js';
import { defineCommand, type CommandHandler } from './commands.js';

/** `ping`: is the device there and answering? */
export function pingCommandHandler(now: () => Date = () => new Date()): CommandHandler {
  return defineCommand({
    description: 'Answers at once: the device is connected and its command path works.',
    args: noArgsSchema,
    result: pingResultSchema,
    run: async () => ({ pong: true, at: now().toISOString() }),
  });
}

/** `status`: every service's health, as the runner reports it (the same record as status.json). */
export function statusCommandHandler(health: () => Record<string, Health>): CommandHandler {
  return defineCommand({
    description: "Every service's health: cameras, model, storage, MQTT link, outbox, commands.",
    args: noArgsSchema,
    result: statusResultSchema,
    run: async () => health(),
  });
}
