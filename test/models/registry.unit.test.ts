import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isAgentError } from '../../agent/errors.js';
import { type ResolvedModel, resolveModel } from '../../agent/inference/model-files.js';
import { captureLogger } from '../support/capture-log.js';
import { bootModel } from '../../agent/models/boot-model.js';
import { ModelUpdateService } from '../../agent/models/model-update-service.js';
import { openDatabase } from '../../agent/storage/database.js';
import type { AgentEvent } from '../../agent/storage/event-schema.js';
import { useTempDir } from '../support/temp-dir.js';
import { assetsDir, MANIFEST, makeBundle, testKey } from './bundle-fixtures.js';

const key = testKey();
const tempDir = useTempDir('cctv-registry-');
const log = captureLogger().log;

function setup(options: { keepVersions?: number; failSwap?: boolean } = {}) {
  const dir = tempDir();
  const databaseFile = path.join(dir, 'agent.db');
  const db = openDatabase(databaseFile);
  const configModel = resolveModel(MANIFEST, assetsDir());
  let running: ResolvedModel = configModel;
  const swaps: string[] = [];
  const events: AgentEvent[] = [];
  const service = new ModelUpdateService({
    db: () => db,
    deviceId: 'dev-1',
    root: path.join(dir, 'models'),
    policy: { keys: new Map([[key.id, key.publicKey]]), allowUnsigned: false },
    maxBundleBytes: 50 * 1024 * 1024,
    keepVersions: options.keepVersions ?? 3,
    configModel,
    running: () => running,
    swap: async (resolved, trigger) => {
      if (options.failSwap) throw Object.assign(new Error('load failed'));
      const from = `${running.manifest.id}@${running.manifest.version}`;
      running = resolved;
      swaps.push(`${resolved.manifest.version}:${trigger}`);
      return { from, to: `${resolved.manifest.id}@${resolved.manifest.version}` };
    },
    stateTopic: 'cctv/dev-1/model/state',
    publishing: true,
    recordEvent: (event) => events.push(event),
    log,
  });
  const setRunning = (model: ResolvedModel): void => {
    running = model;
  };
  return { dir, db, databaseFile, service, swaps, events, configModel, running: () => running, setRunning };
}

async function push(ctx: ReturnType<typeof setup>, version: string, updateId = `u-${version}`) {
  const bundle = await makeBundle(ctx.dir, { version, key });
  const row = await ctx.service.registry.serial(() => ctx.service.registry.admit(bundle, { updateId, trigger: 'test' }));
  return ctx.service.registry.serial(() => ctx.service.registry.activate(row.modelId, row.version, { updateId, trigger: 'update' }));
}

const states = (ctx: ReturnType<typeof setup>) => Object.fromEntries(ctx.service.registry.registry.list().map((row) => [row.version, row.state]));

