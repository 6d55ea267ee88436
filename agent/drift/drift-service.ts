import crypto from 'node:crypto';
import fs from 'node:fs';
import type { MonitorConfig } from '../config/monitor-schema.js';
import { errorMessage } from '../errors.js';
import type { InferenceResult } from '../inference/result.js';
import type { Frame } from '../ingest/frame.js';
import type { FrameGeometry } from '../ingest/frame-geometry.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import type { DeviceTopics } from '../mqtt/topics.js';
import type { Db } from '../storage/database.js';
import { type OutboxEnqueue, outboxEnqueuer } from '../storage/outbox.js';
import { compareWindows, type WindowDrift } from './compare.js';
import type { DriftPayload } from './drift-schema.js';
import { type Calibration, calibrateOnFeedback, calibrationFromTable, estimatePrecision, type PrecisionEstimate, UNCALIBRATED } from './estimate.js';
import { FrameFeatures } from './frame-features.js';
import { type StatsSnapshot, WindowStats } from './window-stats.js';

/** The model serving the cameras, with the extras its manifest may ship (absolute paths). */
export interface DriftModel {
  id: string;
  version: string;
  referenceFile?: string | undefined;
  calibrationFile?: string | undefined;
}

export interface DriftKey {
  cameraId: string;
  modelId: string;
  modelVersion: string;
}

export interface DriftDeps {
  db: () => Db;
  deviceId: string;
  topics: DeviceTopics;
  publishing: boolean;
  onCommitted?: () => void;
  config: Pick<MonitorConfig, 'drift' | 'estimate'>;
  geometry: FrameGeometry;
  activeModel: () => DriftModel | undefined;
  /** The precision measured from feedback for a camera and model (the monitor's), to publish the gap. */
  measuredPrecision?: (key: DriftKey) => { value: number; low: number; high: number; n: number } | null;
  /** Told after each compared window: the monitor re-evaluates its rules. */
  onWindow?: (key: DriftKey) => void;
  now?: () => number;
  random?: () => number;
  log: Logger;
}

interface CameraState {
  key: DriftKey;
  phase: 'reference' | 'comparing';
  reference: (StatsSnapshot & { source: 'captured' | 'shipped' }) | undefined;
  stats: WindowStats;
  frameCount: number;
  consecutive: number;
  windows: number;
  lastDrift: WindowDrift | undefined;
  lastEstimate: PrecisionEstimate | null;
}

/**
 * Drift without labels, per camera and model version: input statistics on one frame in N and
 * prediction statistics on every result, gathered into windows (fixed memory, no allocation per
 * frame), compared with a reference (captured over the first referenceSeconds, or shipped with
 * the model), with the label-free precision estimate of each window. Each window is published on
 * <prefix>/<deviceId>/drift and kept in the drift log; the monitor's rules watch `drift`
 * (drifted windows in a row) and `estimatedPrecision`.
 */
export class DriftService implements Service {
  readonly name = 'drift';
  private readonly cameras = new Map<string, CameraState>();
  private readonly features: FrameFeatures;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private db: Db | undefined;
  private enqueue: OutboxEnqueue | undefined;
  private lastError: string | undefined;
  private compared = 0;

  constructor(private readonly deps: DriftDeps) {
    this.features = new FrameFeatures(deps.geometry);
    this.now = deps.now ?? Date.now;
  }

