import { errorMessage } from '../errors.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import type { OutboxReader } from '../storage/outbox.js';

const STOP_WAIT_MS = 2000;

export interface Publisher {
  readonly connected: boolean;
  publish(topic: string, payload: Buffer, qos: 0 | 1 | 2, retain: boolean): Promise<void>;
  onConnect(listener: () => void): void;
}

export interface OutboxDrainDeps {
  outbox: () => OutboxReader;
  publisher: Publisher;
  batchSize: number;
  log: Logger;
}

/**
 * Publishes outbox rows in id order and deletes each acknowledged prefix. A row whose
 * publish failed (link lost) stays, and so does everything after it: the next pass resends
 * from there, so delivery is at-least-once and in order; consumers dedupe by message id.
 */
export class OutboxDrain implements Service {
  readonly name = 'outbox-drain';
  private running = false;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private pendingWake = false;
  private published = 0;
  private lastError: string | undefined;

  constructor(private readonly deps: OutboxDrainDeps) {}

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
        if (this.deps.publisher.connected) ({ moved, failed } = await this.drainBatch());
      } catch (error) {
        // The store went away under us (shutdown) or refused a read: retry on the next pass.
        failed = true;
        this.lastError = errorMessage(error);
        if (this.running) this.deps.log.error({ err: this.lastError }, 'outbox drain failed');
      }
      // After a failure wait (for the reconnect, or the retry tick) instead of spinning.
      if (!failed && (moved > 0 || this.pendingWake)) continue;
      // Idle: sleep until woken; a periodic pass also retries after failures.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = undefined;
    }
  }

  private async drainBatch(): Promise<{ moved: number; failed: boolean }> {
    const outbox = this.deps.outbox();
    const rows = outbox.peek(0, this.deps.batchSize);
    if (rows.length === 0) return { moved: 0, failed: false };
    const outcomes = await Promise.allSettled(rows.map((row) => this.deps.publisher.publish(row.topic, row.payload, row.qos, row.retain)));
    let acknowledged = 0;
    while (acknowledged < outcomes.length && outcomes[acknowledged]!.status === 'fulfilled') acknowledged++;
    if (acknowledged < outcomes.length) {
      const failure = outcomes[acknowledged] as PromiseRejectedResult;
      const text = errorMessage(failure.reason);
      if (text !== this.lastError) this.deps.log.warn({ err: text, unacknowledged: outcomes.length - acknowledged }, 'outbox publish failed: will resend');
      this.lastError = text;
    } else {
      this.lastError = undefined;
    }
    outbox.remove(rows.slice(0, acknowledged).map((row) => row.id));
    this.published += acknowledged;
    return { moved: acknowledged, failed: acknowledged < rows.length };
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wakeUp?.();
    // A publish stuck on a dead link must not hold the shutdown: its row stays in the outbox.
    await Promise.race([this.loop, new Promise((resolve) => setTimeout(resolve, STOP_WAIT_MS).unref())]);
  }

  health(): Health {
    let depth = -1;
    try {
      depth = this.deps.outbox().depth();
    } catch (error) {
      this.lastError = errorMessage(error);
    }
    return { ok: this.lastError === undefined, state: this.running ? 'running' : 'stopped', detail: { published: this.published, depth } };
  }
}
