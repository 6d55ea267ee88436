import crypto from 'node:crypto';
import { type AlertMetric, type AlertRule, type MonitorConfig, qualityMetrics } from '../config/monitor-schema.js';
import { errorMessage } from '../errors.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import type { DeviceTopics, FleetTopics } from '../mqtt/topics.js';
import type { Db } from '../storage/database.js';
import type { AgentEvent } from '../storage/event-schema.js';
import { type OutboxEnqueue, outboxEnqueuer } from '../storage/outbox.js';
import { clearThreshold, evaluateRule, type Observation, ruleEstimate, thresholdOf } from './alert-rules.js';
import { AlertStore } from './alert-store.js';
import type { FeedbackItem } from './feedback-schema.js';
import { type Applied, FeedbackStore, FeedbackWindows, keyOf, type ModelKey } from './feedback-store.js';
import { windowFigures } from './quality-figures.js';
import { type ActiveAlert, type AlertsPayload, type QualityPayload, type RetrainEvidence, type RetrainPayload, windowOut } from './quality-schema.js';
import { type RetrainRequest, RetrainStore } from './retrain-store.js';

export interface MonitorDeps {
  db: () => Db;
  deviceId: string;
  config: MonitorConfig;
  topics: DeviceTopics;
  fleet: FleetTopics;
  /** True when messages go to a broker: quality, alerts and retrain requests then enter the outbox. */
  publishing: boolean;
  /** After a commit that added outbox rows (wakes the drain). */
  onCommitted?: () => void;
  recordEvent: (event: AgentEvent) => void;
  /** Each camera with the model that serves it now. */
  activeKeys: () => ModelKey[];
  /** Told of results a verdict disputed (the evidence keeps their frames). */
  onDisputed?: (resultIds: string[]) => void;
  /**
   * The figures of metrics measured elsewhere (drift, label-free estimates, count errors), per
   * camera and model: the same rules, hysteresis and retrain request apply to them. A subsystem
   * that has new figures calls evaluateKey().
   */
  metricSources?: Partial<Record<AlertMetric, (key: ModelKey, rule: AlertRule) => Observation | null>>;
  /** The latest figures behind a source metric, carried as a retrain request's evidence. */
  sourceFigures?: Partial<Record<AlertMetric, (key: ModelKey) => Record<string, unknown> | null>>;
  now?: () => number;
  log: Logger;
}

interface Stores {
  db: Db;
  feedback: FeedbackStore;
  windows: FeedbackWindows;
  alerts: AlertStore;
  retrain: RetrainStore;
  enqueue: OutboxEnqueue;
  evidenceIds: (key: ModelKey) => string[];
  insertQuality: (at: number, key: ModelKey, labels: number, precision: number | null, sample: string) => void;
}

/**
 * Measured quality from reviewers' feedback, per camera and model version: precision and recall
 * with 95 % intervals over a count and a time window, alert rules with hysteresis and cooldown,
 * and the retrain request with its evidence. Runs when feedback arrives and every
 * monitor.publishIntervalSeconds; nothing of it is on the frame path.
 */
export class MonitorService implements Service {
  readonly name = 'monitor';
  private stores: Stores | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly latest = new Map<string, QualityPayload>();
  private feedbackItems = 0;
  private evaluations = 0;
  private lastError: string | undefined;
  /** Events emitted inside a transaction, recorded after it commits. */
  private readonly events: AgentEvent[] = [];
  /** Active alerts and pending retrain requests for health() (read every 2 s): counted again after a transaction. */
  private counts: { alerts: number; pending: number } | undefined;

  constructor(private readonly deps: MonitorDeps) {
    this.now = deps.now ?? Date.now;
  }

