import { z } from 'zod';
import { errorFixes, type ErrorCode } from '../errors.js';

/**
 * The shapes of the command topics (docs/mqtt.md carries their JSON Schemas, generated from
 * these by scripts/gen-docs.mjs, so the docs cannot drift from what is enforced).
 */

export const REQUEST_ID_MAX = 128;

/** What a request on <prefix>/<deviceId>/cmd/<name> may hold: nothing else (strict). */
export const commandEnvelopeSchema = z
  .strictObject({
    requestId: z.string().max(REQUEST_ID_MAX).optional().describe(`Echoed in the reply, to pair it with its request (at most ${REQUEST_ID_MAX} characters).`),
    args: z
      .record(z.string(), z.unknown())
      .optional()
      .describe("The command's arguments, checked against its own schema (strict: unknown fields are refused). Absent: {}."),
  })
  .describe('A command request. The payload must be one UTF-8 JSON object; `{}` is a valid request.');

export type CommandEnvelope = z.output<typeof commandEnvelopeSchema>;

/** The router's own error codes (agent/errors.ts has their fixes). */
export const commandErrorCodes = ['COMMAND_TOO_LARGE', 'COMMAND_INVALID_JSON', 'COMMAND_INVALID', 'COMMAND_UNKNOWN', 'COMMAND_FAILED'] as const;
/** A reply's code: the router's own, or the code of an AgentError a handler threw (e.g. FEEDBACK_UNKNOWN_RESULT). */
export type CommandErrorCode = ErrorCode;

export const commandReplySchema = z
  .strictObject({
    requestId: z.string().nullable().describe("The request's requestId; null when it had none (or it was not a string of at most 128 characters)."),
    command: z.string().describe("The command name, from the request's topic."),
    ok: z.boolean().describe('true: the command ran and `result` holds its answer; false: see `code` and `message`.'),
    code: z
      .enum(Object.keys(errorFixes) as [ErrorCode, ...ErrorCode[]])
      .optional()
      .describe(
        "Only when ok is false: one of docs/errors.md. The router's own codes are COMMAND_*; a command's own refusals carry theirs (FEEDBACK_*, RETRAIN_*, EVIDENCE_*, MODEL_*, COUNTS_*).",
      ),
    message: z.string().optional().describe('Only when ok is false: what was wrong, naming the field.'),
    result: z.unknown().optional().describe("Only when ok is true: the command's answer (below, per command)."),
  })
  .describe("The one reply to every request, on <prefix>/<deviceId>/cmd/<name>/reply (or the request's MQTT 5 response topic).");

export type CommandReply = z.output<typeof commandReplySchema>;

/** The arguments of a command that takes none. */
export const noArgsSchema = z.strictObject({}).describe('No arguments: `args` absent or `{}`.');

export const pingResultSchema = z.strictObject({
  pong: z.literal(true),
  at: z.string().describe("The device's clock when it answered (ISO 8601, UTC)."),
});

/** A service's health, as `status` returns it (agent/lifecycle/service.ts `Health`). */
export const healthSchema = z.object({
  ok: z.boolean(),
  state: z.string(),
  detail: z.record(z.string(), z.unknown()).optional().describe('Small, per-service figures (see docs/operations.md).'),
});

export const statusResultSchema = z
  .record(z.string(), healthSchema)
  .describe("Every service's health, by service name (the same record as status.json's `services`).");
