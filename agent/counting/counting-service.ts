import crypto from 'node:crypto';
import type { VehicleType } from '../common/vehicle-types.js';
import type { CountingConfig, CountingLine } from '../config/counting-schema.js';
import { AgentError, errorMessage } from '../errors.js';
import type { InferenceResult } from '../inference/result.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import type { Db } from '../storage/database.js';
import { type OutboxEnqueue, outboxEnqueuer } from '../storage/outbox.js';
import { CameraCounter, type ClosedInterval } from './camera-counter.js';
import { compareCounts } from './compare.js';
import { CountStore } from './count-store.js';
import type { CountErrorPayload, CountsPayload, ReferenceCountsArgs } from './counts-schema.js';

export interface CountedCamera {
  id: string;
  lines: readonly CountingLine[];
  /** A file read faster than real time: ms between sampled frames in media time (camera-counter.ts). */
  frameIntervalMs?: number;
}

export interface CountingDeps {
  db: () => Db;
  deviceId: string;
  config: CountingConfig;
  /** The enabled cameras and their lines. */
  cameras: readonly CountedCamera[];
  /** <prefix>/<deviceId>/counts when publishing; undefined: stored only. */
  topic: string | undefined;
  /** After a commit that added outbox rows (wakes the drain). */
  onCommitted?: () => void;
  /** A new comparison with a reference was stored for this camera (the monitor re-evaluates its rules). */
  onCountError?: (cameraId: string) => void;
  now?: () => number;
  log: Logger;
}

/** What the monitor's countError metric reads: the latest comparison's absolute relative error. */
export interface CountErrorFigure {
  value: number;
  /** The reference count it rests on. */
  n: number;
}

/**
 * Tracking and counting (issue #18, docs/counting.md): every result passes through observe()
 * (on the frame path, before the results writer, so results carry track ids), which tracks
 * the camera's vehicles and counts line crossings; closed intervals are stored and published
 * together, in one transaction, every second's tick; reference counts are compared with the
 * stored counts and the count error is stored, published and handed to the monitor.
 */
export class CountingService implements Service {
  readonly name = 'counting';
  private readonly counters = new Map<string, CameraCounter>();
  private cameras: readonly CountedCamera[] = [];
  private readonly closed: ClosedInterval[] = [];
  private store: CountStore | undefined;
  private db: Db | undefined;
  private enqueue: OutboxEnqueue | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly intervalMs: number;
  private intervalsWritten = 0;
  private comparisons = 0;
  private lastError: string | undefined;

  constructor(private readonly deps: CountingDeps) {
    this.now = deps.now ?? Date.now;
    this.intervalMs = deps.config.intervalSeconds * 1000;
    this.reconfigure(deps.cameras);
  }

  async start(): Promise<void> {
    this.db = this.deps.db();
    this.store = new CountStore(this.db);
    this.enqueue = outboxEnqueuer(this.db);
    this.timer = setInterval(() => this.tick(), 1000);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    // The interval in progress is written as it stands: a partial count (its frames say how partial) beats none.
    for (const counter of this.counters.values()) {
      const closed = counter.closeIfEndedBefore(Number.POSITIVE_INFINITY);
      if (closed && counter.lineCount > 0) this.closed.push(closed);
    }
    this.writeClosed();
    this.store = undefined;
    this.db = undefined;
  }

  /** New camera list: counters of removed cameras go, new ones start, changed lines apply from now. */
  reconfigure(cameras: readonly CountedCamera[]): void {
    this.cameras = cameras;
    const wanted = new Set(cameras.map((camera) => camera.id));
    for (const id of this.counters.keys()) if (!wanted.has(id)) this.counters.delete(id);
    for (const camera of cameras) {
      const existing = this.counters.get(camera.id);
      if (existing && existing.frameIntervalMs === camera.frameIntervalMs) existing.setLines(camera.lines);
      else this.counters.set(camera.id, new CameraCounter(camera.id, camera.lines, this.deps.config.tracker, this.intervalMs, camera.frameIntervalMs));
    }
  }

  /** On the frame path: tracks and counts one result (its vehicles get their track ids). */
  observe(result: InferenceResult): void {
    if (result.task !== 'detection') return;
    const counter = this.counters.get(result.cameraId);
    if (!counter) return;
    const closed = counter.observe(result.capturedAt, result.seq, result.vehicles);
    if (closed && counter.lineCount > 0) this.closed.push(closed);
  }

  /** Closes intervals of quiet cameras and writes every closed interval; run every second and at stop. */
  tick(): void {
    const cutoff = this.now() - this.deps.config.graceSeconds * 1000;
    for (const counter of this.counters.values()) {
      const closed = counter.closeIfEndedBefore(cutoff);
      if (closed && counter.lineCount > 0) this.closed.push(closed);
    }
    this.writeClosed();
  }

