import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sha256File } from '../common/checksum.js';
import { AgentError, errorMessage, isAgentError } from '../errors.js';
import { type ResolvedModel, resolveModel } from '../inference/model-files.js';
import type { Logger } from '../log/logger.js';
import type { Db } from '../storage/database.js';
import { extractBundle, MANIFEST_NAME } from './bundle-files.js';
import { type AuditEntry, type ModelVersion, RegistryStore, type VersionState } from './registry-store.js';
import { type TrustPolicy, readBundleManifest, verifyExtracted } from './verify.js';
import { compareVersions } from './version-order.js';

/** Who asked the agent's one swap path for a model; recorded with the swap's event. */
export type ActivationTrigger = 'update' | 'rollback' | 'cli' | 'restart';

export interface RegistryDeps {
  db: () => Db;
  /** <dataDir>/models: one directory per model id and version, staging/ and incoming/. */
  root: string;
  policy: TrustPolicy;
  maxBundleBytes: number;
  keepVersions: number;
  /** The model the config names: registered as the first active version, and where a rollback past every bundle lands. */
  configModel: ResolvedModel;
  /** The model now serving (to check a candidate's fit with the camera pipeline). */
  running: () => ResolvedModel;
  /** Agent.swapModel: the one hot-swap path, the same SIGHUP uses. */
  swap: (resolved: ResolvedModel, trigger: ActivationTrigger) => Promise<{ from: string; to: string }>;
  /** Each audit entry once committed (published as a model-update event). */
  onAudit: (entry: AuditEntry) => void;
  /** Something the retained state shows changed. */
  onChange: () => void;
  now?: () => number;
  log: Logger;
}

export interface AdmitRequest {
  updateId: string;
  trigger: string;
  /** What the sender announced for the whole bundle: checked before anything is extracted. */
  size?: number;
  sha256?: string;
  /** What an announcement said the bundle is: a bundle of another model or version is refused (mix-and-match). */
  expect?: { modelId: string; version: string };
}

/** The states in which a version has run or passed verification: versions only move forward past these. */
const SEEN: ReadonlySet<VersionState> = new Set(['verified', 'active', 'previous', 'retired']);

/**
 * The on-device registry: admits bundles (verifies before anything runs), activates versions
 * through the agent's hot swap, keeps the last `keepVersions` on disk and retires the rest, and
 * writes every step to the audit log. Only one operation runs at a time (`serial`): two updates
 * racing for the model would leave the states ambiguous.
 */
export class ModelRegistry {
  private store: RegistryStore | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly now: () => number;
  lastError: { code: string; message: string; at: number; updateId: string } | undefined;

  constructor(private readonly deps: RegistryDeps) {
    this.now = deps.now ?? Date.now;
  }

  open(): void {
    this.store = new RegistryStore(this.deps.db());
    // What a crash left half-done: an extraction (staging/) and a complete bundle not yet admitted.
    fs.rmSync(this.staging, { recursive: true, force: true });
    fs.mkdirSync(this.staging, { recursive: true });
    fs.mkdirSync(this.incoming, { recursive: true });
    for (const name of fs.readdirSync(this.incoming).filter((entry) => entry.endsWith('.tar'))) {
      fs.rmSync(path.join(this.incoming, name), { force: true });
      this.audit({
        updateId: crypto.randomUUID(),
        modelId: null,
        version: null,
        step: 'cleaned-up',
        trigger: 'restart',
        outcome: 'info',
        code: null,
        detail: { file: name, why: 'received but not verified before the agent stopped' },
      });
    }
  }

  get incoming(): string {
    return path.join(this.deps.root, 'incoming');
  }

  private get staging(): string {
    return path.join(this.deps.root, 'staging');
  }

  get registry(): RegistryStore {
    if (!this.store) throw new Error('model registry used before start');
    return this.store;
  }

  /** Runs one registry operation after the ones before it. */
  serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  audit(entry: Omit<AuditEntry, 'at'> & { at?: number }): void {
    const full: AuditEntry = { ...entry, at: entry.at ?? this.now() };
    this.registry.audit(full);
    if (full.outcome === 'refused' || full.outcome === 'failed')
      this.lastError = { code: full.code ?? 'INTERNAL', message: String(full.detail?.['message'] ?? full.step), at: full.at, updateId: full.updateId };
    this.deps.onAudit(full);
    this.deps.onChange();
  }

