import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as tar from 'tar';
import { loadPrivateKey, generateKey } from '../../agent/models/keys.js';
import { packBundle } from '../../agent/models/pack.js';
import { assetPath } from '../support/assets.js';

export const MANIFEST = path.resolve(new URL('../../models/manifests/yolox-nano-int8.json', import.meta.url).pathname);

export function assetsDir(): string {
  return path.dirname(assetPath('yolox-nano-int8.onnx'));
}

export interface TestKey {
  id: string;
  privateKey: crypto.KeyObject;
  publicKey: crypto.KeyObject;
  publicKeyRaw: string;
}

export function testKey(): TestKey {
  const generated = generateKey();
  const privateKey = loadPrivateKey(generated.privateKeyPem, 'test key');
  return { id: generated.keyId, privateKey, publicKey: crypto.createPublicKey(privateKey), publicKeyRaw: generated.publicKeyRaw };
}

/** A manifest beside `dir` derived from the shipped one, changed by `edit` (its files still found in the assets). */
export function editedManifest(dir: string, edit: (manifest: Record<string, unknown>) => void): string {
  const manifest = JSON.parse(fs.readFileSync(MANIFEST, 'utf8')) as Record<string, unknown>;
  edit(manifest);
  const file = path.join(dir, `edited-${crypto.randomUUID()}.json`);
  fs.writeFileSync(file, JSON.stringify(manifest));
  return file;
}

/** The real int8 model packed as a bundle; a "new version" is the same model re-signed with a higher version. */
export async function makeBundle(dir: string, options: { version?: string; key?: TestKey; manifestPath?: string; name?: string } = {}): Promise<string> {
  const out = path.join(dir, options.name ?? `bundle-${options.version ?? 'x'}-${crypto.randomUUID().slice(0, 8)}.tar`);
  await packBundle({
    manifestPath: options.manifestPath ?? MANIFEST,
    assetsDir: assetsDir(),
    out,
    ...(options.version ? { version: options.version } : {}),
    ...(options.key ? { privateKey: options.key.privateKey } : {}),
  });
  return out;
}

/** Extracts a bundle, lets `edit` change its files, and tars them again (no re-signing). */
export async function tamper(bundle: string, dir: string, edit: (stage: string) => void): Promise<string> {
  const stage = fs.mkdtempSync(path.join(dir, 'stage-'));
  await tar.x({ file: bundle, cwd: stage });
  edit(stage);
  const out = path.join(dir, `tampered-${crypto.randomUUID().slice(0, 8)}.tar`);
  await tar.c({ file: out, cwd: stage, portable: true }, fs.readdirSync(stage));
  return out;
}

/** One ustar header and its data, written by hand so a test can make entries node-tar would refuse to create. */
function tarEntry(name: string, type: string, data: Buffer, linkname = ''): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write(type, 156);
  header.write(linkname, 157, 100, 'utf8');
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const padded = Buffer.alloc(Math.ceil(data.length / 512) * 512);
  data.copy(padded);
  return Buffer.concat([header, padded]);
}

/** A tar with the given entries (type '0' file, '2' symlink, '1' hard link, '3' char device). */
export function rawTar(file: string, entries: Array<{ name: string; type?: string; data?: string; linkname?: string }>): string {
  const parts = entries.map((entry) => tarEntry(entry.name, entry.type ?? '0', Buffer.from(entry.data ?? ''), entry.linkname));
  fs.writeFileSync(file, Buffer.concat([...parts, Buffer.alloc(1024)]));
  return file;
}
