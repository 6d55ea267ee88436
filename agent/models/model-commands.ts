import { z } from 'zod';
import { type CommandHandler, defineCommand } from '../mqtt/commands.js';
import { auditEntrySchema, pullArgsSchema, versionSummarySchema } from './model-schemas.js';
import type { ModelPuller } from './puller.js';
import { pushBeginArgsSchema, pushBeginResultSchema, pushEndArgsSchema, pushEndResultSchema } from './push-protocol.js';
import type { PushReceiver } from './push-receiver.js';
import type { ModelUpdateService } from './model-update-service.js';
import type { AuditEntry, ModelVersion } from './registry-store.js';

const iso = (at: number | null): string | null => (at === null ? null : new Date(at).toISOString());

export const versionSummary = (row: ModelVersion): z.output<typeof versionSummarySchema> => ({
  id: row.modelId,
  version: row.version,
  state: row.state,
  source: row.source,
  keyId: row.keyId,
  sha256: row.bundleSha256,
  bytes: row.bundleBytes,
  errorCode: row.errorCode,
  stateAt: new Date(row.stateAt).toISOString(),
  activatedAt: iso(row.activatedAt),
});

export const auditSummary = (entry: AuditEntry): z.output<typeof auditEntrySchema> => ({ ...entry, at: new Date(entry.at).toISOString() });

const versionArgs = z.strictObject({
  modelId: z.string().min(1).max(64),
  version: z.string().min(1).max(64),
  rollback: z.boolean().default(false).describe('Required to activate a version older than the active one.'),
});

/** The push's commands: begin (announce, or resume) and end (ask for the outcome). */
export function pushCommandHandlers(receiver: PushReceiver): Record<string, CommandHandler> {
  return {
    'model-push-begin': defineCommand({
      description:
        'Announces a pushed bundle (size, sha256, chunk size and count; limits in modelUpdates.push) and answers with the chunks still needed: all for a new push, the missing ones for a resumed push.',
      args: pushBeginArgsSchema,
      result: pushBeginResultSchema,
      run: async (args) => receiver.begin(args),
    }),
    'model-push-end': defineCommand({
      description:
        'Ends a push: with every chunk held the bundle is verified (and activated), its outcome on <base>/model/push/<transferId>/result; else MODEL_PUSH_CHUNK_MISSING.',
      args: pushEndArgsSchema,
      result: pushEndResultSchema,
      run: async (args) => receiver.end(args.transferId),
    }),
  };
}

/** model-pull: download a bundle from a URL (verified, then activated unless activate is false). */
export function pullCommandHandlers(puller: ModelPuller): Record<string, CommandHandler> {
  return {
    'model-pull': defineCommand({
      description:
        'Downloads a bundle over HTTP(S) into a .part file (size limit, idle timeout, resume with Range), then verifies and activates it; progress and outcome in the retained model state and the model-update events.',
      args: pullArgsSchema,
      result: z.strictObject({ transferId: z.string(), updateId: z.string() }),
      run: async (args) => puller.pull({ ...args, trigger: 'mqtt-pull' }),
    }),
  };
}

/** The registry's commands: list, history, activate, rollback. */
export function modelCommandHandlers(service: ModelUpdateService): Record<string, CommandHandler> {
  return {
    'model-list': defineCommand({
      description: 'Every model version the registry holds, with its state (downloading … active, previous, retired, rejected).',
      args: z.strictObject({}),
      result: z.strictObject({ versions: z.array(versionSummarySchema) }),
      run: async () => ({ versions: service.registry.registry.list().map(versionSummary) }),
    }),
    'model-history': defineCommand({
      description: 'The audit log of model updates, newest first; with updateId, one update from its trigger to its outcome.',
      args: z.strictObject({ limit: z.number().int().min(1).max(500).default(50), updateId: z.string().optional() }),
      result: z.strictObject({ entries: z.array(auditEntrySchema) }),
      run: async (args) => ({
        entries: (args.updateId ? service.registry.registry.chain(args.updateId) : service.registry.registry.history(args.limit)).map(auditSummary),
      }),
    }),
    'model-activate': defineCommand({
      description: 'Activates a verified version through the hot swap (an older one only with rollback: true).',
      args: versionArgs,
      result: versionSummarySchema,
      run: async (args) => versionSummary(await service.activate(args.modelId, args.version, 'mqtt', args.rollback)),
    }),
    'model-rollback': defineCommand({
      description: 'Returns to the most recent previous version through the hot swap.',
      args: z.strictObject({}),
      result: versionSummarySchema,
      run: async () => versionSummary(await service.rollback('mqtt')),
    }),
  };
}