  /**
   * At start: the model now serving is recorded as active when the registry has none (the
   * config's model on a first start), and an activation cut short by a crash is resumed once.
   */
  async recover(): Promise<void> {
    this.noteRunning('restart');
    const interrupted = this.interruptedActivation();
    if (interrupted) {
      this.audit({
        ...interrupted,
        step: 'activation-interrupted',
        trigger: 'restart',
        outcome: 'failed',
        code: null,
        detail: { message: 'the agent stopped during the activation; the previous model came back' },
      });
      if (interrupted.attempts < 2) await this.activate(interrupted.modelId, interrupted.version, { updateId: interrupted.updateId, trigger: 'restart' });
    }
  }

  /** Records the model now serving as the active version when the registry says otherwise (first start, a SIGHUP swap). */
  noteRunning(trigger: string): void {
    const store = this.registry;
    const running = this.deps.running().manifest;
    const active = store.active();
    const now = this.now();
    if (!active || active.modelId !== running.id || active.version !== running.version) {
      const known = store.get(running.id, running.version);
      store.db.transaction(() => {
        if (active) store.setState(active.modelId, active.version, 'previous', now);
        store.put({
          modelId: running.id,
          version: running.version,
          state: 'active',
          dir: known?.dir ?? null,
          bundleSha256: known?.bundleSha256 ?? null,
          bundleBytes: known?.bundleBytes ?? null,
          keyId: known?.keyId ?? null,
          source: known?.source ?? 'config',
          errorCode: null,
          createdAt: known?.createdAt ?? now,
          stateAt: now,
          activatedAt: now,
        });
      })();
      this.audit({
        updateId: crypto.randomUUID(),
        modelId: running.id,
        version: running.version,
        step: 'running',
        trigger,
        outcome: 'info',
        code: null,
        detail: { from: active ? `${active.modelId}@${active.version}` : null },
      });
    }
  }

  private interruptedActivation(): { updateId: string; modelId: string; version: string; attempts: number } | undefined {
    const last = this.registry.history(1)[0];
    // The newest audit entry is an 'activating' step only when nothing followed it: a crash.
    const candidate = this.registry.history(20).find((entry) => entry.step === 'activating');
    if (!last || !candidate || last.updateId !== candidate.updateId) return undefined;
    const chain = this.registry.chain(candidate.updateId);
    if (chain.at(-1)?.step !== 'activating') return undefined;
    const version = this.registry.get(candidate.modelId!, candidate.version!);
    if (version?.state !== 'verified') return undefined;
    return {
      updateId: candidate.updateId,
      modelId: candidate.modelId!,
      version: candidate.version!,
      attempts: chain.filter((entry) => entry.step === 'activating').length,
    };
  }

  /** The newest version of `modelId` this device verified or ran: a candidate must be newer. */
  highestSeen(modelId: string): string | undefined {
    return this.registry
      .list()
      .filter((row) => row.modelId === modelId && SEEN.has(row.state))
      .map((row) => row.version)
      .sort(compareVersions)
      .at(-1);
  }

