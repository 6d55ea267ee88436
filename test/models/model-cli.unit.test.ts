import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../agent/cli/main.js';
import { resolveModel } from '../../agent/inference/model-files.js';
import { ModelUpdateService } from '../../agent/models/model-update-service.js';
import { openDatabase } from '../../agent/storage/database.js';
import { captureLogger } from '../support/capture-log.js';
import { useTempDir } from '../support/temp-dir.js';
import { assetsDir, MANIFEST, testKey } from './bundle-fixtures.js';

const tempDir = useTempDir('cctv-model-cli-');

function captureIo() {
  let out = '';
  let err = '';
  const writer = (append: (text: string) => void) => ({
    write: (text: string): boolean => {
      append(text);
      return true;
    },
  });
  const io = {
    out: writer((text) => {
      out += text;
    }),
    err: writer((text) => {
      err += text;
    }),
    env: {},
  } as never;
  return { io, out: () => out, err: () => err };
}

async function run(args: string[]) {
  const capture = captureIo();
  const code = await main(args, capture.io);
  return { code, out: capture.out(), err: capture.err() };
}

describe('cctv-agent model keygen | pack | sign | verify | list | history', () => {
  it('keygen, pack unsigned, sign, verify against the public key and against a config; --json throughout', async () => {
    const dir = tempDir();
    const keygen = await run(['model', 'keygen', '--out', path.join(dir, 'ops'), '--json']);
    expect(keygen.code).toBe(0);
    const key = JSON.parse(keygen.out) as { keyId: string; publicKey: string };
    expect(key.keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(fs.statSync(path.join(dir, 'ops.key')).mode & 0o777).toBe(0o600);
    expect((await run(['model', 'keygen', '--out', path.join(dir, 'ops')])).code).toBe(2);

    const bundle = path.join(dir, 'b.tar');
    const pack = await run(['model', 'pack', '--manifest', MANIFEST, '--assets', assetsDir(), '--out', bundle, '--version', '1.4.0', '--json']);
    expect(pack.code, pack.err).toBe(0);
    expect(JSON.parse(pack.out)).toMatchObject({ id: 'yolox-nano-int8', version: '1.4.0', keyId: null });

    const unsigned = await run(['model', 'verify', bundle, '--trust', path.join(dir, 'ops.pub')]);
    expect(unsigned.code).toBe(1);
    expect(unsigned.err).toContain('MODEL_BUNDLE_UNSIGNED');
    const allowed = await run(['model', 'verify', bundle, '--allow-unsigned']);
    expect(allowed.code).toBe(0);
    expect(allowed.err).toContain('UNSIGNED');

    const sign = await run(['model', 'sign', bundle, '--key', path.join(dir, 'ops.key'), '--json']);
    expect(JSON.parse(sign.out)).toMatchObject({ keyId: key.keyId });
    const verify = await run(['model', 'verify', bundle, '--trust', path.join(dir, 'ops.pub'), '--json']);
    expect(verify.code, verify.err).toBe(0);
    expect(JSON.parse(verify.out)).toMatchObject({ ok: true, version: '1.4.0', keyId: key.keyId });

    const config = path.join(dir, 'config.yaml');
    fs.writeFileSync(
      config,
      [
        'deviceId: cli',
        `dataDir: ${path.join(dir, 'data')}`,
        'cameras: [{ id: c1, url: "rtsp://127.0.0.1:9/x" }]',
        `model: { manifest: ${MANIFEST} }`,
        'modelUpdates:',
        `  trustedKeys: [{ id: ${key.keyId}, publicKey: "${key.publicKey}" }]`,
        '',
      ].join('\n'),
    );
    const withConfig = await run(['model', 'verify', bundle, '--config', config]);
    expect(withConfig.code, withConfig.err).toBe(0);
    expect(withConfig.out).toContain('fits the running yolox-nano-int8');
    const stranger = testKey();
    fs.writeFileSync(
      path.join(dir, 'other.yaml'),
      fs.readFileSync(config, 'utf8').replace(/trustedKeys: .*/, `trustedKeys: [{ id: ${stranger.id}, publicKey: "${stranger.publicKeyRaw}" }]`),
    );
    const unknown = await run(['model', 'verify', bundle, '--config', path.join(dir, 'other.yaml')]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('MODEL_BUNDLE_KEY_UNKNOWN');
  });

  it('list and history read the registry from the database', async () => {
    const dir = tempDir();
    const dataDir = path.join(dir, 'data');
    const db = openDatabase(path.join(dataDir, 'agent.db'));
    const configModel = resolveModel(MANIFEST, assetsDir());
    const service = new ModelUpdateService({
      db: () => db,
      deviceId: 'cli',
      root: path.join(dataDir, 'models'),
      policy: { keys: new Map(), allowUnsigned: false },
      maxBundleBytes: 1 << 20,
      keepVersions: 3,
      configModel,
      running: () => configModel,
      swap: async () => ({ from: 'a', to: 'b' }),
      stateTopic: 'cctv/cli/model/state',
      publishing: false,
      recordEvent: () => undefined,
      log: captureLogger().log,
    });
    await service.start();
    await service.stop();
    db.close();
    const list = await run(['model', 'list', '--data-dir', dataDir, '--json']);
    expect(list.code, list.err).toBe(0);
    expect(JSON.parse(list.out).versions).toEqual([expect.objectContaining({ id: 'yolox-nano-int8', version: '1.0.0', state: 'active', source: 'config' })]);
    const history = await run(['model', 'history', '--data-dir', dataDir]);
    expect(history.code, history.err).toBe(0);
    expect(history.out).toContain('running');
  });

  it('a crash during verification leaves a received bundle and a staging directory: both cleaned up at the next start', async () => {
    const dir = tempDir();
    const db = openDatabase(path.join(dir, 'agent.db'));
    const root = path.join(dir, 'models');
    fs.mkdirSync(path.join(root, 'incoming'), { recursive: true });
    fs.mkdirSync(path.join(root, 'staging', 'half-extracted'), { recursive: true });
    fs.writeFileSync(path.join(root, 'incoming', 'push-abc.tar'), 'received');
    fs.writeFileSync(path.join(root, 'staging', 'half-extracted', 'model.onnx'), 'partial');
    const configModel = resolveModel(MANIFEST, assetsDir());
    const service = new ModelUpdateService({
      db: () => db,
      deviceId: 'cli',
      root,
      policy: { keys: new Map(), allowUnsigned: false },
      maxBundleBytes: 1 << 20,
      keepVersions: 3,
      configModel,
      running: () => configModel,
      swap: async () => ({ from: 'a', to: 'b' }),
      stateTopic: 'cctv/cli/model/state',
      publishing: false,
      recordEvent: () => undefined,
      log: captureLogger().log,
    });
    await service.start();
    expect(fs.readdirSync(path.join(root, 'incoming'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'staging'))).toEqual([]);
    expect(service.registry.registry.history(10).map((entry) => entry.step)).toContain('cleaned-up');
    expect(service.state().active?.version).toBe('1.0.0');
    await service.stop();
  });
});
