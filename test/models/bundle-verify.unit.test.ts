import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ErrorCode, isAgentError } from '../../agent/errors.js';
import { resolveModel } from '../../agent/inference/model-files.js';
import { extractBundle, inspectBundle } from '../../agent/models/bundle-files.js';
import { trustPolicy } from '../../agent/models/trust.js';
import { type CompatibilityContext, type TrustPolicy, verifyExtracted } from '../../agent/models/verify.js';
import { useTempDir } from '../support/temp-dir.js';
import { assetsDir, editedManifest, MANIFEST, makeBundle, rawTar, tamper, testKey } from './bundle-fixtures.js';

const MB = 1024 * 1024;
const key = testKey();
const trusted: TrustPolicy = { keys: new Map([[key.id, key.publicKey]]), allowUnsigned: false };
const tempDir = useTempDir('cctv-bundle-');

function running(): CompatibilityContext['running'] {
  return resolveModel(MANIFEST, assetsDir());
}

async function verify(bundle: string, policy = trusted, context: Partial<CompatibilityContext> = {}) {
  const stage = fs.mkdtempSync(path.join(tempDir(), 'x-'));
  await extractBundle(bundle, stage, 50 * MB);
  return verifyExtracted(stage, policy, { running: running(), highestVersion: undefined, rollback: false, ...context });
}