  /**
   * A complete bundle file becomes a verified version on disk, or is refused with a code (the
   * audit says which check). The file is consumed (moved or deleted) either way.
   */
  async admit(file: string, request: AdmitRequest): Promise<ModelVersion> {
    const started = this.now();
    const stage = path.join(this.staging, request.updateId);
    let identity: { modelId: string | null; version: string | null } = { modelId: null, version: null };
    const base = { updateId: request.updateId, trigger: request.trigger };
    try {
      const size = fs.statSync(file).size;
      if (size > this.deps.maxBundleBytes) throw new AgentError('MODEL_BUNDLE_TOO_LARGE', `the bundle is ${size} bytes, over modelUpdates.maxBundleMB`);
      if (request.size !== undefined && size !== request.size)
        throw new AgentError('MODEL_BUNDLE_TRUNCATED', `the bundle is ${size} bytes, ${request.size} were announced`);
      const sha256 = await sha256File(file);
      if (request.sha256 !== undefined && sha256 !== request.sha256)
        throw new AgentError('MODEL_BUNDLE_HASH_MISMATCH', `the bundle's sha256 is ${sha256}, ${request.sha256} was announced`);
      fs.rmSync(stage, { recursive: true, force: true });
      await extractBundle(file, stage, this.deps.maxBundleBytes);
      const peek = readBundleManifest(stage);
      identity = { modelId: peek.id, version: peek.version };
      this.markTransfer(peek.id, peek.version, 'downloaded', request.trigger);
      if (request.expect && (request.expect.modelId !== peek.id || request.expect.version !== peek.version))
        throw new AgentError(
          'MODEL_BUNDLE_INVALID',
          `the bundle is ${peek.id}@${peek.version}, the announcement said ${request.expect.modelId}@${request.expect.version}`,
        );
      const verified = await verifyExtracted(stage, this.deps.policy, {
        running: this.deps.running(),
        highestVersion: this.highestSeen(peek.id),
        rollback: false,
      });
      if (verified.keyId === null)
        this.deps.log.warn({ model: `${peek.id}@${peek.version}` }, 'UNSIGNED model bundle accepted: modelUpdates.allowUnsigned is true');
      const dir = path.join(this.deps.root, peek.id, peek.version);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(path.dirname(dir), { recursive: true });
      fs.renameSync(stage, dir);
      const now = this.now();
      const row: ModelVersion = {
        modelId: peek.id,
        version: peek.version,
        state: 'verified',
        dir,
        bundleSha256: sha256,
        bundleBytes: size,
        keyId: verified.keyId,
        source: request.trigger,
        errorCode: null,
        createdAt: now,
        stateAt: now,
        activatedAt: null,
      };
      this.registry.put(row);
      this.audit({
        ...base,
        ...identity,
        step: 'verified',
        outcome: 'ok',
        code: null,
        detail: { sha256, bytes: size, keyId: verified.keyId, unsigned: verified.keyId === null, files: verified.manifest.bundle.files, ms: now - started },
      });
      return row;
    } catch (error) {
      const code = isAgentError(error) ? error.code : 'INTERNAL';
      if (identity.modelId && identity.version) {
        const existing = this.registry.get(identity.modelId, identity.version);
        // A refused copy of a version that runs, or ran, must not overwrite that version's row.
        if (!existing || existing.state === 'rejected' || existing.state === 'downloading' || existing.state === 'downloaded')
          this.registry.put({
            modelId: identity.modelId,
            version: identity.version,
            state: 'rejected',
            dir: null,
            bundleSha256: null,
            bundleBytes: null,
            keyId: null,
            source: request.trigger,
            errorCode: code,
            createdAt: existing?.createdAt ?? this.now(),
            stateAt: this.now(),
            activatedAt: null,
          });
      }
      this.audit({ ...base, ...identity, step: 'rejected', outcome: 'refused', code, detail: { message: errorMessage(error), ms: this.now() - started } });
      throw error;
    } finally {
      fs.rmSync(stage, { recursive: true, force: true });
      fs.rmSync(file, { force: true });
    }
  }

  /**
   * A version row for a bundle in transit (downloading: an announced pull; downloaded: received,
   * manifest read, being verified), unless that version already has a row that matters.
   */
  markTransfer(modelId: string, version: string, state: 'downloading' | 'downloaded', source: string): void {
    const existing = this.registry.get(modelId, version);
    if (existing && existing.state !== 'rejected' && existing.state !== 'downloading') return;
    const now = this.now();
    this.registry.put({
      modelId,
      version,
      state,
      dir: null,
      bundleSha256: null,
      bundleBytes: null,
      keyId: null,
      source,
      errorCode: null,
      createdAt: existing?.createdAt ?? now,
      stateAt: now,
      activatedAt: null,
    });
  }

  private resolve(row: ModelVersion): ResolvedModel {
    if (row.dir === null) {
      const config = this.deps.configModel;
      if (config.manifest.id === row.modelId && config.manifest.version === row.version) return config;
      throw new AgentError('MODEL_VERSION_NOT_FOUND', `${row.modelId}@${row.version} is no longer on disk`);
    }
    return resolveModel(path.join(row.dir, MANIFEST_NAME), row.dir);
  }

