import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256Of } from '../../agent/common/checksum.js';
import { resolveModel } from '../../agent/inference/model-files.js';
import { ModelUpdateService } from '../../agent/models/model-update-service.js';
import { ModelPuller } from '../../agent/models/puller.js';
import type { IncomingMessage } from '../../agent/mqtt/mqtt-link.js';
import { openDatabase } from '../../agent/storage/database.js';
import { captureLogger } from '../support/capture-log.js';
import { useTempDir } from '../support/temp-dir.js';
import { waitFor } from '../support/wait.js';
import { assetsDir, MANIFEST, makeBundle, testKey } from './bundle-fixtures.js';

const key = testKey();
const tempDir = useTempDir('cctv-pull-');
const servers: http.Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

type Behaviour = (req: http.IncomingMessage, res: http.ServerResponse, bytes: Buffer) => void;

/** A local HTTP server for the bundle, its behaviour per request; it records the Range headers asked. */
async function serve(bytes: Buffer, behaviours: Behaviour[], port = 0): Promise<{ url: string; ranges: Array<string | undefined>; port: number }> {
  const ranges: Array<string | undefined> = [];
  let count = 0;
  const server = http.createServer((req, res) => {
    ranges.push(req.headers.range);
    const behaviour = behaviours[Math.min(count++, behaviours.length - 1)]!;
    behaviour(req, res, bytes);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${actual}/bundle.tar`, ranges, port: actual };
}

const full: Behaviour = (req, res, bytes) => {
  const match = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = match ? Number(match[1]) : 0;
  res.writeHead(match ? 206 : 200, { 'content-length': bytes.length - start });
  res.end(bytes.subarray(start));
};
const halfThenDie: Behaviour = (_req, res, bytes) => {
  res.writeHead(200, { 'content-length': bytes.length });
  res.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => setTimeout(() => res.socket?.destroy(), 50));
};

function setup(options: { announcements?: 'after-retrain' | 'always' | 'ignore'; pending?: () => boolean; idleTimeoutMs?: number } = {}) {
  const dir = tempDir();
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
  let announce: (message: IncomingMessage) => void = () => undefined;
  const puller = new ModelPuller({
    db: () => db,
    registry: service.registry,
    limits: { maxBundleBytes: 10 * 1024 * 1024, idleTimeoutMs: options.idleTimeoutMs ?? 2000, maxAttempts: 3 },
    announcements: options.announcements ?? 'after-retrain',
    fleet: {
      transport: {
        subscribe: (_filter, listener) => {
          announce = listener;
        },
      },
      filter: 'cctv/fleet/models/+',
    },
    pendingRetrain: options.pending ?? (() => false),
    running: () => ({ id: running.manifest.id, version: running.manifest.version }),
    onProgress: () => undefined,
    log,
    recheckMs: 100,
    backoffMs: { initial: 100, max: 200 },
  });
  service.addChannel(puller);
  const steps = () =>
    service.registry.registry
      .history(100)
      .reverse()
      .map((entry) => `${entry.step}${entry.code ? `:${entry.code}` : ''}`);
  return {
    dir,
    service,
    puller,
    steps,
    running: () => running,
    announce: (payload: unknown) => announce({ topic: 'cctv/fleet/models/yolox-nano-int8', payload: Buffer.from(JSON.stringify(payload)), retain: true }),
  };
}

async function bundle(version: string) {
  const file = await makeBundle(tempDir(), { version, key });
  const bytes = fs.readFileSync(file);
  return { bytes, sha256: sha256Of(bytes), size: bytes.length };
}

describe('pull over HTTP', () => {
  it('HTTP 404 is refused with its code, nothing kept, the old model serving', async () => {
    const ctx = setup();
    await ctx.service.start();
    const b = await bundle('1.1.0');
    const server = await serve(b.bytes, [(_req, res) => res.writeHead(404).end()]);
    ctx.puller.pull({ url: server.url, size: b.size, sha256: b.sha256, activate: true, trigger: 'mqtt-pull' });
    await waitFor(
      () => ctx.steps().includes('pull-failed:MODEL_PULL_HTTP_STATUS'),
      5000,
      () => ctx.steps().join(' '),
    );
    expect(ctx.running().manifest.version).toBe('1.0.0');
    expect(fs.readdirSync(path.join(ctx.dir, 'models', 'incoming'))).toEqual([]);
    expect(ctx.service.state().lastError?.code).toBe('MODEL_PULL_HTTP_STATUS');
    await ctx.service.stop();
  });

  it('a server that stalls: MODEL_PULL_TIMEOUT, retried (resuming), given up after maxAttempts with the .part kept', async () => {
    const ctx = setup({ idleTimeoutMs: 300 });
    await ctx.service.start();
    const b = await bundle('1.1.0');
    const stall: Behaviour = (_req, res, bytes) => {
      res.writeHead(200, { 'content-length': bytes.length });
      res.write(bytes.subarray(0, 1000));
    };
    const server = await serve(b.bytes, [stall]);
    ctx.puller.pull({ url: server.url, size: b.size, sha256: b.sha256, activate: true, trigger: 'mqtt-pull' });
    await waitFor(
      () => ctx.steps().includes('pull-failed:MODEL_PULL_TIMEOUT'),
      10_000,
      () => ctx.steps().join(' '),
    );
    expect(ctx.steps().filter((step) => step === 'download-interrupted:MODEL_PULL_TIMEOUT')).toHaveLength(2);
    expect(server.ranges.slice(1).every((range) => range?.startsWith('bytes='))).toBe(true);
    expect(ctx.running().manifest.version).toBe('1.0.0');
    await ctx.service.stop();
  });

  it('killed mid-transfer, then resumed with Range: verified and activated', async () => {
    const ctx = setup();
    await ctx.service.start();
    const b = await bundle('1.1.0');
    const server = await serve(b.bytes, [halfThenDie, full]);
    ctx.puller.pull({ url: server.url, size: b.size, sha256: b.sha256, activate: true, trigger: 'mqtt-pull' });
    await waitFor(
      () => ctx.running().manifest.version === '1.1.0',
      10_000,
      () => ctx.steps().join(' '),
    );
    expect(server.ranges[0]).toBeUndefined();
    expect(server.ranges[1]).toMatch(/^bytes=\d+-$/);
    expect(Number(/\d+/.exec(server.ranges[1]!)![0])).toBeGreaterThan(0);
    expect(ctx.steps()).toEqual(
      expect.arrayContaining(['pull-requested', 'download-interrupted:MODEL_BUNDLE_TRUNCATED', 'downloaded', 'verified', 'activated']),
    );
    await ctx.service.stop();
  });

  it('a server sending more than announced is refused (oversized), and so is an announcement over the limit', async () => {
    const ctx = setup();
    await ctx.service.start();
    const b = await bundle('1.1.0');
    const server = await serve(b.bytes, [full]);
    ctx.puller.pull({ url: server.url, size: b.size - 5000, sha256: b.sha256, activate: true, trigger: 'mqtt-pull' });
    await waitFor(
      () => ctx.steps().includes('pull-failed:MODEL_BUNDLE_TOO_LARGE'),
      5000,
      () => ctx.steps().join(' '),
    );
    expect(() => ctx.puller.pull({ url: server.url, size: 50 * 1024 * 1024, sha256: b.sha256, activate: true, trigger: 'mqtt-pull' })).toThrow(
      /over modelUpdates.maxBundleMB/,
    );
    await ctx.service.stop();
  });

  it('a fleet announcement is pulled once a retrain request is pending (not before), and not when stale or not newer', async () => {
    let pending = false;
    const ctx = setup({ pending: () => pending });
    await ctx.service.start();
    const b = await bundle('1.1.0');
    const server = await serve(b.bytes, [full]);
    const announcement = { modelId: 'yolox-nano-int8', version: '1.1.0', url: server.url, size: b.size, sha256: b.sha256 };
    ctx.announce({ ...announcement, expiresAt: new Date(Date.now() - 1000).toISOString() });
    ctx.announce({ ...announcement, version: '1.0.0' });
    ctx.announce(announcement);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(server.ranges).toHaveLength(0);
    pending = true;
    await waitFor(
      () => ctx.running().manifest.version === '1.1.0',
      10_000,
      () => ctx.steps().join(' '),
    );
    expect(ctx.steps()).toEqual(expect.arrayContaining(['pull-requested', 'downloaded', 'verified', 'activated']));
    expect(ctx.service.registry.registry.history(50).find((entry) => entry.step === 'pull-requested')?.trigger).toBe('fleet-announcement');
    await ctx.service.stop();
  });
});
