import { errorMessage } from '../errors.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import type { OutboxMessage, OutboxReader } from '../storage/outbox.js';

const STOP_WAIT_MS = 2000;
const IDLE_PASS_MS = 1000;
/** Messages published and not yet acknowledged, at most: enough to keep a LAN broker busy. */
export const DEFAULT_MAX_IN_FLIGHT = 500;

export interface Publisher {
  readonly connected: boolean;
  /** `expiresAt` (ms epoch, or null: never) becomes the MQTT 5 message expiry where v5 is in use. */
  publish(topic: string, payload: Buffer, qos: 0 | 1 | 2, retain: boolean, expiresAt?: number | null): Promise<void>;
  onConnect(listener: () => void): void;
}

export interface OutboxDrainDeps {
  outbox: () => OutboxReader;
  publisher: Publisher;
  /** Rows read and published per step (mqtt.publishBatch). */
  batchSize: number;
  /** Unacknowledged messages at most; default DEFAULT_MAX_IN_FLIGHT (never below batchSize). */
  maxInFlight?: number;
  log: Logger;
  now?: () => number;
}

interface InFlightBatch {
  rows: OutboxMessage[];
  outcomes: Promise<PromiseSettledResult<void>[]>;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A stable key of an error for "log once per kind": its code, never its text. */
function errorKey(error: unknown): string {
  const code = typeof error === 'object' && error !== null && 'code' in error ? (error as { code: unknown }).code : undefined;
  return typeof code === 'string' || typeof code === 'number' ? String(code) : 'no-code';
}

/**
 * Publishes outbox rows in id order and deletes each acknowledged prefix.
 *
 * Pipelined: up to `maxInFlight` messages are out at once, in batches of `batchSize`; the
 * oldest batch is awaited, its acknowledged prefix deleted in one transaction, the window
 * topped up, and the event loop given a turn (setImmediate) before the next batch, so a large
 * backlog drains at the broker's pace without holding up frames and results.
 *
 * A row whose publish failed stays, and so does everything after it (later batches that were
 * acknowledged too are not deleted): the next pass resends from the first failure, so delivery
 * is at-least-once and in order; consumers dedupe by message id. Rows past their expiry are
 * deleted and counted (outbox_expired) instead of sent.
 */
export class OutboxDrain implements Service {
  readonly name = 'outbox-drain';
  private running = false;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private pendingWake = false;
  private published = 0;
  private expired = 0;
  private inFlight = 0;
  private lastError: string | undefined;
  /** The outbox depth last read: health() still reports it once the database is closed (null before any read). */
  private lastDepth: number | null = null;
  private lastErrorKey: string | undefined;
  private readonly maxInFlight: number;
  private readonly now: () => number;

  constructor(private readonly deps: OutboxDrainDeps) {
    this.maxInFlight = Math.max(deps.batchSize, deps.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT);
    this.now = deps.now ?? Date.now;
  }

  async start(): Promise<void> {
    this.running = true;
    this.deps.publisher.onConnect(() => this.wake());
    this.loop = this.run();
  }

