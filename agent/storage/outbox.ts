import type { Db } from './database.js';

export interface OutboxMessage {
  id: number;
  messageId: string;
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  /** ms epoch after which the message must not be sent (MQTT 5 message expiry); null: never. */
  expiresAt: number | null;
}

/** What the MQTT side needs from the outbox: read in order, delete once acknowledged. */
export interface OutboxReader {
  peek(afterId: number, limit: number): OutboxMessage[];
  remove(ids: readonly number[]): void;
  depth(): number;
  /** Deletes rows that expired before the broker took them, and counts them (counter outbox_expired). */
  dropExpired(ids: readonly number[]): void;
}

/** A message for the broker, as the writers hand it over. */
export interface OutboxEntry {
  /** The message's UUID: the `id` in its payload, the consumers' deduplication key. */
  messageId: string;
  topic: string;
  payload: string;
  /** When the data it reports was made (ms epoch). */
  createdAt: number;
  /** ms epoch after which it must not be sent; null: never. */
  expiresAt: number | null;
  /**
   * A retained message (the broker keeps the last one per topic for new subscribers): state
   * topics such as alerts, the retrain request and the model state. Default false.
   */
  retain?: boolean;
}

/** Puts one message in the outbox; see outboxEnqueuer. */
export type OutboxEnqueue = (entry: OutboxEntry) => void;

/**
 * The one way into the outbox (QoS 1; retained only when asked). It runs on the caller's connection, so
 * called inside the transaction that stores the data it reports, the data and its message commit
 * together or not at all: nothing is published that is not stored, and nothing stored is left
 * unpublished. The cap on the outbox is OutboxCapPolicy's (outbox-cap.ts).
 */
export function outboxEnqueuer(db: Db): OutboxEnqueue {
  const insert = db.prepare<[string, string, Buffer, number, number, number | null]>(
    'INSERT INTO outbox (message_id, topic, payload, qos, retain, created_at, expires_at) VALUES (?, ?, ?, 1, ?, ?, ?)',
  );
  return (entry) => {
    insert.run(entry.messageId, entry.topic, Buffer.from(entry.payload), entry.retain === true ? 1 : 0, entry.createdAt, entry.expiresAt);
  };
}

/** The expiry of a message made at `at`, for a kind whose expiry is `expiryMs` (null: never). */
export function expiryOf(at: number, expiryMs: number | null | undefined): number | null {
  return expiryMs === null || expiryMs === undefined ? null : at + expiryMs;
}

export class SqliteOutbox implements OutboxReader {
  private readonly peekStatement;
  private readonly removeStatement;
  private readonly depthStatement;
  private readonly removeMany;
  private readonly dropExpiredMany;
  private readonly boundsStatement;
  private readonly counterStatement;
  private readonly dropOldest;

  constructor(db: Db) {
    this.peekStatement = db.prepare<
      [number, number],
      { id: number; message_id: string; topic: string; payload: Buffer; qos: number; retain: number; expires_at: number | null }
    >('SELECT id, message_id, topic, payload, qos, retain, expires_at FROM outbox WHERE id > ? ORDER BY id LIMIT ?');
    this.removeStatement = db.prepare<[number]>('DELETE FROM outbox WHERE id = ?');
    this.depthStatement = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM outbox');
    this.removeMany = db.transaction((ids: readonly number[]) => {
      for (const id of ids) this.removeStatement.run(id);
    });
    const countExpired = db.prepare<[number]>(
      "INSERT INTO counters (name, value) VALUES ('outbox_expired', ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
    );
    this.counterStatement = db.prepare<[string], { value: number }>('SELECT value FROM counters WHERE name = ?');
    this.boundsStatement = db.prepare<[], { lo: number | null; hi: number | null }>('SELECT min(id) AS lo, max(id) AS hi FROM outbox');
    const deleteOldest = db.prepare<[number]>('DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)');
    const countDropped = db.prepare<[number]>(
      "INSERT INTO counters (name, value) VALUES ('outbox_dropped', ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
    );
    this.dropOldest = db.transaction((count: number) => {
      deleteOldest.run(count);
      countDropped.run(count);
    });
    this.dropExpiredMany = db.transaction((ids: readonly number[]) => {
      for (const id of ids) this.removeStatement.run(id);
      countExpired.run(ids.length);
    });
  }

  /**
   * Keeps at most `max` rows, dropping the oldest and counting them (counter outbox_dropped).
   * Cheap when under the cap: ids only grow, so max(id) - min(id) bounds the count.
   */
  enforceCap(max: number): number {
    const bounds = this.boundsStatement.get()!;
    if (bounds.lo === null || bounds.hi === null || bounds.hi - bounds.lo + 1 <= max) return 0;
    const excess = this.depth() - max;
    if (excess <= 0) return 0;
    this.dropOldest(excess);
    return excess;
  }

  dropExpired(ids: readonly number[]): void {
    if (ids.length > 0) this.dropExpiredMany(ids);
  }

  peek(afterId: number, limit: number): OutboxMessage[] {
    return this.peekStatement.all(afterId, limit).map((row) => ({
      id: row.id,
      messageId: row.message_id,
      topic: row.topic,
      payload: row.payload,
      qos: row.qos as 0 | 1 | 2,
      retain: row.retain === 1,
      expiresAt: row.expires_at,
    }));
  }

  remove(ids: readonly number[]): void {
    if (ids.length > 0) this.removeMany(ids);
  }

  depth(): number {
    return this.depthStatement.get()!.n;
  }

  /** A persistent counter (outbox_dropped, outbox_expired); 0 when never set. */
  counter(name: string): number {
    return this.counterStatement.get(name)?.value ?? 0;
  }
}
