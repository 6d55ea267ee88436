import crypto from 'node:crypto';
import { errorMessage, systemErrorCode } from '../errors.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import type { Db } from './database.js';
import type { AgentEvent, EventPayload } from './event-schema.js';

export interface EventLogDeps {
  db: () => Db | undefined;
  deviceId: string;
  /** Set when events are published: each gets an outbox row in the same transaction. */
  topic: string | undefined;
  expiryMs: number | null;
  onCommitted?: () => void;
  log: Logger;
}

/** Events kept in memory while the database refuses writes (disk full), newest kept. */
const MAX_HELD = 1000;

/**
 * Records events (rare: state changes, errors) in the events table and the outbox, one small
 * transaction each. While the database refuses writes they wait in memory and are written,
 * in order, with the next event that succeeds or on retry().
 */
export class EventLog implements Service {
  readonly name = 'events';
  private held: Array<{ at: number; event: AgentEvent }> = [];
  private insert: ((batch: Array<{ at: number; event: AgentEvent }>) => void) | undefined;
  private preparedFor: Db | undefined;
  recorded = 0;
  droppedWhileFailing = 0;

  constructor(private readonly deps: EventLogDeps) {}

  async start(): Promise<void> {
    this.record({ kind: 'agent-started', detail: { pid: process.pid } });
  }

  async stop(): Promise<void> {
    this.record({ kind: 'agent-stopped', detail: { pid: process.pid } });
  }

  health(): Health {
    return { ok: this.held.length === 0, state: this.held.length === 0 ? 'ok' : 'holding', detail: { recorded: this.recorded, held: this.held.length, dropped: this.droppedWhileFailing } };
  }

  record(event: AgentEvent): void {
    this.held.push({ at: Date.now(), event });
    if (this.held.length > MAX_HELD) {
      this.held.shift();
      this.droppedWhileFailing++;
    }
    this.retry();
  }

  /** Writes the held events; false when the database still refuses them. */
  retry(): boolean {
    if (this.held.length === 0) return true;
    const db = this.deps.db();
    if (!db?.open) return false;
    const batch = this.held;
    try {
      this.statementFor(db)(batch);
      this.held = [];
      this.recorded += batch.length;
      if (this.deps.topic !== undefined) this.deps.onCommitted?.();
      return true;
    } catch (error) {
      // Stays held: the storage condition reacts to the same failure through the writers.
      this.deps.log.warn({ code: systemErrorCode(error) ?? errorMessage(error), held: this.held.length }, 'event not stored yet');
      return false;
    }
  }

  get pending(): number {
    return this.held.length;
  }

  private statementFor(db: Db): (batch: Array<{ at: number; event: AgentEvent }>) => void {
    if (this.insert && this.preparedFor === db) return this.insert;
    const insertEvent = db.prepare('INSERT INTO events (at, kind, subject, code, detail) VALUES (?, ?, ?, ?, ?)');
    const insertOutbox = db.prepare('INSERT INTO outbox (message_id, topic, payload, qos, retain, created_at, expires_at) VALUES (?, ?, ?, 1, 0, ?, ?)');
    const { topic, deviceId, expiryMs } = this.deps;
    this.insert = db.transaction((batch: Array<{ at: number; event: AgentEvent }>) => {
      for (const { at, event } of batch) {
        const detail = event.detail ? JSON.stringify(event.detail) : null;
        insertEvent.run(at, event.kind, event.subject ?? null, event.code ?? null, detail);
        if (topic === undefined) continue;
        const id = crypto.randomUUID();
        const payload: EventPayload = {
          id,
          deviceId,
          at: new Date(at).toISOString(),
          kind: event.kind,
          subject: event.subject ?? null,
          code: event.code ?? null,
          detail: event.detail ?? null,
        };
        insertOutbox.run(id, topic, Buffer.from(JSON.stringify(payload)), at, expiryMs === null ? null : at + expiryMs);
      }
    });
    this.preparedFor = db;
    return this.insert;
  }
}
