import crypto from 'node:crypto';
import type { Health, Service } from '../lifecycle/service.js';
import type { Db } from '../storage/database.js';
import type { AgentEvent } from '../storage/event-schema.js';
import { outboxEnqueuer } from '../storage/outbox.js';
import type { ModelStatePayload } from './model-schemas.js';
import { ModelRegistry, type RegistryDeps } from './registry.js';
import type { AuditEntry, ModelVersion } from './registry-store.js';

/** A transfer as the retained state shows it (push and pull report theirs). */
export interface InFlight {
  transferId: string;
  kind: 'push' | 'pull';
  bytes: number;
  size: number;
  startedAt: number;
}

/** A part that lives as long as the service: push receiver, puller. */
export interface UpdateChannel {
  start(): Promise<void>;
  stop(): Promise<void>;
  inFlight(): InFlight[];
}

export interface ModelUpdateDeps extends Omit<RegistryDeps, 'onAudit' | 'onChange' | 'db'> {
  db: () => Db;
  deviceId: string;
  stateTopic: string;
  /** True when messages go to a broker: the retained state then enters the outbox. */
  publishing: boolean;
  onCommitted?: () => void;
  recordEvent: (event: AgentEvent) => void;
}

/**
 * The model lifecycle on the device: the registry (verify, activate, roll back, retire), the
 * audit log published as model-update events, the retained model state; transfers (push over
 * MQTT, pull over HTTP) plug in as channels and hand complete bundles to `registry.admit`.
 */
export class ModelUpdateService implements Service {
  readonly name = 'model-updates';
  readonly registry: ModelRegistry;
  private readonly channels: UpdateChannel[] = [];
  private started = false;
  private publishQueued = false;

  constructor(private readonly deps: ModelUpdateDeps) {
    this.registry = new ModelRegistry({
      ...deps,
      onAudit: (entry) => this.onAudit(entry),
      onChange: () => this.schedulePublish(),
    });
  }

  addChannel(channel: UpdateChannel): this {
    this.channels.push(channel);
    return this;
  }

  async start(): Promise<void> {
    this.registry.open();
    this.started = true;
    await this.registry.serial(() => this.registry.recover());
    for (const channel of this.channels) await channel.start();
    this.publishState();
  }

  async stop(): Promise<void> {
    for (const channel of [...this.channels].reverse()) await channel.stop();
    this.started = false;
  }

  /** A verified version made active, by hand (command or CLI). */
  activate(modelId: string, version: string, trigger: string, rollback: boolean): Promise<ModelVersion> {
    const updateId = crypto.randomUUID();
    return this.registry.serial(async () => {
      this.registry.audit({
        updateId,
        modelId,
        version,
        step: rollback ? 'rollback-requested' : 'activation-requested',
        trigger,
        outcome: 'info',
        code: null,
        detail: null,
      });
      return this.registry.activate(modelId, version, { updateId, trigger, rollback });
    });
  }

  /** A swap the registry did not make (SIGHUP with a new model.manifest): the registry follows it. */
  followSwap(trigger: string): void {
    if (this.started) void this.registry.serial(async () => this.registry.noteRunning(trigger));
  }

  rollback(trigger: string): Promise<ModelVersion> {
    const updateId = crypto.randomUUID();
    return this.registry.serial(async () => {
      this.registry.audit({ updateId, modelId: null, version: null, step: 'rollback-requested', trigger, outcome: 'info', code: null, detail: null });
      return this.registry.rollback(updateId, trigger);
    });
  }

  private onAudit(entry: AuditEntry): void {
    this.deps.recordEvent({
      kind: 'model-update',
      subject: entry.modelId ?? undefined,
      code: entry.code ?? undefined,
      detail: { updateId: entry.updateId, step: entry.step, trigger: entry.trigger, outcome: entry.outcome, version: entry.version, ...(entry.detail ?? {}) },
    });
  }

  /** Coalesces the state publications of one burst of steps into one message. */
  schedulePublish(): void {
    if (this.publishQueued || !this.started) return;
    this.publishQueued = true;
    setImmediate(() => {
      this.publishQueued = false;
      if (this.started) this.publishState();
    });
  }

  state(): ModelStatePayload {
    const store = this.registry.registry;
    const active = store.active();
    const error = this.registry.lastError;
    const iso = (at: number | null): string | null => (at === null ? null : new Date(at).toISOString());
    return {
      deviceId: this.deps.deviceId,
      at: new Date().toISOString(),
      active: active
        ? { id: active.modelId, version: active.version, keyId: active.keyId, sha256: active.bundleSha256, activatedAt: iso(active.activatedAt) }
        : null,
      previous: store.withState('previous').map((row) => ({ id: row.modelId, version: row.version })),
      inFlight: this.channels
        .flatMap((channel) => channel.inFlight())
        .map((transfer) => ({ ...transfer, startedAt: new Date(transfer.startedAt).toISOString() })),
      lastError: error ? { code: error.code, message: error.message, at: new Date(error.at).toISOString(), updateId: error.updateId } : null,
    };
  }

  private publishState(): void {
    if (!this.deps.publishing) return;
    const db = this.deps.db();
    const payload = this.state();
    const enqueue = outboxEnqueuer(db);
    db.transaction(() =>
      enqueue({
        messageId: crypto.randomUUID(),
        topic: this.deps.stateTopic,
        payload: JSON.stringify(payload),
        createdAt: Date.now(),
        expiresAt: null,
        retain: true,
      }),
    )();
    this.deps.onCommitted?.();
  }

  health(): Health {
    if (!this.started) return { ok: true, state: 'stopped' };
    const state = this.state();
    return {
      ok: true,
      state: state.inFlight.length > 0 ? `receiving (${state.inFlight.length})` : 'idle',
      detail: { active: state.active ? `${state.active.id}@${state.active.version}` : null, inFlight: state.inFlight, lastError: state.lastError },
    };
  }
}
