import { z } from 'zod';

/**
 * An event: a state change, an error or an alert worth keeping. Stored in the `events` table
 * and published on <prefix>/<deviceId>/events; docs/mqtt.md carries the JSON Schema generated
 * from this one.
 */
export const eventKinds = [
  'agent-started',
  'agent-stopped',
  'camera-state',
  'storage-degraded',
  'storage-recovered',
  'storage-pruned',
  'outbox-overflow',
  'model-swapped',
  'model-rejected',
  'model-update',
  'alert-raised',
  'alert-cleared',
  'retrain-requested',
  'retrain-acknowledged',
  'retrain-superseded',
  'evidence-pruned',
  'self-test-failed',
  'self-test-passed',
] as const;

export type EventKind = (typeof eventKinds)[number];

export const eventPayloadSchema = z.object({
  id: z.string().describe('Unique message id (UUID): the deduplication key.'),
  deviceId: z.string(),
  at: z.string().describe('When it happened (ISO 8601, UTC).'),
  kind: z.enum(eventKinds),
  subject: z.string().nullable().describe('What it is about: a camera id, a model id, the database.'),
  code: z.string().nullable().describe('An error code from docs/errors.md, when the event is about an error.'),
  detail: z.record(z.string(), z.unknown()).nullable().describe('Kind-specific figures, e.g. {from, to} of a camera state, rows pruned.'),
});

export type EventPayload = z.output<typeof eventPayloadSchema>;

export interface AgentEvent {
  kind: EventKind;
  subject?: string | undefined;
  code?: string | undefined;
  detail?: Record<string, unknown> | undefined;
}

/** The payload of one event, as stored in the outbox (JSON text), typed from the schema above. */
export function eventPayload(event: AgentEvent, at: number, id: string, deviceId: string): string {
  const payload: EventPayload = {
    id,
    deviceId,
    at: new Date(at).toISOString(),
    kind: event.kind,
    subject: event.subject ?? null,
    code: event.code ?? null,
    detail: event.detail ?? null,
  };
  return JSON.stringify(payload);
}
