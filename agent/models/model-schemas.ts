import { z } from 'zod';
import { versionStates } from './registry-store.js';

const modelRef = z.strictObject({ id: z.string(), version: z.string() });

/** Retained on <prefix>/<deviceId>/model/state: what runs, what is in flight, the last error. */
export const modelStatePayloadSchema = z.strictObject({
  deviceId: z.string(),
  at: z.string().describe('ISO 8601, UTC.'),
  active: modelRef
    .extend({ keyId: z.string().nullable(), sha256: z.string().nullable(), activatedAt: z.string().nullable() })
    .nullable()
    .describe('The version serving now.'),
  previous: z.array(modelRef).describe('Versions kept on disk for a rollback, newest first.'),
  inFlight: z
    .array(
      z.strictObject({
        transferId: z.string(),
        kind: z.enum(['push', 'pull']),
        bytes: z.number().int().describe('Bytes received so far.'),
        size: z.number().int().describe('Announced bundle size.'),
        startedAt: z.string(),
      }),
    )
    .describe('Transfers under way or waiting for a resume.'),
  lastError: z
    .strictObject({ code: z.string(), message: z.string(), at: z.string(), updateId: z.string() })
    .nullable()
    .describe('The last refused or failed step, with its error code (docs/errors.md).'),
});
export type ModelStatePayload = z.output<typeof modelStatePayloadSchema>;

export const versionSummarySchema = z.strictObject({
  id: z.string(),
  version: z.string(),
  state: z.enum(versionStates),
  source: z.string(),
  keyId: z.string().nullable(),
  sha256: z.string().nullable(),
  bytes: z.number().int().nullable(),
  errorCode: z.string().nullable(),
  stateAt: z.string(),
  activatedAt: z.string().nullable(),
});

export const auditEntrySchema = z.strictObject({
  at: z.string(),
  updateId: z.string().describe('One update, from its trigger to its outcome, shares this id.'),
  modelId: z.string().nullable(),
  version: z.string().nullable(),
  step: z.string().describe('received, verified, rejected, activating, activated, rolled-back, activation-failed, retired, abandoned, ...'),
  trigger: z.string().describe('mqtt-push, http-pull, fleet-announcement, cli, rollback, restart, config.'),
  outcome: z.enum(['ok', 'refused', 'failed', 'info']),
  code: z.string().nullable(),
  detail: z.record(z.string(), z.unknown()).nullable().describe('Hashes, key id, sizes, timings, the message of an error.'),
});

/** Retained on <prefix>/fleet/models/<model id> by whoever publishes models: the newest version and where to get it. */
export const modelAnnouncementSchema = z.strictObject({
  modelId: z.string().min(1).max(64),
  version: z.string().min(1).max(64),
  url: z.url({ protocol: /^https?$/ }).describe('Where the bundle is served (http or https; Range requests let a download resume).'),
  size: z.number().int().positive().describe('The bundle size in bytes: a larger download is refused.'),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .describe('The sha256 of the whole bundle file.'),
  expiresAt: z.iso.datetime().optional().describe('After this instant the announcement is ignored (a stale announcement replayed is not acted on).'),
});
export type ModelAnnouncement = z.output<typeof modelAnnouncementSchema>;

export const pullArgsSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  size: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  activate: z.boolean().default(true),
});
