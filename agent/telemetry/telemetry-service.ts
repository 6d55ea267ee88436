import crypto from 'node:crypto';
import { errorMessage, systemErrorCode } from '../errors.js';
import type { CameraState } from '../ingest/camera-supervisor.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import type { Db } from '../storage/database.js';
import { expiryOf, outboxEnqueuer } from '../storage/outbox.js';
import type { StorageCondition } from '../storage/storage-condition.js';
import type { PipelineStats, StatsReader } from './pipeline-stats.js';
import type { SystemSampler } from './system-sampler.js';
import type { TelemetrySample } from './telemetry-sample.js';

export interface TelemetryDeps {
  db: () => Db;
  deviceId: string;
  intervalMs: number;
  /** Set when samples are published: each gets an outbox row in the same transaction. */
  topic: string | undefined;
  expiryMs: number | null;
  system: Pick<SystemSampler, 'sample'>;
  /** The shared counts; the service takes its windows through its own reader. */
  stats: PipelineStats;
  cameras: () => CameraState[];
  model: () => { id: string; version: string } | undefined;
  pendingWrites: () => number;
  outbox: () => { depth: number; dropped: number };
  databaseBytes: () => number;
  condition: StorageCondition;
  onCommitted?: () => void;
  log: Logger;
}

/**
 * Every telemetry.intervalSeconds: samples the machine and the pipeline, stores the sample
 * and (in the same transaction) its outbox row. The latest sample is kept for the
 * `telemetry` command.
 */
export class TelemetryService implements Service {
  readonly name = 'telemetry';
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private insert: ((sample: TelemetrySample, row: unknown[]) => void) | undefined;
  private window: StatsReader;
  private taken = 0;
  private failures = 0;
  private lastError: string | undefined;
  latest: TelemetrySample | undefined;

  constructor(private readonly deps: TelemetryDeps) {
    this.window = deps.stats.reader();
  }

  async start(): Promise<void> {
    const db = this.deps.db();
    const insertSample = db.prepare(
      `INSERT INTO telemetry (message_id, at, interval_s, cpu_percent, temperature_c, memory_available_bytes, disk_free_bytes,
        rss_bytes, fps, inference_p50_ms, inference_p95_ms, outbox_depth, database_bytes, sample)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const enqueue = outboxEnqueuer(db);
    const { topic, expiryMs } = this.deps;
    this.insert = db.transaction((sample: TelemetrySample, row: unknown[]) => {
      const json = JSON.stringify(sample);
      insertSample.run(...row, json);
      const at = Date.parse(sample.at);
      if (topic !== undefined) enqueue({ messageId: sample.id, topic, payload: json, createdAt: at, expiresAt: expiryOf(at, expiryMs) });
    });
    this.window = this.deps.stats.reader();
    this.timer = setInterval(() => {
      // A slow sensor read never stacks samples.
      this.inFlight ??= this.takeSample()
        .then(
          () => undefined,
          (error: unknown) => this.deps.log.error({ err: errorMessage(error) }, 'telemetry sample failed'),
        )
        .finally(() => (this.inFlight = undefined));
    }, this.deps.intervalMs);
  }

  /** Samples now, stores and returns the sample (also used by the `telemetry` command). */
  async takeSample(): Promise<TelemetrySample> {
    const system = await this.deps.system.sample();
    const window = this.window.takeWindow();
    const outbox = this.deps.outbox();
    const byCamera = this.deps.stats.framesOutByCamera;
    const sample: TelemetrySample = {
      id: crypto.randomUUID(),
      deviceId: this.deps.deviceId,
      at: new Date().toISOString(),
      intervalSeconds: Math.round(window.seconds * 1000) / 1000,
      model: this.deps.model() ?? null,
      system,
      pipeline: {
        fps: Math.round(window.fps * 100) / 100,
        results: window.frames,
        inferenceP50Ms: Math.round(window.inferenceP50 * 100) / 100,
        inferenceP95Ms: Math.round(window.inferenceP95 * 100) / 100,
        vehicles: window.vehicles,
        cameras: this.deps.cameras().map((camera) => ({
          id: camera.id,
          state: camera.state,
          framesIn: camera.framesIn,
          framesOut: byCamera.get(camera.id) ?? 0,
          dropped: camera.dropped,
          reconnects: camera.reconnects,
          decodeFps: Math.round(camera.decodeFps * 100) / 100,
          lastError: camera.lastError ?? null,
        })),
        pendingWrites: this.deps.pendingWrites(),
        outboxDepth: outbox.depth,
        outboxDropped: outbox.dropped,
        databaseBytes: this.deps.databaseBytes(),
        storageDegraded: this.deps.condition.degraded,
      },
    };
    this.latest = sample;
    this.taken++;
    this.store(sample);
    return sample;
  }

  private store(sample: TelemetrySample): void {
    if (!this.insert) return;
    const { system, pipeline } = sample;
    try {
      this.insert(sample, [
        sample.id,
        Date.parse(sample.at),
        sample.intervalSeconds,
        system.cpuLoadPercent,
        system.temperatureC,
        system.memoryAvailableBytes,
        system.diskFreeBytes,
        system.agentRssBytes,
        pipeline.fps,
        pipeline.inferenceP50Ms,
        pipeline.inferenceP95Ms,
        pipeline.outboxDepth,
        pipeline.databaseBytes,
      ]);
      this.lastError = undefined;
      if (this.deps.topic !== undefined) this.deps.onCommitted?.();
    } catch (error) {
      // One sample lost; the results writer drives the degraded mode and the pruning.
      this.failures++;
      const code = systemErrorCode(error) ?? errorMessage(error);
      if (code !== this.lastError) this.deps.log.warn({ code }, 'telemetry sample not stored');
      this.lastError = code;
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight;
    this.insert = undefined;
  }

  health(): Health {
    return {
      ok: this.lastError === undefined,
      state: this.timer ? 'sampling' : 'stopped',
      detail: { samples: this.taken, failures: this.failures, ...(this.lastError ? { lastError: this.lastError } : {}) },
    };
  }
}
