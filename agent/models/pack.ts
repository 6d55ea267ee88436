import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type crypto from 'node:crypto';
import { sha256File } from '../common/checksum.js';
import { AgentError } from '../errors.js';
import type { BundleFile, ModelManifest } from '../inference/manifest.js';
import { locateManifestFile, resolveModel } from '../inference/model-files.js';
import { MANIFEST_NAME, SIGNATURE_NAME, type BundleSignature, extractBundle, writeBundle } from './bundle-files.js';
import { keyIdOf, signBytes } from './keys.js';
import { readBundleManifest, signedBytes } from './verify.js';

export interface PackOptions {
  manifestPath: string;
  assetsDir: string;
  out: string;
  /** Overrides the manifest's version (a retrained model, or a test's "newer" bundle). */
  version?: string;
  /** Signs as it packs; without it the bundle is unsigned until `model sign`. */
  privateKey?: crypto.KeyObject;
  now?: Date;
}

export interface PackOutcome {
  out: string;
  id: string;
  version: string;
  bytes: number;
  files: BundleFile[];
  keyId: string | null;
}

function locateExtra(file: string, manifestPath: string, assetsDir: string): string {
  const found = locateManifestFile(file, manifestPath, assetsDir);
  if (!found) throw new AgentError('MODEL_FILE_MISSING', `${file} named by ${manifestPath} is neither beside it nor in ${assetsDir}`);
  return found;
}

function writeSignature(dir: string, privateKey: crypto.KeyObject): string {
  const keyId = keyIdOf(privateKey);
  const signature: BundleSignature = { format: 1, algorithm: 'ed25519', keyId, signature: signBytes(signedBytes(dir), privateKey) };
  fs.writeFileSync(path.join(dir, SIGNATURE_NAME), `${JSON.stringify(signature, null, 2)}\n`);
  return keyId;
}

/**
 * A bundle from a manifest and its files: each file is copied under its plain name, listed with
 * its size and sha256 in the manifest's `bundle` section, and the manifest is signed when a key
 * is given. The manifest's own file references are rewritten to those plain names.
 */
export async function packBundle(options: PackOptions): Promise<PackOutcome> {
  const resolved = resolveModel(options.manifestPath, options.assetsDir);
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-pack-'));
  try {
    const sources = new Map<string, string>();
    const place = (source: string): string => {
      const name = path.basename(source);
      if (sources.has(name) && sources.get(name) !== source) throw new AgentError('USAGE', `two files of the bundle are both named ${name}`);
      sources.set(name, source);
      return name;
    };
    const { bundle: _previous, ...manifest } = resolved.manifest as ModelManifest;
    const packed: ModelManifest = { ...manifest, file: place(resolved.modelPath), ...(options.version ? { version: options.version } : {}) };
    if (!Array.isArray(manifest.labels)) packed.labels = { file: place(locateExtra(manifest.labels.file, options.manifestPath, options.assetsDir)) };
    for (const key of ['referenceStatistics', 'calibration', 'golden'] as const) {
      const extra = manifest[key];
      if (extra) packed[key] = { file: place(locateExtra(extra.file, options.manifestPath, options.assetsDir)) };
    }
    const files: BundleFile[] = [];
    for (const [name, source] of sources) {
      fs.copyFileSync(source, path.join(stage, name));
      files.push({ path: name, size: fs.statSync(source).size, sha256: await sha256File(source) });
    }
    packed.sha256 = files[0]!.sha256;
    packed.bundle = { format: 1, files, createdAt: (options.now ?? new Date()).toISOString() };
    fs.writeFileSync(path.join(stage, MANIFEST_NAME), `${JSON.stringify(packed, null, 2)}\n`);
    const keyId = options.privateKey ? writeSignature(stage, options.privateKey) : null;
    await writeBundle(stage, fs.readdirSync(stage), options.out);
    return { out: options.out, id: packed.id, version: packed.version, bytes: fs.statSync(options.out).size, files, keyId };
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/** Signs (or re-signs) an existing bundle; the files and manifest are kept byte for byte. */
export async function signBundle(file: string, privateKey: crypto.KeyObject, out: string, maxBytes: number): Promise<{ keyId: string }> {
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-sign-'));
  try {
    await extractBundle(file, stage, maxBytes);
    readBundleManifest(stage);
    const keyId = writeSignature(stage, privateKey);
    await writeBundle(stage, fs.readdirSync(stage), out);
    return { keyId };
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}