  /** New rows were committed, or the link came back. */
  wake(): void {
    this.pendingWake = true;
    this.wakeUp?.();
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.pendingWake = false;
      let moved = 0;
      let failed = false;
      try {
        if (this.deps.publisher.connected) ({ moved, failed } = await this.drainPass());
      } catch (error) {
        // The store went away under us (shutdown) or refused a read: retry on the next pass.
        failed = true;
        this.noteError(error, 'outbox drain failed');
      }
      // After a failure wait (for the reconnect, or the retry tick) instead of spinning.
      if (!failed && (moved > 0 || this.pendingWake)) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, IDLE_PASS_MS);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = undefined;
    }
  }

  /** One pass from the oldest row: until the outbox is empty, a publish fails, or the link drops. */
  private async drainPass(): Promise<{ moved: number; failed: boolean }> {
    const outbox = this.deps.outbox();
    const { publisher, batchSize } = this.deps;
    const window: InFlightBatch[] = [];
    let cursor = 0;
    let exhausted = false;
    let moved = 0;
    let failed = false;
    try {
      while (this.running) {
        while (!failed && !exhausted && this.inFlight < this.maxInFlight && publisher.connected) {
          const rows = outbox.peek(cursor, Math.min(batchSize, this.maxInFlight - this.inFlight));
          if (rows.length === 0) {
            exhausted = true;
            break;
          }
          cursor = rows[rows.length - 1]!.id;
          const live = this.dropExpired(outbox, rows);
          // A long run of expired rows is deleted batch by batch, not in one sitting.
          if (live.length < rows.length) await yieldToEventLoop();
          if (live.length === 0) continue;
          this.inFlight += live.length;
          window.push({
            rows: live,
            outcomes: Promise.allSettled(live.map((row) => publisher.publish(row.topic, row.payload, row.qos, row.retain, row.expiresAt))),
          });
          // One batch per turn of the event loop, also while the window fills up.
          await yieldToEventLoop();
        }
        const batch = window.shift();
        if (!batch) break;
        const outcomes = await batch.outcomes;
        this.inFlight -= batch.rows.length;
        if (failed) continue; // past the first failure nothing is deleted: it is all resent
        let acknowledged = 0;
        while (acknowledged < outcomes.length && outcomes[acknowledged]!.status === 'fulfilled') acknowledged++;
        outbox.remove(batch.rows.slice(0, acknowledged).map((row) => row.id));
        this.published += acknowledged;
        moved += acknowledged;
        if (acknowledged < outcomes.length) {
          failed = true;
          this.noteError((outcomes[acknowledged] as PromiseRejectedResult).reason, 'outbox publish failed: will resend', {
            unacknowledged: outcomes.length - acknowledged,
          });
        } else {
          this.lastError = undefined;
          this.lastErrorKey = undefined;
        }
        // Let frames, results and timers run between batches.
        await yieldToEventLoop();
      }
    } finally {
      // Stopping mid-pass: what is still out settles on its own; its rows stay for next time.
      for (const batch of window) this.inFlight -= batch.rows.length;
    }
    // The link dropped between batches: not an error to log, but wait for it instead of spinning.
    return { moved, failed: failed || (!exhausted && !publisher.connected) };
  }

  /** Deletes (and counts) rows whose expiry passed; returns the others, in order. */
  private dropExpired(outbox: OutboxReader, rows: OutboxMessage[]): OutboxMessage[] {
    const now = this.now();
    const expired: number[] = [];
    const live: OutboxMessage[] = [];
    for (const row of rows) {
      if (row.expiresAt !== null && row.expiresAt <= now) expired.push(row.id);
      else live.push(row);
    }
    if (expired.length > 0) {
      outbox.dropExpired(expired);
      if (this.expired === 0)
        this.deps.log.warn({ dropped: expired.length }, 'outbox messages expired before the broker took them: dropped (counted in outbox_expired)');
      this.expired += expired.length;
    }
    return live;
  }

  private noteError(error: unknown, message: string, fields: Record<string, unknown> = {}): void {
    const key = errorKey(error);
    if (this.running && key !== this.lastErrorKey) this.deps.log.warn({ err: errorMessage(error), code: key, ...fields }, message);
    this.lastErrorKey = key;
    this.lastError = errorMessage(error);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wakeUp?.();
    // A publish stuck on a dead link must not hold the shutdown: its row stays in the outbox.
    await Promise.race([this.loop, new Promise((resolve) => setTimeout(resolve, STOP_WAIT_MS).unref())]);
  }

  health(): Health {
    let depth: number | null = this.lastDepth;
    let readError: string | undefined;
    try {
      depth = this.deps.outbox().depth();
      this.lastDepth = depth;
    } catch (error) {
      // Once stopped, the database is closed: the depth last read stands, and that is no error.
      if (this.running) readError = errorMessage(error);
    }
    const lastError = readError ?? this.lastError;
    return {
      ok: lastError === undefined,
      state: this.running ? 'running' : 'stopped',
      detail: { published: this.published, expired: this.expired, inFlight: this.inFlight, depth, ...(lastError ? { lastError } : {}) },
    };
  }
}