describe('model registry', () => {
  it('records the config model as active at the first start, then moves forward through verified -> active -> previous', async () => {
    const ctx = setup();
    await ctx.service.start();
    expect(states(ctx)).toEqual({ '1.0.0': 'active' });
    await push(ctx, '1.1.0');
    await push(ctx, '1.2.0');
    expect(states(ctx)).toEqual({ '1.0.0': 'previous', '1.1.0': 'previous', '1.2.0': 'active' });
    expect(ctx.swaps).toEqual(['1.1.0:update', '1.2.0:update']);
    const state = ctx.service.state();
    expect(state.active).toMatchObject({ id: 'yolox-nano-int8', version: '1.2.0', keyId: key.id });
    expect(state.previous.map((entry) => entry.version)).toEqual(['1.1.0', '1.0.0']);
    // The retained state went through the outbox, retained.
    const retained = ctx.db.prepare("SELECT retain FROM outbox WHERE topic = 'cctv/dev-1/model/state'").all() as Array<{ retain: number }>;
    expect(retained.length).toBeGreaterThan(0);
    expect(retained.every((row) => row.retain === 1)).toBe(true);
    await ctx.service.stop();
  });

  it('rolls back to the previous version, and the audit log has the whole chain of an update', async () => {
    const ctx = setup();
    await ctx.service.start();
    await push(ctx, '1.1.0', 'update-A');
    await ctx.service.rollback('cli');
    expect(ctx.running().manifest.version).toBe('1.0.0');
    expect(states(ctx)).toMatchObject({ '1.0.0': 'active', '1.1.0': 'previous' });
    expect(ctx.swaps.at(-1)).toBe('1.0.0:rollback');
    const chain = ctx.service.registry.registry.chain('update-A').map((entry) => `${entry.step}:${entry.outcome}`);
    expect(chain).toEqual(['verified:ok', 'activating:info', 'activated:ok']);
    const verified = ctx.service.registry.registry.chain('update-A')[0]!;
    expect(verified.detail).toMatchObject({ keyId: key.id, unsigned: false });
    expect(verified.detail?.['sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(ctx.events.filter((event) => event.kind === 'model-update').length).toBeGreaterThanOrEqual(6);
    await ctx.service.stop();
  });

  it('refuses a downgrade (and the same version again) while the active model keeps running', async () => {
    const ctx = setup();
    await ctx.service.start();
    await push(ctx, '1.2.0');
    for (const version of ['1.1.0', '1.2.0']) {
      const bundle = await makeBundle(ctx.dir, { version, key });
      const refused = await ctx.service.registry.admit(bundle, { updateId: `d-${version}`, trigger: 'test' }).catch((error: unknown) => error);
      expect(isAgentError(refused) && refused.code).toBe('MODEL_DOWNGRADE');
      expect(fs.existsSync(bundle)).toBe(false);
    }
    expect(ctx.running().manifest.version).toBe('1.2.0');
    expect(states(ctx)['1.2.0']).toBe('active');
    expect(ctx.service.state().lastError?.code).toBe('MODEL_DOWNGRADE');
    await ctx.service.stop();
  });

  it('refuses a bundle whose announced sha256 or size differs', async () => {
    const ctx = setup();
    await ctx.service.start();
    const bundle = await makeBundle(ctx.dir, { version: '1.1.0', key });
    const size = fs.statSync(bundle).size;
    const wrongHash = await ctx.service.registry.admit(bundle, { updateId: 'h', trigger: 'test', sha256: '0'.repeat(64) }).catch((error: unknown) => error);
    expect(isAgentError(wrongHash) && wrongHash.code).toBe('MODEL_BUNDLE_HASH_MISMATCH');
    const again = await makeBundle(ctx.dir, { version: '1.1.0', key });
    const wrongSize = await ctx.service.registry.admit(again, { updateId: 's', trigger: 'test', size: size + 1 }).catch((error: unknown) => error);
    expect(isAgentError(wrongSize) && wrongSize.code).toBe('MODEL_BUNDLE_TRUNCATED');
    await ctx.service.stop();
  });

  it('keeps keepVersions on disk and retires the rest, deleting their files', async () => {
    const ctx = setup({ keepVersions: 2 });
    await ctx.service.start();
    await push(ctx, '1.1.0');
    await push(ctx, '1.2.0');
    await push(ctx, '1.3.0');
    expect(states(ctx)).toEqual({ '1.0.0': 'retired', '1.1.0': 'retired', '1.2.0': 'previous', '1.3.0': 'active' });
    expect(fs.existsSync(path.join(ctx.dir, 'models', 'yolox-nano-int8', '1.1.0'))).toBe(false);
    expect(fs.existsSync(path.join(ctx.dir, 'models', 'yolox-nano-int8', '1.2.0'))).toBe(true);
    await ctx.service.stop();
  });

  it('a failed swap rejects the candidate and keeps the running model', async () => {
    const ctx = setup({ failSwap: true });
    await ctx.service.start();
    const refused = await push(ctx, '1.1.0').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(Error);
    expect(states(ctx)).toEqual({ '1.0.0': 'active', '1.1.0': 'rejected' });
    await ctx.service.stop();
  });

  it('boots with the registry active version, and resumes an activation a crash cut short (once)', async () => {
    const ctx = setup();
    await ctx.service.start();
    await push(ctx, '1.1.0');
    expect(bootModel(ctx.databaseFile, ctx.configModel, log).manifest.version).toBe('1.1.0');
    // A candidate verified, its activation started, and then the process died: no row changed.
    const bundle = await makeBundle(ctx.dir, { version: '1.2.0', key });
    await ctx.service.registry.admit(bundle, { updateId: 'crash', trigger: 'test' });
    ctx.service.registry.audit({
      updateId: 'crash',
      modelId: 'yolox-nano-int8',
      version: '1.2.0',
      step: 'activating',
      trigger: 'update',
      outcome: 'info',
      code: null,
      detail: null,
    });
    await ctx.service.stop();
    expect(bootModel(ctx.databaseFile, ctx.configModel, log).manifest.version).toBe('1.1.0');
    await ctx.service.start();
    expect(states(ctx)).toMatchObject({ '1.1.0': 'previous', '1.2.0': 'active' });
    expect(ctx.service.registry.registry.chain('crash').map((entry) => entry.step)).toEqual([
      'verified',
      'activating',
      'activation-interrupted',
      'activating',
      'activated',
    ]);
    await ctx.service.stop();
  });
});

describe('model registry and swaps it did not make', () => {
  it('a SIGHUP swap to another model version is followed: that version becomes active, the one before previous', async () => {
    const ctx = setup();
    await ctx.service.start();
    await push(ctx, '1.1.0');
    // What SIGHUP does: the agent swaps to the config's new model, then tells the registry.
    ctx.setRunning({ ...ctx.configModel, manifest: { ...ctx.configModel.manifest, version: '2.0.0' } });
    ctx.service.followSwap('sighup');
    await ctx.service.registry.serial(async () => undefined);
    expect(states(ctx)).toMatchObject({ '1.1.0': 'previous', '2.0.0': 'active' });
    expect(ctx.service.registry.registry.list().find((row) => row.version === '2.0.0')?.source).toBe('config');
    await ctx.service.stop();
  });
});