  async start(): Promise<void> {
    const db = this.deps.db();
    const evidence = db.prepare<[string, string, string], { sample_id: string }>(
      'SELECT sample_id FROM evidence WHERE camera_id = ? AND model_id = ? AND model_version = ? ORDER BY disputed DESC, created_at DESC LIMIT 50',
    );
    const insertQuality = db.prepare('INSERT INTO quality (at, camera_id, model_id, model_version, labels, precision, sample) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.counts = undefined;
    this.stores = {
      db,
      feedback: new FeedbackStore(db),
      windows: new FeedbackWindows(db),
      alerts: new AlertStore(db),
      retrain: new RetrainStore(db),
      enqueue: outboxEnqueuer(db),
      evidenceIds: (key) => evidence.all(key.cameraId, key.modelId, key.modelVersion).map((row) => row.sample_id),
      insertQuality: (at, key, labels, precision, sample) => {
        insertQuality.run(at, key.cameraId, key.modelId, key.modelVersion, labels, precision, sample);
      },
    };
    // The retained alert state is republished at start: what a subscriber sees is current.
    this.transaction(() => this.publishAlerts());
    this.timer = setInterval(() => this.evaluateAll(), this.deps.config.publishIntervalSeconds * 1000);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.stores = undefined;
  }

  /** Stores a batch of verdicts (all or none) and re-evaluates the cameras and models they touch. */
  acceptFeedback(items: readonly FeedbackItem[], source: string, fleet: boolean): Applied {
    const stores = this.require();
    const applied = stores.feedback.apply(items, source, { fleet, now: this.now() });
    this.feedbackItems += applied.stored + applied.replaced;
    if (applied.disputed.length > 0) this.deps.onDisputed?.(applied.disputed);
    for (const key of applied.touched) this.evaluate(key);
    return applied;
  }

  /** A retrain request raised by hand for a camera's active model; an already pending one is returned as it is. */
  requestRetrain(cameraId: string, reason: string, actor: string): { request: RetrainRequest; alreadyPending: boolean } {
    const key = this.deps.activeKeys().find((candidate) => candidate.cameraId === cameraId);
    if (!key) throw new Error(`no camera "${cameraId}" runs on this device`);
    const existing = this.require().retrain.pending(key);
    if (existing) return { request: existing, alreadyPending: true };
    let request: RetrainRequest | undefined;
    this.transaction(() => {
      request = this.raiseRetrain(key, 'manual', reason, actor, null);
    });
    return { request: request!, alreadyPending: false };
  }

  acknowledge(requestId: string, actor: string): RetrainRequest | undefined {
    const stores = this.require();
    const request = stores.retrain.get(requestId);
    if (!request) return undefined;
    if (request.state !== 'pending') return request;
    let updated: RetrainRequest | undefined;
    this.transaction(() => {
      updated = stores.retrain.transition(request, 'acknowledged', actor, this.now());
      this.publishRetrain(updated, false);
    });
    this.emit({ kind: 'retrain-acknowledged', subject: request.cameraId, detail: { requestId, by: actor } });
    this.flushEvents();
    return updated;
  }

  /** A newer model serves a camera: its pending requests for older models are answered. */
  modelActivated(model: { id: string; version: string }): void {
    const stores = this.stores;
    if (!stores) return;
    for (const key of this.deps.activeKeys()) {
      for (const request of stores.retrain.pendingForOtherModels(key.cameraId, model)) {
        this.transaction(() =>
          this.publishRetrain(stores.retrain.transition(request, 'superseded', 'model-activation', this.now(), `${model.id}@${model.version}`), false),
        );
        this.emit({ kind: 'retrain-superseded', subject: key.cameraId, detail: { requestId: request.requestId, by: `${model.id}@${model.version}` } });
      }
    }
    this.flushEvents();
  }

  /** Every retrain request, newest first, and the figures last computed (CLI, status). */
  snapshot(): { quality: QualityPayload[]; alerts: ActiveAlert[]; retrain: RetrainRequest[] } {
    const stores = this.stores;
    return { quality: [...this.latest.values()], alerts: stores?.alerts.activeAlerts() ?? [], retrain: stores?.retrain.list(20) ?? [] };
  }

  private evaluateAll(): void {
    const stores = this.stores;
    if (!stores) return;
    try {
      const keys = new Map<string, ModelKey>();
      for (const key of this.deps.activeKeys()) keys.set(keyOf(key), key);
      for (const key of stores.windows.keysSince(this.now() - this.deps.config.windows.minutes * 60_000)) keys.set(keyOf(key), key);
      for (const key of keys.values()) this.evaluate(key);
      this.lastError = undefined;
    } catch (error) {
      // The next tick tries again; the storage condition reacts to a full disk through the writers.
      this.lastError = errorMessage(error);
      this.deps.log.warn({ err: this.lastError }, 'quality evaluation failed');
    }
  }

  /** Re-evaluates every active camera and model now (a metric source about the model itself has new figures). */
  evaluateActive(): void {
    if (this.stores) for (const key of this.deps.activeKeys()) this.evaluate(key);
  }

  /** Re-evaluates one camera and model now (a metric source has new figures). */
  evaluateKey(key: ModelKey): void {
    if (this.stores) this.evaluate(key);
  }

  /** The figure a rule watches: from the labels, or from the metric's source. */
  private observe(rule: AlertRule, key: ModelKey, byLabels: ReturnType<typeof windowFigures>, byMinutes: ReturnType<typeof windowFigures>): Observation | null {
    if ((qualityMetrics as readonly string[]).includes(rule.metric)) return ruleEstimate(rule, rule.window === 'labels' ? byLabels : byMinutes);
    return this.deps.metricSources?.[rule.metric]?.(key, rule) ?? null;
  }

  /** Figures for one camera and model, stored and published; the alert rules applied to them. */
  private evaluate(key: ModelKey): void {
    const stores = this.require();
    const { windows } = this.deps.config;
    const now = this.now();
    const byLabels = windowFigures(stores.windows.byLabels(key, windows.labels));
    const byMinutes = windowFigures(stores.windows.byTime(key, now - windows.minutes * 60_000));
    const payload: QualityPayload = {
      id: crypto.randomUUID(),
      deviceId: this.deps.deviceId,
      at: new Date(now).toISOString(),
      cameraId: key.cameraId,
      model: { id: key.modelId, version: key.modelVersion },
      windows: { labels: windowOut('labels', windows.labels, byLabels), minutes: windowOut('minutes', windows.minutes, byMinutes) },
    };
    this.latest.set(keyOf(key), payload);
    this.evaluations++;
    const raised: ActiveAlert[] = [];
    this.transaction(() => {
      stores.insertQuality(now, key, byLabels.overall.labelled, byLabels.overall.precision?.value ?? null, JSON.stringify(payload));
      this.publish(this.deps.topics.quality, payload.id, payload, now, false);
      let changed = false;
      for (const rule of this.deps.config.alerts) {
        const { state, alertId } = stores.alerts.stateOf(rule.id, key);
        const decision = evaluateRule(rule, state, this.observe(rule, key, byLabels, byMinutes), now);
        if (decision.action === 'raise') {
          const alert: ActiveAlert = {
            alertId: crypto.randomUUID(),
            ruleId: rule.id,
            cameraId: key.cameraId,
            model: { id: key.modelId, version: key.modelVersion },
            metric: rule.metric,
            vehicleType: rule.vehicleType ?? null,
            threshold: thresholdOf(rule).threshold,
            direction: rule.above !== undefined ? 'above' : 'below',
            clearAt: clearThreshold(rule),
            value: Math.round(decision.estimate!.value * 10_000) / 10_000,
            labels: decision.estimate!.n,
            raisedAt: new Date(now).toISOString(),
          };
          stores.alerts.raise(alert, now);
          raised.push(alert);
          changed = true;
          if (rule.retrain && !stores.retrain.pending(key))
            this.raiseRetrain(
              key,
              `rule:${rule.id}`,
              `${rule.metric} ${alert.value} at or ${alert.direction} ${alert.threshold} over ${alert.labels}${(qualityMetrics as readonly string[]).includes(rule.metric) ? ' labels' : ''}`,
              'monitor',
              alert,
              payload,
            );
        } else if (decision.action === 'clear' && alertId !== null) {
          stores.alerts.cleared(alertId, now);
          changed = true;
          this.emit({ kind: 'alert-cleared', subject: key.cameraId, detail: { alertId, ruleId: rule.id, value: decision.estimate?.value } });
        }
      }
      if (changed) this.publishAlerts();
    });
    for (const alert of raised) this.emit({ kind: 'alert-raised', subject: alert.cameraId, detail: { ...alert } });
    this.flushEvents();
  }

  private raiseRetrain(key: ModelKey, trigger: string, reason: string, actor: string, alert: ActiveAlert | null, quality?: QualityPayload): RetrainRequest {
    const stores = this.require();
    const now = this.now();
    const figures = quality ?? this.latest.get(keyOf(key));
    const { windows } = this.deps.config;
    const empty = windowOut('labels', windows.labels, windowFigures([]));
    const evidence: RetrainEvidence = {
      alert,
      windows: figures?.windows ?? { labels: empty, minutes: windowOut('minutes', windows.minutes, windowFigures([])) },
      timeRange: { from: figures?.windows.labels.from ?? null, to: figures?.windows.labels.to ?? null },
      evidenceSampleIds: stores.evidenceIds(key),
    };
    const figuresOf = alert ? this.deps.sourceFigures?.[alert.metric] : undefined;
    const sourceFigures = figuresOf?.(key);
    if (sourceFigures) evidence.sourceFigures = sourceFigures;
    const request = stores.retrain.raise({ ...key, requestId: crypto.randomUUID(), trigger, reason, raisedAt: now, evidence }, actor);
    this.publishRetrain(request, true);
    this.emit({
      kind: 'retrain-requested',
      subject: key.cameraId,
      detail: { requestId: request.requestId, trigger, reason, model: `${key.modelId}@${key.modelVersion}` },
    });
    return request;
  }

  private publishRetrain(request: RetrainRequest, toFleet: boolean): void {
    const now = this.now();
    const payload: RetrainPayload = {
      id: crypto.randomUUID(),
      deviceId: this.deps.deviceId,
      at: new Date(now).toISOString(),
      requestId: request.requestId,
      state: request.state,
      cameraId: request.cameraId,
      model: { id: request.modelId, version: request.modelVersion },
      trigger: request.trigger,
      reason: request.reason,
      raisedAt: new Date(request.raisedAt).toISOString(),
      stateAt: new Date(request.stateAt).toISOString(),
      evidence: request.evidence,
    };
    this.publish(this.deps.topics.retrain, payload.id, payload, now, true);
    if (toFleet) this.publish(this.deps.fleet.retrain, crypto.randomUUID(), payload, now, false);
  }

  private publishAlerts(): void {
    const now = this.now();
    const payload: AlertsPayload = { deviceId: this.deps.deviceId, at: new Date(now).toISOString(), active: this.require().alerts.activeAlerts() };
    this.publish(this.deps.topics.alerts, crypto.randomUUID(), payload, now, true);
  }

  private publish(topic: string, messageId: string, payload: unknown, at: number, retain: boolean): void {
    if (!this.deps.publishing) return;
    this.require().enqueue({ messageId, topic, payload: JSON.stringify(payload), createdAt: at, expiresAt: null, retain });
  }

  /**
   * Runs `work` in one transaction and wakes the drain after it; the events it emitted are
   * recorded once it committed (the event log writes in its own transaction).
   */
  private transaction(work: () => void): void {
    try {
      this.require().db.transaction(work)();
    } catch (error) {
      this.events.length = 0;
      throw error;
    } finally {
      this.counts = undefined;
    }
    if (this.deps.publishing) this.deps.onCommitted?.();
    this.flushEvents();
  }

  private emit(event: AgentEvent): void {
    this.events.push(event);
  }

  private flushEvents(): void {
    for (const event of this.events.splice(0)) this.deps.recordEvent(event);
  }

  private require(): Stores {
    if (!this.stores) throw new Error('monitor used before start');
    return this.stores;
  }

  health(): Health {
    const figures = [...this.latest.values()].map((quality) => ({
      cameraId: quality.cameraId,
      model: `${quality.model.id}@${quality.model.version}`,
      precision: quality.windows.labels.overall.precision,
      labels: quality.windows.labels.overall.labelled,
    }));
    const stores = this.stores;
    if (stores && !this.counts) this.counts = { alerts: stores.alerts.activeCount(), pending: stores.retrain.pendingCount() };
    const alerts = stores ? this.counts!.alerts : 0;
    const pending = stores ? this.counts!.pending : 0;
    return {
      ok: this.lastError === undefined,
      state: this.stores ? (alerts > 0 ? `alerting (${alerts})` : 'watching') : 'stopped',
      detail: {
        feedbackItems: this.feedbackItems,
        evaluations: this.evaluations,
        alerts,
        retrainPending: pending,
        figures,
        ...(this.lastError ? { lastError: this.lastError } : {}),
      },
    };
  }
}
