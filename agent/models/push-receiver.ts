import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AgentError, errorMessage, isAgentError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { CommandTransport } from '../mqtt/commands.js';
import type { IncomingMessage } from '../mqtt/mqtt-link.js';
import type { ModelPushTopics } from '../mqtt/topics.js';
import type { Db } from '../storage/database.js';
import type { InFlight, UpdateChannel } from './model-update-service.js';
import { PartFile } from './part-file.js';
import { decodeChunk, type PushAck, type PushBeginArgs, type PushResult, parseChunkTopic } from './push-protocol.js';
import type { ModelRegistry } from './registry.js';
import { TransferStore } from './transfer-store.js';

export interface PushLimits {
  maxBundleBytes: number;
  maxChunkBytes: number;
  maxChunks: number;
  idleTimeoutMs: number;
}

export interface PushReceiverDeps {
  db: () => Db;
  registry: ModelRegistry;
  transport: Pick<CommandTransport, 'subscribe' | 'reply'>;
  topics: ModelPushTopics;
  limits: PushLimits;
  /** The retained state changed (progress, a new or finished transfer). */
  onProgress: () => void;
  log: Logger;
  now?: () => number;
  timers?: { set: (fn: () => void, ms: number) => NodeJS.Timeout; clear: (timer: NodeJS.Timeout) => void };
}

/** Chunks a sender may have unacknowledged at once. */
const WINDOW = 8;
/** The bitmap is persisted at most this often (after an fdatasync of the .part). */
const FLUSH_EVERY_CHUNKS = 16;

interface Transfer {
  args: PushBeginArgs;
  updateId: string;
  part: PartFile;
  startedAt: number;
  lastChunkAt: number;
  badChunks: number;
  duplicates: number;
  unflushed: number;
  abandoned: boolean;
  idle: NodeJS.Timeout | undefined;
}

/**
 * Receives pushed bundles: one transfer at a time, each chunk checked against its checksum and
 * written at its offset into a .part file, acknowledged (which paces the sender), the bitmap of
 * chunks held kept in SQLite so a restart or a new push of the same bundle resumes with only the
 * missing chunks. A complete bundle is handed to the registry (verify, then activate).
 */
export class PushReceiver implements UpdateChannel {
  private transfer: Transfer | undefined;
  private progressAt = 0;
  private store: TransferStore | undefined;
  private readonly now: () => number;
  private readonly timers: NonNullable<PushReceiverDeps['timers']>;

  constructor(private readonly deps: PushReceiverDeps) {
    this.now = deps.now ?? Date.now;
    this.timers = deps.timers ?? { set: (fn, ms) => setTimeout(fn, ms), clear: (timer) => clearTimeout(timer) };
  }

  private partPath(transferId: string): string {
    return path.join(this.deps.registry.incoming, `push-${transferId}.part`);
  }

  async start(): Promise<void> {
    this.store = new TransferStore(this.deps.db());
    for (const row of this.store.list('push')) {
      const file = this.partPath(row.transferId);
      if (this.transfer || !fs.existsSync(file)) {
        this.store.delete(row.transferId);
        fs.rmSync(file, { force: true });
        this.deps.registry.audit({
          updateId: row.updateId,
          modelId: null,
          version: null,
          step: 'cleaned-up',
          trigger: 'restart',
          outcome: 'info',
          code: null,
          detail: { transferId: row.transferId },
        });
        continue;
      }
      const args: PushBeginArgs = {
        transferId: row.transferId,
        size: row.size,
        sha256: row.sha256,
        chunkSize: row.chunkSize,
        chunks: row.chunks,
        activate: row.activate,
      };
      const part = new PartFile(file, row.size, row.chunkSize, row.chunks, row.received);
      this.transfer = {
        args,
        updateId: row.updateId,
        part,
        startedAt: row.startedAt,
        lastChunkAt: this.now(),
        badChunks: 0,
        duplicates: 0,
        unflushed: 0,
        abandoned: false,
        idle: undefined,
      };
      this.armIdle(this.transfer);
      this.deps.registry.audit({
        updateId: row.updateId,
        modelId: null,
        version: null,
        step: 'resumable',
        trigger: 'restart',
        outcome: 'info',
        code: null,
        detail: { transferId: row.transferId, received: part.received, chunks: row.chunks },
      });
    }
    this.deps.transport.subscribe(this.deps.topics.chunkFilter, (message) => this.onChunk(message));
  }