async function refusal(work: Promise<unknown>): Promise<ErrorCode> {
  try {
    await work;
  } catch (error) {
    if (isAgentError(error)) return error.code;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('model bundle verification', () => {
  it('accepts a bundle signed by a trusted key, naming its key', async () => {
    const bundle = await makeBundle(tempDir(), { version: '1.1.0', key });
    const verified = await verify(bundle);
    expect(verified.keyId).toBe(key.id);
    expect(verified.manifest.version).toBe('1.1.0');
    // The model, its labels, and the extras the shipped manifest names (its golden samples).
    expect(verified.manifest.bundle.files.map((file) => file.path)).toEqual(expect.arrayContaining(['coco-labels.txt', 'yolox-nano-int8.onnx']));
    expect(verified.manifest.golden?.file).toBe('yolox-nano-int8.golden.json');
    expect(verified.labels).toHaveLength(80);
  });

  it('trusts the config keys, and refuses a key listed under another id', () => {
    expect(trustPolicy({ trustedKeys: [{ id: key.id, publicKey: key.publicKeyRaw }], allowUnsigned: false }).keys.has(key.id)).toBe(true);
    expect(() => trustPolicy({ trustedKeys: [{ id: '0123456789abcdef', publicKey: key.publicKeyRaw }], allowUnsigned: false })).toThrow(/not this key's id/);
  });

  it('wrong sha256: a model byte changed after signing', async () => {
    const bundle = await tamper(await makeBundle(tempDir(), { version: '1.1.0', key }), tempDir(), (stage) => {
      const file = path.join(stage, 'yolox-nano-int8.onnx');
      const bytes = fs.readFileSync(file);
      bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 0xff;
      fs.writeFileSync(file, bytes);
    });
    expect(await refusal(verify(bundle))).toBe('MODEL_BUNDLE_HASH_MISMATCH');
  });

  it('truncated: a file shorter than the manifest says', async () => {
    const bundle = await tamper(await makeBundle(tempDir(), { version: '1.1.0', key }), tempDir(), (stage) => {
      const file = path.join(stage, 'yolox-nano-int8.onnx');
      fs.truncateSync(file, fs.statSync(file).size - 100);
    });
    expect(await refusal(verify(bundle))).toBe('MODEL_BUNDLE_TRUNCATED');
  });

  it('bad signature: the manifest changed after signing', async () => {
    const bundle = await tamper(await makeBundle(tempDir(), { version: '1.1.0', key }), tempDir(), (stage) => {
      const file = path.join(stage, 'manifest.json');
      const manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string };
      manifest.version = '9.9.9';
      fs.writeFileSync(file, JSON.stringify(manifest));
    });
    expect(await refusal(verify(bundle))).toBe('MODEL_BUNDLE_SIGNATURE_INVALID');
  });

  it('a re-indented manifest keeps its signature (the canonical form is signed)', async () => {
    const bundle = await tamper(await makeBundle(tempDir(), { version: '1.1.0', key }), tempDir(), (stage) => {
      const file = path.join(stage, 'manifest.json');
      fs.writeFileSync(file, JSON.stringify(JSON.parse(fs.readFileSync(file, 'utf8'))));
    });
    expect((await verify(bundle)).keyId).toBe(key.id);
  });

  it('unknown key: signed by a key the config does not list', async () => {
    const stranger = testKey();
    const bundle = await makeBundle(tempDir(), { version: '1.1.0', key: stranger });
    expect(await refusal(verify(bundle))).toBe('MODEL_BUNDLE_KEY_UNKNOWN');
  });

  it('unsigned: refused unless the config allows it', async () => {
    const bundle = await makeBundle(tempDir(), { version: '1.1.0' });
    expect(await refusal(verify(bundle))).toBe('MODEL_BUNDLE_UNSIGNED');
    expect((await verify(bundle, { ...trusted, allowUnsigned: true })).keyId).toBeNull();
  });

  it('oversized: over the size limit before anything is read', async () => {
    const bundle = await makeBundle(tempDir(), { version: '1.1.0', key });
    expect(await refusal(inspectBundle(bundle, 1024 * 1024))).toBe('MODEL_BUNDLE_TOO_LARGE');
  });

  it.each([
    ['a ".." path', { name: '../evil.txt', data: 'x' }],
    ['a nested ".." path', { name: 'a/../../evil.txt', data: 'x' }],
    ['an absolute path', { name: '/tmp/evil.txt', data: 'x' }],
    ['a symbolic link', { name: 'link', type: '2', linkname: '/etc/passwd' }],
    ['a hard link', { name: 'hard', type: '1', linkname: '/etc/passwd' }],
    ['a device', { name: 'dev', type: '3' }],
  ])('path traversal: %s is refused and nothing is written', async (_label, entry) => {
    const dir = tempDir();
    const bundle = rawTar(path.join(dir, 'evil.tar'), [{ name: 'manifest.json', data: '{}' }, entry]);
    const target = path.join(dir, 'out', 'deeper');
    expect(await refusal(extractBundle(bundle, target, 50 * MB))).toBe('MODEL_BUNDLE_UNSAFE_PATH');
    expect(fs.existsSync(target)).toBe(false);
    expect(fs.existsSync(path.join(dir, 'out', 'evil.txt'))).toBe(false);
  });

  it('not a tar at all', async () => {
    const file = path.join(tempDir(), 'junk.tar');
    fs.writeFileSync(file, Buffer.alloc(3000, 7));
    expect(await refusal(inspectBundle(file, 50 * MB))).toBe('MODEL_BUNDLE_INVALID');
  });

  it('wrong input shape: 320x320 against the running 416x416', async () => {
    const manifestPath = editedManifest(tempDir(), (manifest) => {
      (manifest['input'] as { width: number; height: number }).width = 320;
      (manifest['input'] as { width: number; height: number }).height = 320;
    });
    const bundle = await makeBundle(tempDir(), { version: '1.1.0', key, manifestPath });
    expect(await refusal(verify(bundle))).toBe('MODEL_INPUT_INCOMPATIBLE');
  });

  it('label count mismatch: 3 labels against the running 80', async () => {
    const manifestPath = editedManifest(tempDir(), (manifest) => {
      manifest['labels'] = ['car', 'bus', 'truck'];
      manifest['vehicleTypes'] = { car: 'car', bus: 'bus', truck: 'truck' };
    });
    const bundle = await makeBundle(tempDir(), { version: '1.1.0', key, manifestPath });
    expect(await refusal(verify(bundle))).toBe('MODEL_LABELS_INCOMPATIBLE');
  });

  it('downgrade: an older or equal version is refused unless it is a rollback', async () => {
    const bundle = await makeBundle(tempDir(), { version: '1.0.0', key });
    expect(await refusal(verify(bundle, trusted, { highestVersion: '1.1.0' }))).toBe('MODEL_DOWNGRADE');
    expect(await refusal(verify(bundle, trusted, { highestVersion: '1.0.0' }))).toBe('MODEL_DOWNGRADE');
    expect((await verify(bundle, trusted, { highestVersion: '1.1.0', rollback: true })).manifest.version).toBe('1.0.0');
  });

  it('an unlisted file beside the listed ones is refused', async () => {
    const bundle = await tamper(await makeBundle(tempDir(), { version: '1.1.0', key }), tempDir(), (stage) => {
      fs.writeFileSync(path.join(stage, 'extra.bin'), 'smuggled');
    });
    expect(await refusal(verify(bundle))).toBe('MODEL_BUNDLE_INVALID');
  });
});
