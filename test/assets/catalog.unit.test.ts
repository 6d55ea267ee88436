import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mirrorSuiteName, testMirror } from '../support/assets.js';
import { assetsDir, defaultCatalogFile, loadCatalog, parseCatalog, resolveAsset } from '../../agent/assets/catalog.js';
import { packageRoot } from '../../agent/paths.js';
import { sha256File } from '../../agent/assets/verified-write.js';

const sharedAssets = testMirror(import.meta.url);

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-catalog-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function validRaw(): { schemaVersion: number; mirror: object; assets: Record<string, unknown>[] } {
  return JSON.parse(fs.readFileSync(defaultCatalogFile(), 'utf8'));
}

describe('catalog file', () => {
  it('loads from <package root>/models/catalog.json', () => {
    expect(fs.existsSync(path.join(packageRoot(), 'package.json'))).toBe(true);
    const catalog = loadCatalog();
    expect(catalog.assets.length).toBe(13);
    expect(catalog.mirror.layout).toBe('<mirror>/<mirrorPath>');
  });

  it('has a way to get every asset, and upstream URLs pinned to a commit', () => {
    for (const asset of loadCatalog().assets) {
      expect(asset.obtain.length, asset.name).toBeGreaterThan(20);
      if (asset.upstream !== null) {
        expect(asset.upstream, asset.name).toMatch(/^https:\/\/raw\.githubusercontent\.com\/[^/]+\/[^/]+\/[0-9a-f]{40}\//);
      }
    }
  });

  it('marks the detector, its labels and the highway footage as required, the int8 models as optional', () => {
    const required = loadCatalog()
      .assets.filter((asset) => asset.required)
      .map((asset) => asset.name);
    expect(required).toEqual(['yolox-nano.onnx', 'coco-labels.txt', 'highway-cctv-320x240.avi', 'highway-cctv-320x240.mp4', 'highway-frame-t5s.png']);
  });
});

describe.skipIf(sharedAssets === undefined)(mirrorSuiteName('catalog against the shared asset files', sharedAssets), () => {
  it.each(loadCatalog().assets.map((asset) => [asset.name, asset] as const))('%s: size and sha256 match', async (_name, asset) => {
    const file = path.join(sharedAssets!, asset.mirrorPath);
    expect(fs.statSync(file).size).toBe(asset.size);
    expect(await sha256File(file)).toBe(asset.sha256);
  });
});

describe('catalog schema', () => {
  it('rejects a malformed entry, naming each bad key', () => {
    const raw = validRaw();
    raw.assets[0]!['sha256'] = 'abc';
    raw.assets[1]!['upstream'] = 'http://insecure.example/model.onnx';
    delete raw.assets[2]!['licence'];
    raw.assets[3]!['kind'] = 'weights';
    raw.assets[4]!['mirrorPath'] = '../../etc/passwd';

    let message = '';
    try {
      parseCatalog(raw, 'bad.json');
    } catch (error) {
      expect(error).toMatchObject({ code: 'INTERNAL' });
      message = (error as Error).message;
    }
    expect(message).toContain('bad.json is not a valid asset catalog');
    expect(message).toContain('assets.0.sha256: must be 64 lowercase hex digits');
    expect(message).toContain('assets.1.upstream: must be an https URL');
    expect(message).toContain('assets.2.licence');
    expect(message).toContain('assets.3.kind');
    expect(message).toContain('assets.4.mirrorPath: must be a relative path inside the mirror');
  });

  it('rejects unknown keys, duplicate names and names with directories', () => {
    const raw = validRaw();
    raw.assets[0]!['sha'] = 'typo';
    raw.assets[1]!['name'] = raw.assets[2]!['name'];
    raw.assets[3]!['name'] = 'sub/dir.onnx';
    expect(() => parseCatalog(raw)).toThrow(/assets\.0\.sha: unknown key/);
    expect(() => parseCatalog(raw)).toThrow(/duplicate asset name "coco-labels.txt"/);
    expect(() => parseCatalog(raw)).toThrow(/assets\.3\.name: must be a plain file name/);
  });

  it('reports a catalog file that is not JSON', () => {
    const file = path.join(tmp, 'catalog.json');
    fs.writeFileSync(file, '{ "assets": [');
    expect(() => loadCatalog(file)).toThrow(/is not valid JSON/);
    expect(() => loadCatalog(path.join(tmp, 'absent.json'))).toThrow(/cannot be read/);
  });
});

describe('assetsDir and resolveAsset', () => {
  it('defaults to <package root>/models/assets and takes an override', () => {
    expect(assetsDir()).toBe(path.join(packageRoot(), 'models', 'assets'));
    expect(assetsDir(tmp)).toBe(tmp);
  });

  it('returns the local path only when the file is there', () => {
    expect(resolveAsset('coco-labels.txt', tmp)).toBeUndefined();
    fs.writeFileSync(path.join(tmp, 'coco-labels.txt'), 'person\n');
    expect(resolveAsset('coco-labels.txt', tmp)).toBe(path.join(tmp, 'coco-labels.txt'));
    expect(resolveAsset('../coco-labels.txt', tmp)).toBeUndefined();
  });
});