  async stop(): Promise<void> {
    const transfer = this.transfer;
    if (!transfer) return;
    if (transfer.idle) this.timers.clear(transfer.idle);
    this.persist(transfer);
    transfer.part.close();
    this.transfer = undefined;
  }

  inFlight(): InFlight[] {
    const transfer = this.transfer;
    return transfer
      ? [{ transferId: transfer.args.transferId, kind: 'push', bytes: transfer.part.bytes, size: transfer.args.size, startedAt: transfer.startedAt }]
      : [];
  }

  /** model-push-begin: a new transfer, or the same one resumed (only its missing chunks are asked for). */
  begin(args: PushBeginArgs): { transferId: string; updateId: string; missing: number[]; window: number } {
    const { limits } = this.deps;
    if (args.size > limits.maxBundleBytes)
      throw new AgentError('MODEL_BUNDLE_TOO_LARGE', `the push announces ${args.size} bytes, over modelUpdates.maxBundleMB`);
    if (args.chunks > limits.maxChunks)
      throw new AgentError('MODEL_BUNDLE_TOO_LARGE', `the push announces ${args.chunks} chunks, over modelUpdates.push.maxChunks (${limits.maxChunks})`);
    if (args.chunkSize > limits.maxChunkBytes)
      throw new AgentError('MODEL_PUSH_CHUNK_INVALID', `chunks of ${args.chunkSize} bytes are over modelUpdates.push.maxChunkBytes (${limits.maxChunkBytes})`);
    if (args.chunks !== Math.ceil(args.size / args.chunkSize))
      throw new AgentError(
        'MODEL_PUSH_CHUNK_INVALID',
        `${args.size} bytes in chunks of ${args.chunkSize} make ${Math.ceil(args.size / args.chunkSize)} chunks, not ${args.chunks}`,
      );
    if (args.transferId !== args.sha256.slice(0, 32))
      throw new AgentError('MODEL_PUSH_CHUNK_INVALID', 'the transfer id must be the first 32 hex digits of the sha256');
    const current = this.transfer;
    if (current && current.args.transferId === args.transferId && current.args.size === args.size && current.args.chunkSize === args.chunkSize) {
      current.abandoned = false;
      current.args.activate = args.activate;
      current.lastChunkAt = this.now();
      this.armIdle(current);
      const missing = current.part.missing();
      this.deps.registry.audit({
        updateId: current.updateId,
        modelId: null,
        version: null,
        step: 'push-resumed',
        trigger: 'mqtt-push',
        outcome: 'info',
        code: null,
        detail: { transferId: args.transferId, missing: missing.length, chunks: args.chunks },
      });
      return { transferId: args.transferId, updateId: current.updateId, missing, window: WINDOW };
    }
    if (current && !current.abandoned)
      throw new AgentError('MODEL_UPDATE_BUSY', `push ${current.args.transferId} is under way (${current.part.received}/${current.args.chunks} chunks)`);
    if (current) this.discard(current, 'replaced by a new push');
    const updateId = crypto.randomUUID();
    const now = this.now();
    const part = new PartFile(this.partPath(args.transferId), args.size, args.chunkSize, args.chunks);
    this.transfer = { args, updateId, part, startedAt: now, lastChunkAt: now, badChunks: 0, duplicates: 0, unflushed: 0, abandoned: false, idle: undefined };
    this.requireStore().put({ ...args, updateId, kind: 'push', trigger: 'mqtt-push', received: part.bitmap, url: null, startedAt: now, updatedAt: now });
    this.armIdle(this.transfer);
    this.deps.registry.audit({
      updateId,
      modelId: null,
      version: null,
      step: 'push-announced',
      trigger: 'mqtt-push',
      outcome: 'info',
      code: null,
      detail: { transferId: args.transferId, sha256: args.sha256, bytes: args.size, chunks: args.chunks, chunkSize: args.chunkSize, activate: args.activate },
    });
    return { transferId: args.transferId, updateId, missing: part.missing(), window: WINDOW };
  }