  async start(): Promise<void> {
    this.db = this.deps.db();
    this.enqueue = outboxEnqueuer(this.db);
    const tickMs = Math.min(5000, (this.deps.config.drift.windowSeconds * 1000) / 4);
    this.timer = setInterval(() => this.tick(), tickMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.db = undefined;
  }

  /** Every frame (the scheduler's hook): one in N is measured; the others cost a counter. */
  onFrame(frame: Frame): void {
    const state = this.stateOf(frame.cameraId);
    if (!state) return;
    if (++state.frameCount % this.deps.config.drift.everyNthFrame !== 0) return;
    this.features.measure(frame, state.stats);
  }

  onResult(result: InferenceResult): void {
    const state = this.stateOf(result.cameraId);
    if (state && result.model.id === state.key.modelId && result.model.version === state.key.modelVersion) state.stats.addResult(result);
  }

  /** The alert metrics this service measures, for the monitor's rules. */
  observation(metric: 'drift' | 'estimatedPrecision', key: DriftKey): { value: number; low: number; high: number; n: number } | null {
    const state = this.cameras.get(key.cameraId);
    if (!state || state.key.modelId !== key.modelId || state.key.modelVersion !== key.modelVersion || state.windows === 0) return null;
    if (metric === 'drift') return { value: state.consecutive, low: state.consecutive, high: state.consecutive, n: state.windows };
    return state.lastEstimate;
  }

  /** Forgets the reference of one camera (or all): it is captured again (a camera moved on purpose). */
  resetReference(cameraId?: string): string[] {
    const reset: string[] = [];
    for (const state of this.cameras.values()) {
      if (cameraId !== undefined && state.key.cameraId !== cameraId) continue;
      this.db
        ?.prepare('DELETE FROM drift_reference WHERE camera_id = ? AND model_id = ? AND model_version = ?')
        .run(state.key.cameraId, state.key.modelId, state.key.modelVersion);
      this.beginReference(state);
      reset.push(state.key.cameraId);
    }
    return reset;
  }

  private stateOf(cameraId: string): CameraState | undefined {
    const model = this.deps.activeModel();
    if (!model || !this.db) return undefined;
    let state = this.cameras.get(cameraId);
    if (!state || state.key.modelId !== model.id || state.key.modelVersion !== model.version) {
      state = this.newState({ cameraId, modelId: model.id, modelVersion: model.version }, model);
      this.cameras.set(cameraId, state);
    }
    return state;
  }

  private newState(key: DriftKey, model: DriftModel): CameraState {
    const state: CameraState = {
      key,
      phase: 'reference',
      reference: undefined,
      stats: new WindowStats(this.deps.random),
      frameCount: 0,
      consecutive: 0,
      windows: 0,
      lastDrift: undefined,
      lastEstimate: null,
    };
    const stored = this.loadReference(key) ?? this.shippedReference(model);
    if (stored) {
      state.reference = stored;
      state.phase = 'comparing';
    }
    state.stats.reset(this.now());
    return state;
  }

  private beginReference(state: CameraState): void {
    state.phase = 'reference';
    state.reference = undefined;
    state.consecutive = 0;
    state.stats.reset(this.now());
  }

  private loadReference(key: DriftKey): CameraState['reference'] {
    const row = this.db
      ?.prepare<[string, string, string], { source: 'captured' | 'shipped'; stats: string }>(
        'SELECT source, stats FROM drift_reference WHERE camera_id = ? AND model_id = ? AND model_version = ?',
      )
      .get(key.cameraId, key.modelId, key.modelVersion);
    return row ? { ...(JSON.parse(row.stats) as StatsSnapshot), source: row.source } : undefined;
  }

  private shippedReference(model: DriftModel): CameraState['reference'] {
    if (!model.referenceFile) return undefined;
    try {
      return { ...(JSON.parse(fs.readFileSync(model.referenceFile, 'utf8')) as StatsSnapshot), source: 'shipped' };
    } catch (error) {
      this.deps.log.warn({ file: model.referenceFile, err: errorMessage(error) }, "the model's reference statistics cannot be read: capturing one instead");
      return undefined;
    }
  }

  private tick(): void {
    const now = this.now();
    const { windowSeconds, referenceSeconds } = this.deps.config.drift;
    for (const state of this.cameras.values()) {
      try {
        if (state.phase === 'reference') {
          if (now - state.stats.from >= referenceSeconds * 1000) this.keepReference(state, now);
        } else if (now - state.stats.from >= windowSeconds * 1000) {
          // A reference deleted from outside (cctv-agent monitor reference reset) is captured again.
          if (this.loadReference(state.key) === undefined && state.reference?.source !== 'shipped') this.beginReference(state);
          else this.closeWindow(state, now);
        }
        this.lastError = undefined;
      } catch (error) {
        this.lastError = errorMessage(error);
        this.deps.log.warn({ camera: state.key.cameraId, err: this.lastError }, 'drift window failed');
        state.stats.reset(now);
      }
    }
  }

  private keepReference(state: CameraState, now: number): void {
    const snapshot = state.stats.snapshot();
    this.db!.prepare(
      'INSERT OR REPLACE INTO drift_reference (camera_id, model_id, model_version, source, captured_from, captured_to, stats, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ).run(state.key.cameraId, state.key.modelId, state.key.modelVersion, 'captured', snapshot.from, snapshot.to, JSON.stringify(snapshot), now);
    state.reference = { ...snapshot, source: 'captured' };
    state.phase = 'comparing';
    state.stats.reset(now);
    this.deps.log.info(
      { camera: state.key.cameraId, model: `${state.key.modelId}@${state.key.modelVersion}`, frames: snapshot.frames, results: snapshot.results },
      'drift reference captured',
    );
  }

  private closeWindow(state: CameraState, now: number): void {
    const reference = state.reference!;
    const current = state.stats.snapshot();
    const drift = compareWindows(reference, current, this.deps.config.drift);
    const { scores, types } = state.stats.scoredTypes();
    const estimate = this.deps.config.estimate.enabled ? estimatePrecision(scores, types, this.calibration(state.key)) : null;
    state.consecutive = drift.drifted ? state.consecutive + 1 : 0;
    state.windows++;
    state.lastDrift = drift;
    state.lastEstimate = estimate;
    this.compared++;
    const measured = this.deps.measuredPrecision?.(state.key) ?? null;
    const iso = (ms: number): string => new Date(ms).toISOString();
    const payload: DriftPayload = {
      id: crypto.randomUUID(),
      deviceId: this.deps.deviceId,
      at: iso(now),
      cameraId: state.key.cameraId,
      model: { id: state.key.modelId, version: state.key.modelVersion },
      window: { from: iso(current.from), to: iso(current.to), frames: current.frames, results: current.results, detections: current.detections },
      reference: {
        source: reference.source,
        from: iso(reference.from),
        to: iso(reference.to),
        frames: reference.frames,
        results: reference.results,
        detections: reference.detections,
      },
      features: drift.features,
      driftedFeatures: drift.driftedFeatures,
      drifted: drift.drifted,
      consecutive: state.consecutive,
      estimatedPrecision: estimate,
      measuredPrecision: measured,
      gap: estimate && measured ? Math.round((estimate.value - measured.value) * 10_000) / 10_000 : null,
    };
    const db = this.db!;
    db.transaction(() => {
      db.prepare(
        'INSERT INTO drift_windows (at, camera_id, model_id, model_version, drifted, drifted_features, estimated_precision, sample) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ).run(
        now,
        state.key.cameraId,
        state.key.modelId,
        state.key.modelVersion,
        drift.drifted ? 1 : 0,
        drift.driftedFeatures,
        estimate?.value ?? null,
        JSON.stringify(payload),
      );
      if (this.deps.publishing)
        this.enqueue!({ messageId: payload.id, topic: this.deps.topics.drift, payload: JSON.stringify(payload), createdAt: now, expiresAt: null });
    })();
    if (this.deps.publishing) this.deps.onCommitted?.();
    state.stats.reset(now);
    this.deps.onWindow?.(state.key);
  }

  /** Feedback for this model version (all cameras) when there is enough; else the manifest's table; else raw scores. */
  private calibration(key: DriftKey): Calibration {
    const rows = this.db!.prepare<[string, string], { predicted_type: string; score: number; verdict: string }>(
      "SELECT predicted_type, score, verdict FROM feedback WHERE model_id = ? AND model_version = ? AND verdict != 'missed' AND score IS NOT NULL",
    )
      .all(key.modelId, key.modelVersion)
      .map((row) => ({ type: row.predicted_type, score: row.score, correct: (row.verdict === 'correct' ? 1 : 0) as 0 | 1 }));
    const fromFeedback = calibrateOnFeedback(rows, this.deps.config.estimate.minCalibrationLabels);
    if (fromFeedback) return fromFeedback;
    const file = this.deps.activeModel()?.calibrationFile;
    if (file) {
      try {
        return calibrationFromTable(JSON.parse(fs.readFileSync(file, 'utf8')) as Parameters<typeof calibrationFromTable>[0]);
      } catch (error) {
        this.deps.log.warn({ file, err: errorMessage(error) }, "the model's calibration table cannot be read: scores stay uncalibrated");
      }
    }
    return UNCALIBRATED;
  }

  /** The last compared window's figures, for a retrain request's evidence. */
  figures(key: DriftKey): Record<string, unknown> | null {
    const state = this.cameras.get(key.cameraId);
    if (!state?.lastDrift || state.key.modelId !== key.modelId || state.key.modelVersion !== key.modelVersion) return null;
    return {
      drifted: state.lastDrift.drifted,
      consecutive: state.consecutive,
      driftedFeatures: state.lastDrift.features
        .filter((feature) => feature.drifted)
        .map(({ feature, test, value, pValue }) => ({ feature, test, value, pValue })),
      estimatedPrecision: state.lastEstimate,
      referenceSource: state.reference?.source ?? null,
    };
  }

  health(): Health {
    const cameras = [...this.cameras.values()].map((state) => ({
      cameraId: state.key.cameraId,
      model: `${state.key.modelId}@${state.key.modelVersion}`,
      phase: state.phase,
      windows: state.windows,
      consecutive: state.consecutive,
      driftedFeatures: state.lastDrift?.driftedFeatures ?? null,
      estimatedPrecision: state.lastEstimate ? Math.round(state.lastEstimate.value * 1000) / 1000 : null,
    }));
    return {
      ok: this.lastError === undefined,
      state: this.timer ? 'watching' : 'stopped',
      detail: { compared: this.compared, cameras, ...(this.lastError ? { lastError: this.lastError } : {}) },
    };
  }
}
