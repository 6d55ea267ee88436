import crypto from 'node:crypto';
import { errorMessage, systemErrorCode } from '../errors.js';
import type { InferenceResult } from '../inference/result.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import type { Db } from './database.js';
import { expiryOf, outboxEnqueuer } from './outbox.js';
import { resultPayload } from './result-payload.js';
import { isDiskFull, type StorageCondition } from './storage-condition.js';

export interface ResultWriterDeps {
  db: () => Db;
  deviceId: string;
  /** Set when results are published: each result gets an outbox row in the same transaction. */
  resultsTopic: string | undefined;
  /** MQTT 5 message expiry of results, counted from capture; null: never. */
  expiryMs?: number | null;
  flushIntervalMs: number;
  maxBatchRows: number;
  /** Called after each commit that added outbox rows (wakes the MQTT drain). */
  onCommitted?: () => void;
  /** Told of each failed and successful write: drives the degraded mode. */
  condition?: StorageCondition;
  /** A write met a full disk: prune now. */
  onDiskFull?: () => void;
  /** After each commit: keeps the outbox under its cap. */
  afterCommit?: () => void;
  log: Logger;
}

/** Pending results kept in memory while the database refuses writes, before the oldest go. */
const MAX_PENDING = 10_000;

/**
 * Buffers results and writes them in one transaction per flush: the result rows and their
 * outbox rows commit together, so nothing is published that is not stored, and nothing
 * stored is left unpublished.
 */
export class ResultWriter implements Service {
  readonly name = 'results';
  private pending: InferenceResult[] = [];
  /** The message id of each pending result, in step with `pending` (no wrapper object per frame). */
  private pendingIds: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writeBatch: ((batch: InferenceResult[], ids: string[]) => void) | undefined;
  private written = 0;
  private droppedWhileFailing = 0;
  private lastError: string | undefined;

  constructor(private readonly deps: ResultWriterDeps) {}

  async start(): Promise<void> {
    const db = this.deps.db();
    const insertResult = db.prepare(
      `INSERT INTO results (message_id, camera_id, seq, captured_at, model_id, model_version, task, vehicle_count, vehicles, top, inference_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const enqueue = outboxEnqueuer(db);
    const { resultsTopic, deviceId } = this.deps;
    const expiryMs = this.deps.expiryMs ?? null;
    this.writeBatch = db.transaction((batch: InferenceResult[], ids: string[]) => {
      const now = Date.now();
      for (let i = 0; i < batch.length; i++) {
        const result = batch[i]!;
        const messageId = ids[i]!;
        insertResult.run(
          messageId,
          result.cameraId,
          result.seq,
          result.capturedAt,
          result.model.id,
          result.model.version,
          result.task,
          result.vehicles.length,
          JSON.stringify(result.vehicles),
          result.top ? JSON.stringify(result.top) : null,
          result.inferenceMs,
        );
        if (resultsTopic !== undefined) {
          enqueue({
            messageId,
            topic: resultsTopic,
            payload: resultPayload(result, messageId, deviceId),
            createdAt: now,
            expiresAt: expiryOf(result.capturedAt, expiryMs),
          });
        }
      }
    });
    this.timer = setInterval(() => this.flush(), this.deps.flushIntervalMs);
  }

  /**
   * Queues a result and returns the id it is stored and published under (its `id` in the
   * results payload). Chosen here, not at the flush, so that whoever keeps something about the
   * result (an evidence sample) can name it before the row exists.
   */
  enqueue(result: InferenceResult): string {
    const messageId = crypto.randomUUID();
    this.pending.push(result);
    this.pendingIds.push(messageId);
    if (this.pending.length >= this.deps.maxBatchRows) this.flush();
    return messageId;
  }

  /** Results waiting in memory for the next flush. */
  get pendingCount(): number {
    return this.pending.length;
  }

  flush(): void {
    if (this.pending.length === 0 || !this.writeBatch) return;
    const batch = this.pending;
    const ids = this.pendingIds;
    this.pending = [];
    this.pendingIds = [];
    try {
      this.writeBatch(batch, ids);
      this.written += batch.length;
      this.lastError = undefined;
      this.deps.condition?.writeSucceeded();
      this.deps.afterCommit?.();
      if (this.deps.resultsTopic !== undefined) this.deps.onCommitted?.();
    } catch (error) {
      // Keep the batch for the next flush; a database that keeps refusing costs the oldest.
      const failingBefore = this.lastError !== undefined;
      this.lastError = systemErrorCode(error) ?? errorMessage(error);
      this.deps.condition?.writeFailed(error);
      if (isDiskFull(error)) this.deps.onDiskFull?.();
      this.pending = batch.concat(this.pending);
      this.pendingIds = ids.concat(this.pendingIds);
      if (this.pending.length > MAX_PENDING) {
        const excess = this.pending.length - MAX_PENDING;
        this.pending.splice(0, excess);
        this.pendingIds.splice(0, excess);
        this.droppedWhileFailing += excess;
      }
      // Once per failure streak: a full disk would otherwise log four lines a second.
      if (!failingBefore)
        this.deps.log.error(
          { code: this.lastError, pending: this.pending.length, dropped: this.droppedWhileFailing },
          'result write failed: keeping results in memory',
        );
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.flush();
    this.writeBatch = undefined;
  }

  health(): Health {
    return {
      ok: this.lastError === undefined,
      state: this.lastError ? `failing: ${this.lastError}` : 'writing',
      detail: {
        written: this.written,
        pending: this.pending.length,
        dropped: this.droppedWhileFailing,
        ...(this.lastError ? { lastError: this.lastError } : {}),
      },
    };
  }
}
