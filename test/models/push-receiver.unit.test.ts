import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256Of } from '../../agent/common/checksum.js';
import { isAgentError } from '../../agent/errors.js';
import { resolveModel } from '../../agent/inference/model-files.js';
import { ModelUpdateService } from '../../agent/models/model-update-service.js';
import { encodeChunk, type PushAck, type PushResult, transferIdOf } from '../../agent/models/push-protocol.js';
import { PushReceiver } from '../../agent/models/push-receiver.js';
import type { IncomingMessage } from '../../agent/mqtt/mqtt-link.js';
import { deviceTopics, modelPushTopics } from '../../agent/mqtt/topics.js';
import { openDatabase } from '../../agent/storage/database.js';
import { captureLogger } from '../support/capture-log.js';
import { useTempDir } from '../support/temp-dir.js';
import { assetsDir, MANIFEST, makeBundle, testKey } from './bundle-fixtures.js';

const key = testKey();
const tempDir = useTempDir('cctv-push-');
const topics = modelPushTopics(deviceTopics('cctv', 'dev-1'));
const CHUNK = 64 * 1024;

/** A receiver on a real database with a fake broker and a hand-driven clock and timer. */
function setup(dir = tempDir(), idleTimeoutMs = 5000) {
  const db = openDatabase(path.join(dir, 'agent.db'));
  const log = captureLogger().log;
  const configModel = resolveModel(MANIFEST, assetsDir());
  let running = configModel;
  const service = new ModelUpdateService({
    db: () => db,
    deviceId: 'dev-1',
    root: path.join(dir, 'models'),
    policy: { keys: new Map([[key.id, key.publicKey]]), allowUnsigned: false },
    maxBundleBytes: 10 * 1024 * 1024,
    keepVersions: 3,
    configModel,
    running: () => running,
    swap: async (resolved) => {
      running = resolved;
      return { from: 'a', to: 'b' };
    },
    stateTopic: 'cctv/dev-1/model/state',
    publishing: false,
    recordEvent: () => undefined,
    log,
  });
  let listener: (message: IncomingMessage) => void = () => undefined;
  const acks: PushAck[] = [];
  const results: PushResult[] = [];
  let clock = 1_000_000;
  let timer: { fn: () => void; at: number } | undefined;
  const receiver = new PushReceiver({
    db: () => db,
    registry: service.registry,
    transport: {
      subscribe: (_filter, handler) => {
        listener = handler;
      },
      reply: async (topic, payload) => {
        const parsed = JSON.parse(payload.toString()) as PushAck & PushResult;
        if (topic.endsWith('/ack')) acks.push(parsed);
        else results.push(parsed);
      },
    },
    topics,
    limits: { maxBundleBytes: 10 * 1024 * 1024, maxChunkBytes: CHUNK, maxChunks: 100, idleTimeoutMs },
    onProgress: () => undefined,
    log,
    now: () => clock,
    timers: {
      set: (fn, ms) => {
        timer = { fn, at: clock + ms };
        return 0 as unknown as NodeJS.Timeout;
      },
      clear: () => {
        timer = undefined;
      },
    },
  });
  service.addChannel(receiver);
  const advance = (ms: number): void => {
    clock += ms;
    while (timer && timer.at <= clock) {
      const due = timer;
      timer = undefined;
      due.fn();
    }
  };
  const send = (transferId: string, index: number, payload: Buffer): void => listener({ topic: topics.chunk(transferId, index), payload, retain: false });
  return { db, service, receiver, acks, results, advance, send, running: () => running };
}

async function bundleOf(version: string) {
  const file = await makeBundle(tempDir(), { version, key });
  const bytes = fs.readFileSync(file);
  const sha256 = sha256Of(bytes);
  const chunks = Math.ceil(bytes.length / CHUNK);
  const chunk = (index: number) => bytes.subarray(index * CHUNK, Math.min(bytes.length, (index + 1) * CHUNK));
  return {
    bytes,
    sha256,
    chunks,
    chunk,
    transferId: transferIdOf(sha256),
    args: { transferId: transferIdOf(sha256), size: bytes.length, sha256, chunkSize: CHUNK, chunks, activate: true },
  };
}

const codeOf = (work: () => unknown): string | undefined => {
  try {
    work();
  } catch (error) {
    return isAgentError(error) ? error.code : 'not coded';
  }
  return undefined;
};