  /** model-push-end: all chunks held -> verification starts (its outcome on .../result); else the missing ones are named. */
  end(transferId: string): { transferId: string; state: 'verifying' } {
    const transfer = this.transfer;
    if (!transfer || transfer.args.transferId !== transferId)
      throw new AgentError('MODEL_PUSH_CHUNK_MISSING', `no push ${transferId} is under way: begin it (again)`);
    const missing = transfer.part.missing();
    if (missing.length > 0) {
      this.deps.registry.audit({
        updateId: transfer.updateId,
        modelId: null,
        version: null,
        step: 'push-incomplete',
        trigger: 'mqtt-push',
        outcome: 'refused',
        code: 'MODEL_PUSH_CHUNK_MISSING',
        detail: { message: `${missing.length} chunk(s) missing`, missing: missing.slice(0, 50) },
      });
      throw new AgentError(
        'MODEL_PUSH_CHUNK_MISSING',
        `${missing.length} of ${transfer.args.chunks} chunks are missing (first: ${missing.slice(0, 10).join(', ')}): push again to send only those`,
      );
    }
    void this.finish(transfer);
    return { transferId, state: 'verifying' };
  }

  private onChunk(message: IncomingMessage): void {
    const where = parseChunkTopic(message.topic);
    if (!where) return;
    const transfer = this.transfer;
    const refuse = (why: string): void => {
      if (transfer && transfer.args.transferId === where.transferId) transfer.badChunks++;
      this.deps.log.debug({ transferId: where.transferId, index: where.index, why }, 'chunk refused');
      this.ack({ transferId: where.transferId, index: where.index, ok: false, code: 'MODEL_PUSH_CHUNK_INVALID', received: transfer?.part.received ?? 0 });
    };
    const data = transfer?.args.transferId === where.transferId && where.index < transfer.args.chunks ? decodeChunk(message.payload) : undefined;
    if (!transfer || transfer.args.transferId !== where.transferId) {
      refuse('no such push under way');
      return;
    }
    if (!data || data.length !== transfer.part.lengthOf(where.index)) {
      refuse(where.index >= transfer.args.chunks ? 'index out of range' : data ? `length ${data.length}` : 'checksum mismatch');
      return;
    }
    transfer.lastChunkAt = this.now();
    if (transfer.abandoned) transfer.abandoned = false;
    if (transfer.part.write(where.index, data) === 'duplicate') transfer.duplicates++;
    else transfer.unflushed++;
    if (transfer.unflushed >= FLUSH_EVERY_CHUNKS) this.persist(transfer);
    this.ack({ transferId: where.transferId, index: where.index, ok: true, code: null, received: transfer.part.received });
    // Progress in the retained state at most once a second: not one outbox message per chunk.
    if (transfer.lastChunkAt - this.progressAt >= 1000) {
      this.progressAt = transfer.lastChunkAt;
      this.deps.onProgress();
    }
  }

  private ack(ack: PushAck): void {
    this.deps.transport.reply(this.deps.topics.ack(ack.transferId), Buffer.from(JSON.stringify(ack))).catch((error: unknown) => {
      this.deps.log.debug({ err: errorMessage(error) }, 'chunk ack not sent');
    });
  }

