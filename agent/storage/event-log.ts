import crypto from 'node:crypto';
import { errorMessage, systemErrorCode } from '../errors.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import type { Db } from './database.js';
import { eventPayload, type AgentEvent } from './event-schema.js';
import { expiryOf, outboxEnqueuer } from './outbox.js';

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
    return {
      ok: this.held.length === 0,
      state: this.held.length === 0 ? 'ok' : 'holding',
      detail: { recorded: this.recorded, held: this.held.length, dropped: this.droppedWhileFailing },
    };
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
    const enqueue = outboxEnqueuer(db);
    const { topic, deviceId, expiryMs } = this.deps;
    this.insert = db.transaction((batch: Array<{ at: number; event: AgentEvent }>) => {
      for (const { at, event } of batch) {
        const detail = event.detail ? JSON.stringify(event.detail) : null;
        insertEvent.run(at, event.kind, event.subject ?? null, event.code ?? null, detail);
        if (topic === undefined) continue;
        const id = crypto.randomUUID();
        enqueue({ messageId: id, topic, payload: eventPayload(event, at, id, deviceId), createdAt: at, expiresAt: expiryOf(at, expiryMs) });
      }
    });
    this.preparedFor = db;
    return this.insert;
  }
}