  private writeClosed(): void {
    if (this.closed.length === 0 || !this.db || !this.store) return;
    const batch = this.closed.splice(0);
    const store = this.store;
    const at = this.now();
    try {
      this.db.transaction(() => {
        for (const interval of batch) {
          const payload = this.countsPayload(interval);
          const text = JSON.stringify(payload);
          store.writeInterval(interval, payload.id, text);
          this.publish(payload.id, text, at);
        }
      })();
      this.intervalsWritten += batch.length;
      this.lastError = undefined;
      if (this.deps.topic !== undefined) this.deps.onCommitted?.();
    } catch (error) {
      // Kept for the next tick; a database that keeps refusing would grow this by one per camera a minute.
      this.closed.unshift(...batch);
      if (this.lastError === undefined) this.deps.log.warn({ err: errorMessage(error), pending: this.closed.length }, 'counts not stored: retrying');
      this.lastError = errorMessage(error);
    }
  }

  private countsPayload(interval: ClosedInterval): CountsPayload {
    return {
      id: crypto.randomUUID(),
      deviceId: this.deps.deviceId,
      kind: 'counts',
      cameraId: interval.cameraId,
      from: new Date(interval.startAt).toISOString(),
      to: new Date(interval.startAt + interval.intervalMs).toISOString(),
      intervalSeconds: interval.intervalMs / 1000,
      frames: interval.frames,
      lines: interval.lines,
    };
  }

  private publish(messageId: string, payload: string, at: number): void {
    if (this.deps.topic === undefined) return;
    this.enqueue!({ messageId, topic: this.deps.topic, payload, createdAt: at, expiresAt: null });
  }

  /**
   * Compares a reference count with the agent's closed intervals inside [from, to); the
   * comparison is stored, published on the counts topic (kind "count-error") and handed to the monitor.
   */
  compareWithReference(args: ReferenceCountsArgs): CountErrorPayload {
    const store = this.store;
    const db = this.db;
    if (!store || !db) throw new AgentError('COMMAND_FAILED', 'counting is not running');
    const counter = this.counters.get(args.cameraId);
    if (!counter || counter.lineCount === 0) {
      throw new AgentError('COUNTS_UNKNOWN_TARGET', `camera "${args.cameraId}" has no counting lines on this device`);
    }
    const camera = this.cameras.find((one) => one.id === args.cameraId);
    const lines = camera?.lines ?? [];
    if (args.lineId !== undefined && !lines.some((line) => line.id === args.lineId)) {
      throw new AgentError(
        'COUNTS_UNKNOWN_TARGET',
        `camera "${args.cameraId}" has no line "${args.lineId}" (it has ${lines.map((line) => line.id).join(', ')})`,
      );
    }
    const labels = new Set(lines.flatMap((line) => [line.directions.leftToRight, line.directions.rightToLeft]).filter((label) => label !== undefined));
    if (args.direction !== undefined && !labels.has(args.direction)) {
      throw new AgentError('COUNTS_UNKNOWN_TARGET', `camera "${args.cameraId}" counts no direction "${args.direction}" (it has ${[...labels].join(', ')})`);
    }
    const from = Date.parse(args.from);
    const to = Date.parse(args.to);
    if (!(to > from)) throw new AgentError('COMMAND_INVALID', `to (${args.to}) must be after from (${args.from})`);
    const { intervals, rows } = store.countsBetween(args.cameraId, from, to);
    if (intervals === 0) {
      throw new AgentError('COUNTS_NO_INTERVALS', `no closed counting interval of camera "${args.cameraId}" lies wholly inside ${args.from} .. ${args.to}`);
    }
    const selected = rows.filter(
      (row) => (args.lineId === undefined || row.lineId === args.lineId) && (args.direction === undefined || row.direction === args.direction),
    );
    const { byType, total } = compareCounts(args.counts, selected, args.merge);
    const at = this.now();
    const payload: CountErrorPayload = {
      id: crypto.randomUUID(),
      deviceId: this.deps.deviceId,
      kind: 'count-error',
      at: new Date(at).toISOString(),
      cameraId: args.cameraId,
      source: args.source,
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      lineId: args.lineId ?? null,
      direction: args.direction ?? null,
      intervals,
      expectedIntervals: Math.floor((to - from) / this.intervalMs),
      byType,
      total,
    };
    db.transaction(() => {
      store.writeError(payload, at, from, to);
      this.publish(payload.id, JSON.stringify(payload), at);
    })();
    this.comparisons++;
    if (this.deps.topic !== undefined) this.deps.onCommitted?.();
    this.deps.onCountError?.(args.cameraId);
    return payload;
  }

  /** The latest comparison's absolute relative error, in total or for one type (the monitor's countError). */
  countError(cameraId: string, vehicleType?: VehicleType): CountErrorFigure | null {
    const latest = this.store?.latestError(cameraId);
    if (!latest) return null;
    const figure = vehicleType === undefined ? latest.total : latest.byType.find((row) => row.type === vehicleType);
    if (!figure || figure.error === null) return null;
    return { value: Math.abs(figure.error), n: figure.reference };
  }

  /** Counts summed over the intervals in progress: for status. */
  health(): Health {
    const cameras = [...this.counters.values()].map((counter) => ({
      cameraId: counter.cameraId,
      lines: counter.lineCount,
      tracks: counter.tracker.alive,
      tracksConfirmed: counter.tracker.confirmed,
      crossings: counter.crossings,
    }));
    return {
      ok: this.lastError === undefined,
      state: this.store ? (this.lastError ? `failing: ${this.lastError}` : 'counting') : 'stopped',
      detail: { intervalsWritten: this.intervalsWritten, pending: this.closed.length, comparisons: this.comparisons, cameras },
    };
  }
}
