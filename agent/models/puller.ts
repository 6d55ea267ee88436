import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { backoffDelay } from '../common/backoff.js';
import { AgentError, errorMessage, isAgentError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { CommandTransport } from '../mqtt/commands.js';
import type { Db } from '../storage/database.js';
import { downloadOnce } from './http-download.js';
import { type ModelAnnouncement, modelAnnouncementSchema } from './model-schemas.js';
import type { InFlight, UpdateChannel } from './model-update-service.js';
import type { ModelRegistry } from './registry.js';
import { TransferStore } from './transfer-store.js';
import { compareVersions } from './version-order.js';

export interface PullRequest {
  url: string;
  size: number;
  sha256: string;
  activate: boolean;
  trigger: 'mqtt-pull' | 'fleet-announcement' | 'restart';
  expect?: { modelId: string; version: string };
}

export interface PullerDeps {
  db: () => Db;
  registry: ModelRegistry;
  limits: { maxBundleBytes: number; idleTimeoutMs: number; maxAttempts: number };
  announcements: 'after-retrain' | 'always' | 'ignore';
  /** The fleet's model announcements (<prefix>/fleet/models/+); undefined without a broker. */
  fleet?: { transport: Pick<CommandTransport, 'subscribe'>; filter: string };
  /** The monitor's seam: is a retrain request pending for the model now serving? */
  pendingRetrain: () => boolean;
  running: () => { id: string; version: string };
  onProgress: () => void;
  log: Logger;
  /** How often a kept announcement is looked at again (a retrain request raised after it arrived). */
  recheckMs?: number;
  backoffMs?: { initial: number; max: number };
}

interface Active {
  transferId: string;
  updateId: string;
  request: PullRequest;
  part: string;
  bytes: number;
  startedAt: number;
  abort: AbortController;
}

/**
 * Pulls bundles over HTTP(S): on a command, or on a fleet announcement of a newer version of the
 * running model (once a retrain request is pending, by default). Downloads into a .part file
 * with a size limit and an idle timeout, resumes with Range after a failure or a restart, retries
 * with backoff, and hands the complete bundle to the registry (verify, then activate).
 */
export class ModelPuller implements UpdateChannel {
  private active: Active | undefined;
  private store: TransferStore | undefined;
  private readonly announced = new Map<string, ModelAnnouncement>();
  /** Announced bundles already tried (by sha256): an announcement is acted on once, not in a loop. */
  private readonly tried = new Set<string>();
  private recheck: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastProgressAt = 0;

  constructor(private readonly deps: PullerDeps) {}

  async start(): Promise<void> {
    this.store = new TransferStore(this.deps.db());
    this.stopped = false;
    for (const row of this.store.list('pull')) {
      if (this.active || row.url === null) {
        this.store.delete(row.transferId);
        fs.rmSync(this.partPath(row.transferId), { force: true });
        continue;
      }
      this.begin({ url: row.url, size: row.size, sha256: row.sha256, activate: row.activate, trigger: 'restart' }, row.updateId, row.startedAt);
    }
    this.deps.fleet?.transport.subscribe(this.deps.fleet.filter, (message) => this.onAnnouncement(message.payload));
    this.recheck = setInterval(() => this.evaluate(), this.deps.recheckMs ?? 15_000);
    this.recheck.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.recheck) clearInterval(this.recheck);
    this.active?.abort.abort();
  }

  inFlight(): InFlight[] {
    const active = this.active;
    return active ? [{ transferId: active.transferId, kind: 'pull', bytes: active.bytes, size: active.request.size, startedAt: active.startedAt }] : [];
  }

  private partPath(transferId: string): string {
    return path.join(this.deps.registry.incoming, `pull-${transferId}.part`);
  }

  /** model-pull, or an announcement acted on. The same bundle already under way is joined, not restarted. */
  pull(request: PullRequest): { transferId: string; updateId: string } {
    if (request.size > this.deps.limits.maxBundleBytes)
      throw new AgentError('MODEL_BUNDLE_TOO_LARGE', `the bundle is announced at ${request.size} bytes, over modelUpdates.maxBundleMB`);
    const transferId = request.sha256.slice(0, 32);
    if (this.active?.transferId === transferId) return { transferId, updateId: this.active.updateId };
    if (this.active) throw new AgentError('MODEL_UPDATE_BUSY', `a download of ${this.active.request.url} is under way`);
    const updateId = crypto.randomUUID();
    return { transferId, updateId: this.begin(request, updateId, Date.now()).updateId };
  }

  private begin(request: PullRequest, updateId: string, startedAt: number): Active {
    const transferId = request.sha256.slice(0, 32);
    const part = this.partPath(transferId);
    const active: Active = {
      transferId,
      updateId,
      request,
      part,
      bytes: fs.existsSync(part) ? fs.statSync(part).size : 0,
      startedAt,
      abort: new AbortController(),
    };
    this.active = active;
    this.requireStore().put({
      transferId,
      updateId,
      kind: 'pull',
      trigger: request.trigger,
      size: request.size,
      sha256: request.sha256,
      chunkSize: 0,
      chunks: 0,
      received: Buffer.alloc(0),
      url: request.url,
      activate: request.activate,
      startedAt,
      updatedAt: Date.now(),
    });
    if (request.expect) this.deps.registry.markTransfer(request.expect.modelId, request.expect.version, 'downloading', request.trigger);
    this.deps.registry.audit({
      updateId,
      modelId: request.expect?.modelId ?? null,
      version: request.expect?.version ?? null,
      step: request.trigger === 'restart' ? 'pull-resumed' : 'pull-requested',
      trigger: request.trigger,
      outcome: 'info',
      code: null,
      detail: { url: redactUrl(request.url), bytes: request.size, sha256: request.sha256, have: active.bytes },
    });
    void this.run(active);
    return active;
  }

  private async run(active: Active): Promise<void> {
    const { request, updateId } = active;
    const base = { updateId, modelId: request.expect?.modelId ?? null, version: request.expect?.version ?? null, trigger: request.trigger };
    for (let attempt = 0; ; attempt++) {
      if (this.stopped) return;
      try {
        await downloadOnce({
          url: request.url,
          part: active.part,
          size: request.size,
          maxBytes: this.deps.limits.maxBundleBytes,
          idleTimeoutMs: this.deps.limits.idleTimeoutMs,
          signal: active.abort.signal,
          onBytes: (total) => {
            active.bytes = total;
            const now = Date.now();
            if (now - this.lastProgressAt >= 1000) {
              this.lastProgressAt = now;
              this.deps.onProgress();
            }
          },
        });
        break;
      } catch (error) {
        if (this.stopped) return;
        const code = isAgentError(error) ? error.code : 'MODEL_PULL_FAILED';
        const final = code === 'MODEL_PULL_HTTP_STATUS' || code === 'MODEL_BUNDLE_TOO_LARGE' || attempt + 1 >= this.deps.limits.maxAttempts;
        const have = fs.existsSync(active.part) ? fs.statSync(active.part).size : 0;
        this.deps.registry.audit({
          ...base,
          step: final ? 'pull-failed' : 'download-interrupted',
          outcome: 'failed',
          code,
          detail: { message: errorMessage(error), attempt: attempt + 1, have, bytes: request.size },
        });
        if (final) {
          // A refusal by the server or the limits drops the .part; a network failure keeps it for a resume.
          if (code === 'MODEL_PULL_HTTP_STATUS' || code === 'MODEL_BUNDLE_TOO_LARGE') this.forget(active, true);
          else this.active = undefined;
          this.deps.onProgress();
          return;
        }
        const backoff = this.deps.backoffMs ?? { initial: 1000, max: 30_000 };
        await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt, backoff.initial, backoff.max)));
      }
    }
    const complete = active.part.replace(/\.part$/, '.tar');
    fs.renameSync(active.part, complete);
    this.forget(active, false);
    this.deps.registry.audit({ ...base, step: 'downloaded', outcome: 'ok', code: null, detail: { bytes: request.size, ms: Date.now() - active.startedAt } });
    try {
      await this.deps.registry.serial(async () => {
        const admitted = await this.deps.registry.admit(complete, {
          updateId,
          trigger: request.trigger,
          size: request.size,
          sha256: request.sha256,
          ...(request.expect ? { expect: request.expect } : {}),
        });
        return request.activate ? this.deps.registry.activate(admitted.modelId, admitted.version, { updateId, trigger: 'update' }) : admitted;
      });
    } catch (error) {
      this.deps.log.warn({ err: errorMessage(error), code: isAgentError(error) ? error.code : undefined }, 'pulled model refused');
    }
    this.deps.onProgress();
  }

  private forget(active: Active, removePart: boolean): void {
    this.requireStore().delete(active.transferId);
    if (removePart) fs.rmSync(active.part, { force: true });
    if (this.active === active) this.active = undefined;
  }

  private onAnnouncement(payload: Buffer): void {
    if (payload.length === 0) return; // a cleared retained announcement
    let raw: unknown;
    try {
      raw = JSON.parse(payload.toString('utf8'));
    } catch (error) {
      this.deps.log.warn({ err: errorMessage(error) }, 'model announcement is not JSON: ignored');
      return;
    }
    const parsed = modelAnnouncementSchema.safeParse(raw);
    if (!parsed.success) {
      this.deps.log.warn({ problem: parsed.error.issues[0]?.message }, 'model announcement malformed: ignored');
      return;
    }
    this.announced.set(parsed.data.modelId, parsed.data);
    this.evaluate();
  }

  /** Acts on the announcement of the running model when it is newer, fresh, and the policy allows it now. */
  private evaluate(): void {
    if (this.stopped || this.active || this.deps.announcements === 'ignore') return;
    const running = this.deps.running();
    const announcement = this.announced.get(running.id);
    if (!announcement || this.tried.has(announcement.sha256)) return;
    if (announcement.expiresAt !== undefined && Date.parse(announcement.expiresAt) < Date.now()) return;
    const highest = this.deps.registry.highestSeen(running.id) ?? running.version;
    if (compareVersions(announcement.version, highest) <= 0) return;
    if (this.deps.announcements === 'after-retrain' && !this.deps.pendingRetrain()) return;
    this.tried.add(announcement.sha256);
    try {
      this.pull({
        url: announcement.url,
        size: announcement.size,
        sha256: announcement.sha256,
        activate: true,
        trigger: 'fleet-announcement',
        expect: { modelId: announcement.modelId, version: announcement.version },
      });
    } catch (error) {
      this.deps.log.warn({ err: errorMessage(error) }, 'announced model not pulled');
    }
  }

  private requireStore(): TransferStore {
    if (!this.store) throw new Error('model puller used before start');
    return this.store;
  }
}

/** A URL for the audit log and events: its credentials and query (a signed URL's token) left out. */
function redactUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
}