async function settle(results: PushResult[]): Promise<PushResult> {
  for (let i = 0; i < 200 && results.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  return results[0]!;
}

describe('push receiver', () => {
  it('refuses oversized, too many chunks, and inconsistent announcements with their codes', async () => {
    const ctx = setup();
    await ctx.service.start();
    const b = await bundleOf('1.1.0');
    expect(codeOf(() => ctx.receiver.begin({ ...b.args, size: 11 * 1024 * 1024, chunks: Math.ceil((11 * 1024 * 1024) / CHUNK) }))).toBe(
      'MODEL_BUNDLE_TOO_LARGE',
    );
    expect(codeOf(() => ctx.receiver.begin({ ...b.args, chunkSize: 1024, chunks: Math.ceil(b.bytes.length / 1024) }))).toBe('MODEL_BUNDLE_TOO_LARGE');
    expect(codeOf(() => ctx.receiver.begin({ ...b.args, chunks: b.chunks + 1 }))).toBe('MODEL_PUSH_CHUNK_INVALID');
    expect(codeOf(() => ctx.receiver.begin({ ...b.args, chunkSize: CHUNK * 2, chunks: Math.ceil(b.bytes.length / (CHUNK * 2)) }))).toBe(
      'MODEL_PUSH_CHUNK_INVALID',
    );
    await ctx.service.stop();
  });

  it('bad checksums, out-of-range and foreign chunks are refused; duplicates and reordering are harmless; missing chunks are named; then it activates', async () => {
    const ctx = setup();
    await ctx.service.start();
    const b = await bundleOf('1.1.0');
    expect(ctx.receiver.begin(b.args).missing).toHaveLength(b.chunks);
    const corrupt = encodeChunk(b.chunk(0));
    corrupt[40] = (corrupt[40] ?? 0) ^ 0xff;
    ctx.send(b.transferId, 0, corrupt);
    ctx.send(b.transferId, b.chunks + 3, encodeChunk(b.chunk(0)));
    ctx.send('0'.repeat(32), 0, encodeChunk(b.chunk(0)));
    expect(ctx.acks.map((ack) => [ack.ok, ack.code])).toEqual([
      [false, 'MODEL_PUSH_CHUNK_INVALID'],
      [false, 'MODEL_PUSH_CHUNK_INVALID'],
      [false, 'MODEL_PUSH_CHUNK_INVALID'],
    ]);
    // Every chunk but the first, last first, one twice.
    for (let index = b.chunks - 1; index >= 1; index--) ctx.send(b.transferId, index, encodeChunk(b.chunk(index)));
    ctx.send(b.transferId, 1, encodeChunk(b.chunk(1)));
    expect(codeOf(() => ctx.receiver.end(b.transferId))).toBe('MODEL_PUSH_CHUNK_MISSING');
    expect(ctx.running().manifest.version).toBe('1.0.0');
    ctx.send(b.transferId, 0, encodeChunk(b.chunk(0)));
    expect(ctx.receiver.end(b.transferId).state).toBe('verifying');
    const result = await settle(ctx.results);
    expect(result).toMatchObject({ ok: true, model: { version: '1.1.0' }, state: 'active' });
    const received = ctx.service.registry.registry.history(20).find((entry) => entry.step === 'received')!;
    expect(received.detail).toMatchObject({ badChunks: 2, duplicates: 1 });
    await ctx.service.stop();
  });

  it('a push abandoned half-way is refused with its code, keeps serving the old model, and resumes with only the missing chunks, across a restart', async () => {
    const dir = tempDir();
    const first = setup(dir);
    await first.service.start();
    const b = await bundleOf('1.1.0');
    first.receiver.begin(b.args);
    const half = Math.floor(b.chunks / 2);
    for (let index = 0; index < half; index++) first.send(b.transferId, index, encodeChunk(b.chunk(index)));
    first.advance(6000);
    expect(first.service.state().lastError?.code).toBe('MODEL_PUSH_ABANDONED');
    expect(first.service.state().inFlight[0]).toMatchObject({ transferId: b.transferId, kind: 'push', size: b.bytes.length });
    expect(first.running().manifest.version).toBe('1.0.0');
    await first.service.stop();
    first.db.close();

    const second = setup(dir);
    await second.service.start();
    const resumed = second.receiver.begin(b.args);
    expect(resumed.missing).toEqual(Array.from({ length: b.chunks - half }, (_, i) => half + i));
    for (const index of resumed.missing) second.send(b.transferId, index, encodeChunk(b.chunk(index)));
    second.receiver.end(b.transferId);
    expect(await settle(second.results)).toMatchObject({ ok: true, state: 'active' });
    expect(second.running().manifest.version).toBe('1.1.0');
    await second.service.stop();
  });

  it('a second, different push while one is under way is refused (busy); once abandoned it is replaced and cleaned up', async () => {
    const ctx = setup();
    await ctx.service.start();
    const a = await bundleOf('1.1.0');
    const b = await bundleOf('1.2.0');
    ctx.receiver.begin(a.args);
    ctx.send(a.transferId, 0, encodeChunk(a.chunk(0)));
    expect(codeOf(() => ctx.receiver.begin(b.args))).toBe('MODEL_UPDATE_BUSY');
    ctx.advance(6000);
    expect(ctx.receiver.begin(b.args).missing).toHaveLength(b.chunks);
    expect(ctx.service.registry.registry.history(10).some((entry) => entry.step === 'cleaned-up')).toBe(true);
    await ctx.service.stop();
  });

  it('a complete bundle whose sha256 differs from the announcement is refused', async () => {
    const ctx = setup();
    await ctx.service.start();
    const b = await bundleOf('1.1.0');
    // Announce another hash (its transfer id follows from it), then send the real bytes.
    const fake = `${'ab'.repeat(16)}${b.sha256.slice(32)}`;
    ctx.receiver.begin({ ...b.args, sha256: fake, transferId: transferIdOf(fake) });
    for (let index = 0; index < b.chunks; index++) ctx.send(transferIdOf(fake), index, encodeChunk(b.chunk(index)));
    ctx.receiver.end(transferIdOf(fake));
    expect(await settle(ctx.results)).toMatchObject({ ok: false, code: 'MODEL_BUNDLE_HASH_MISMATCH' });
    expect(ctx.running().manifest.version).toBe('1.0.0');
    await ctx.service.stop();
  });
});