  private persist(transfer: Transfer): void {
    if (transfer.unflushed === 0) return;
    transfer.part.flush();
    this.requireStore().saveProgress(transfer.args.transferId, transfer.part.bitmap, this.now());
    transfer.unflushed = 0;
  }

  /** No chunk for idleTimeoutMs: the push is abandoned (audited); its .part stays for a resume until another push replaces it. */
  private armIdle(transfer: Transfer): void {
    if (transfer.idle) this.timers.clear(transfer.idle);
    const check = (): void => {
      const quiet = this.now() - transfer.lastChunkAt;
      if (quiet < this.deps.limits.idleTimeoutMs) {
        transfer.idle = this.timers.set(check, this.deps.limits.idleTimeoutMs - quiet);
        return;
      }
      transfer.idle = undefined;
      transfer.abandoned = true;
      this.persist(transfer);
      this.deps.registry.audit({
        updateId: transfer.updateId,
        modelId: null,
        version: null,
        step: 'push-abandoned',
        trigger: 'mqtt-push',
        outcome: 'failed',
        code: 'MODEL_PUSH_ABANDONED',
        detail: { message: `no chunk for ${Math.round(quiet / 1000)} s`, received: transfer.part.received, chunks: transfer.args.chunks },
      });
    };
    transfer.idle = this.timers.set(check, this.deps.limits.idleTimeoutMs);
  }

  private discard(transfer: Transfer, why: string): void {
    if (transfer.idle) this.timers.clear(transfer.idle);
    transfer.part.close();
    fs.rmSync(transfer.part.file, { force: true });
    this.requireStore().delete(transfer.args.transferId);
    if (this.transfer === transfer) this.transfer = undefined;
    this.deps.registry.audit({
      updateId: transfer.updateId,
      modelId: null,
      version: null,
      step: 'cleaned-up',
      trigger: 'mqtt-push',
      outcome: 'info',
      code: null,
      detail: { transferId: transfer.args.transferId, why },
    });
  }

  private async finish(transfer: Transfer): Promise<void> {
    if (transfer.idle) this.timers.clear(transfer.idle);
    transfer.part.close();
    const complete = transfer.part.file.replace(/\.part$/, '.tar');
    fs.renameSync(transfer.part.file, complete);
    this.requireStore().delete(transfer.args.transferId);
    this.transfer = undefined;
    const { args, updateId } = transfer;
    this.deps.registry.audit({
      updateId,
      modelId: null,
      version: null,
      step: 'received',
      trigger: 'mqtt-push',
      outcome: 'ok',
      code: null,
      detail: {
        transferId: args.transferId,
        bytes: args.size,
        chunks: args.chunks,
        badChunks: transfer.badChunks,
        duplicates: transfer.duplicates,
        ms: this.now() - transfer.startedAt,
      },
    });
    const result: PushResult = { transferId: args.transferId, updateId, ok: false, code: null, message: null, model: null, state: null };
    try {
      const row = await this.deps.registry.serial(async () => {
        const admitted = await this.deps.registry.admit(complete, { updateId, trigger: 'mqtt-push', size: args.size, sha256: args.sha256 });
        return args.activate ? this.deps.registry.activate(admitted.modelId, admitted.version, { updateId, trigger: 'update' }) : admitted;
      });
      Object.assign(result, { ok: true, model: { id: row.modelId, version: row.version }, state: row.state });
    } catch (error) {
      Object.assign(result, { code: isAgentError(error) ? error.code : 'INTERNAL', message: errorMessage(error) });
    }
    this.deps.onProgress();
    await this.deps.transport.reply(this.deps.topics.result(args.transferId), Buffer.from(JSON.stringify(result))).catch((error: unknown) => {
      this.deps.log.warn({ err: errorMessage(error) }, 'push result not sent (the retained model state has it)');
    });
  }

  private requireStore(): TransferStore {
    if (!this.store) throw new Error('push receiver used before start');
    return this.store;
  }
}