  /**
   * Makes a version active through the hot swap. The registry changes only after the swap
   * succeeded, in one transaction: a crash before it leaves the old version active (and the
   * candidate verified, resumed once at the next start); after it, the new one.
   */
  async activate(
    modelId: string,
    version: string,
    request: { updateId: string; trigger: ActivationTrigger | string; rollback?: boolean },
  ): Promise<ModelVersion> {
    const row = this.registry.get(modelId, version);
    const base = { updateId: request.updateId, trigger: request.trigger, modelId, version };
    if (!row || (row.dir === null && row.source !== 'config')) {
      const error = new AgentError('MODEL_VERSION_NOT_FOUND', `the registry holds no ${modelId}@${version} on disk`);
      this.audit({ ...base, step: 'activation-refused', outcome: 'refused', code: error.code, detail: { message: error.message } });
      throw error;
    }
    if (row.state === 'active') return row;
    if (!request.rollback && row.state !== 'verified') {
      const error = new AgentError('MODEL_DOWNGRADE', `${modelId}@${version} is ${row.state}: only a verified version is activated, an older one by rollback`);
      this.audit({ ...base, step: 'activation-refused', outcome: 'refused', code: error.code, detail: { message: error.message } });
      throw error;
    }
    const started = this.now();
    this.audit({
      ...base,
      step: 'activating',
      outcome: 'info',
      code: null,
      detail: { from: this.registry.active() ? `${this.registry.active()!.modelId}@${this.registry.active()!.version}` : null },
    });
    let outcome: { from: string; to: string };
    try {
      outcome = await this.deps.swap(
        this.resolve(row),
        request.rollback ? 'rollback' : request.trigger === 'cli' ? 'cli' : request.trigger === 'restart' ? 'restart' : 'update',
      );
    } catch (error) {
      const code = isAgentError(error) ? error.code : 'MODEL_LOAD_FAILED';
      if (row.state === 'verified') this.registry.setState(modelId, version, 'rejected', this.now(), code);
      this.audit({ ...base, step: 'activation-failed', outcome: 'failed', code, detail: { message: errorMessage(error), ms: this.now() - started } });
      throw error;
    }
    const now = this.now();
    const store = this.registry;
    const retired: ModelVersion[] = [];
    store.db.transaction(() => {
      const previous = store.active();
      if (previous) store.setState(previous.modelId, previous.version, 'previous', now);
      store.put({ ...row, state: 'active', stateAt: now, activatedAt: now, errorCode: null });
      // The newest previous versions stay for rollbacks; older ones are retired and their files go.
      const keep = this.deps.keepVersions - 1;
      for (const old of store.withState('previous').slice(keep)) {
        store.put({ ...old, state: 'retired', stateAt: now, dir: null });
        retired.push(old);
      }
    })();
    for (const old of retired) if (old.dir) fs.rmSync(old.dir, { recursive: true, force: true });
    this.audit({
      ...base,
      step: request.rollback ? 'rolled-back' : 'activated',
      outcome: 'ok',
      code: null,
      detail: { ...outcome, swapMs: now - started, keyId: row.keyId, sha256: row.bundleSha256 },
    });
    for (const old of retired)
      this.audit({
        ...base,
        modelId: old.modelId,
        version: old.version,
        step: 'retired',
        outcome: 'info',
        code: null,
        detail: { keepVersions: this.deps.keepVersions },
      });
    return { ...row, state: 'active', stateAt: now, activatedAt: now };
  }

  /** Back to the most recent previous version, through the same hot swap. */
  async rollback(updateId: string, trigger: string): Promise<ModelVersion> {
    const target = this.registry.withState('previous').find((row) => row.dir !== null || row.source === 'config');
    if (!target) {
      const error = new AgentError('MODEL_VERSION_NOT_FOUND', 'no previous version is on disk to roll back to');
      this.audit({
        updateId,
        trigger,
        modelId: null,
        version: null,
        step: 'rollback-refused',
        outcome: 'refused',
        code: error.code,
        detail: { message: error.message },
      });
      throw error;
    }
    return this.activate(target.modelId, target.version, { updateId, trigger, rollback: true });
  }
}
