import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mirrorSuiteName, testMirror } from '../support/assets.js';
import { loadCatalog, parseCatalog, resolveAsset, type AssetEntry, type Catalog } from '../../agent/assets/catalog.js';
import type { DerivedProvenance } from '../../agent/assets/derived-asset.js';
import { defaultMirror, fetchAssets, type FetchProgress } from '../../agent/assets/fetch.js';
import { sha256File } from '../../agent/assets/verified-write.js';
import { AgentError } from '../../agent/errors.js';
import { bundledFfmpegPath } from '../../agent/ingest/ffmpeg-binary.js';

// The project's real asset folder, found the way the CLI finds it (CI has a copy beside its clone).
const sharedAssets = testMirror(import.meta.url);
const realCatalog = loadCatalog();

let tmp: string;
let destDir: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-assets-'));
  destDir = path.join(tmp, 'dest');
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A catalog of made-up assets, so download logic is tested without the network. */
function syntheticCatalog(assets: AssetEntry[]): Catalog {
  return { schemaVersion: 1, mirror: { layout: '<mirror>/<mirrorPath>', description: 'test' }, assets };
}

function syntheticAsset(content: Uint8Array, overrides: Partial<AssetEntry> = {}): AssetEntry {
  return {
    name: 'blob.bin',
    kind: 'model',
    sha256: sha256(content),
    size: content.byteLength,
    licence: 'test',
    upstream: 'https://example.invalid/blob.bin',
    obtain: 'ask the test for it',
    mirrorPath: 'models/blob.bin',
    required: true,
    notes: '',
    ...overrides,
  };
}

/** A fake fetch whose body arrives in `chunkSize` pieces, like a real network stream. */
function fakeFetch(content: Uint8Array, chunkSize = 1000, status = 200): { fetchImpl: typeof fetch; urls: string[] } {
  const urls: string[] = [];
  const fetchImpl = (async (input: string | URL | Request) => {
    urls.push(String(input));
    let offset = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (offset >= content.byteLength) {
          controller.close();
          return;
        }
        controller.enqueue(content.subarray(offset, offset + chunkSize));
        offset += chunkSize;
      },
    });
    return new Response(status === 200 ? body : null, { status, headers: { 'content-length': String(content.byteLength) } });
  }) as typeof fetch;
  return { fetchImpl, urls };
}

function leftovers(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

describe.skipIf(sharedAssets === undefined)(mirrorSuiteName('mirror (real shared assets)', sharedAssets), () => {
  it('copies coco-labels.txt from the mirror and verifies it', async () => {
    const result = await fetchAssets({ names: ['coco-labels.txt'], mirror: sharedAssets, destDir, offline: true });

    expect(result.ok).toBe(true);
    expect(result.reports).toMatchObject([{ name: 'coco-labels.txt', status: 'mirrored', error: undefined }]);
    const file = path.join(destDir, 'coco-labels.txt');
    expect(result.reports[0]!.path).toBe(file);
    expect(await sha256File(file)).toBe('634a1132eb33f8091d60f2c346ababe8b905ae08387037aed883953b7329af84');
    expect(leftovers(destDir)).toEqual(['coco-labels.txt']);
    expect(resolveAsset('coco-labels.txt', destDir)).toBe(file);
  });

  it('does not copy again a file already present with the right sha256', async () => {
    await fetchAssets({ names: ['coco-labels.txt'], mirror: sharedAssets, destDir, offline: true });
    const file = path.join(destDir, 'coco-labels.txt');
    const before = fs.statSync(file);

    // A corrupt mirror on the second run proves the mirror is not even read.
    const corruptMirror = path.join(tmp, 'corrupt');
    fs.mkdirSync(path.join(corruptMirror, 'models'), { recursive: true });
    fs.writeFileSync(path.join(corruptMirror, 'models', 'coco-labels.txt'), 'not the labels\n');
    const again = await fetchAssets({ names: ['coco-labels.txt'], mirror: corruptMirror, destDir, offline: true });

    expect(again.reports).toMatchObject([{ status: 'present', path: file, warnings: [] }]);
    const after = fs.statSync(file);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  it('rejects a corrupted mirror copy with ASSET_HASH_MISMATCH and leaves no bad file', async () => {
    const mirror = path.join(tmp, 'mirror');
    fs.mkdirSync(path.join(mirror, 'models'), { recursive: true });
    const good = fs.readFileSync(path.join(sharedAssets!, 'models', 'coco-labels.txt'));
    const bad = Buffer.from(good);
    bad[0] = bad[0]! ^ 0xff; // same size, one byte flipped: only the hash can tell
    fs.writeFileSync(path.join(mirror, 'models', 'coco-labels.txt'), bad);

    const result = await fetchAssets({ names: ['coco-labels.txt'], mirror, destDir, offline: true });

    expect(result.ok).toBe(false); // coco-labels.txt is required
    const report = result.reports[0]!;
    expect(report.status).toBe('failed');
    expect(report.path).toBeUndefined();
    expect(report.error?.code).toBe('ASSET_HASH_MISMATCH');
    expect(report.error?.message).toContain(`sha256 ${sha256(bad)}`);
    expect(report.error?.message).toContain('expected 634a1132eb33f8091d60f2c346ababe8b905ae08387037aed883953b7329af84');
    expect(leftovers(destDir)).toEqual([]);
  });

  it('replaces a wrong file in the destination with the verified mirror copy', async () => {
    fs.mkdirSync(destDir, { recursive: true });
    fs.writeFileSync(path.join(destDir, 'coco-labels.txt'), 'stale\n');

    const result = await fetchAssets({ names: ['coco-labels.txt'], mirror: sharedAssets, destDir, offline: true });

    expect(result.reports[0]).toMatchObject({ status: 'mirrored' });
    expect(result.reports[0]!.warnings[0]).toMatch(/existing .*coco-labels\.txt: sha256 .*expected 634a/);
    expect(await sha256File(path.join(destDir, 'coco-labels.txt'))).toBe(realCatalog.assets.find((a) => a.name === 'coco-labels.txt')!.sha256);
  });

  it('selects by kind with `only`', async () => {
    const result = await fetchAssets({ only: ['labels'], mirror: sharedAssets, destDir, offline: true });
    expect(result.reports.map((report) => [report.name, report.status])).toEqual([
      ['coco-labels.txt', 'mirrored'],
      ['imagenet-labels.txt', 'mirrored'],
    ]);
  });
});

describe('download (fake fetch)', () => {
  const content = new Uint8Array(10_500).map((_, index) => (index * 7) % 251);

  it('streams to <name>.part, reports progress, verifies and renames', async () => {
    const asset = syntheticAsset(content);
    const { fetchImpl, urls } = fakeFetch(content, 1000);
    const events: FetchProgress[] = [];

    const result = await fetchAssets({ catalog: syntheticCatalog([asset]), destDir, fetchImpl, onProgress: (event) => events.push(event) });

    expect(urls).toEqual(['https://example.invalid/blob.bin']);
    expect(result).toMatchObject({ ok: true, reports: [{ name: 'blob.bin', status: 'downloaded', path: path.join(destDir, 'blob.bin') }] });
    expect(await sha256File(path.join(destDir, 'blob.bin'))).toBe(asset.sha256);
    expect(leftovers(destDir)).toEqual(['blob.bin']);

    const downloads = events.filter((event) => event.type === 'download');
    expect(downloads.length).toBe(12); // the 0-byte start, then 11 chunks
    expect(downloads.every((event) => event.total === content.byteLength)).toBe(true);
    const bytes = downloads.map((event) => event.bytes);
    expect(bytes).toEqual([...bytes].sort((a, b) => a - b));
    expect(bytes.at(-1)).toBe(content.byteLength);
    expect(events[0]).toMatchObject({ type: 'start', index: 0, count: 1 });
    expect(events.at(-1)).toMatchObject({ type: 'done', report: { status: 'downloaded' } });
  });

  it('deletes the part file and reports expected vs actual on a hash mismatch', async () => {
    const asset = syntheticAsset(content);
    const tampered = Uint8Array.from(content);
    tampered[5000] = tampered[5000]! ^ 1;

    const result = await fetchAssets({ catalog: syntheticCatalog([asset]), destDir, fetchImpl: fakeFetch(tampered).fetchImpl });

    expect(result.ok).toBe(false);
    expect(result.reports[0]).toMatchObject({ status: 'failed', error: { code: 'ASSET_HASH_MISMATCH' } });
    expect(result.reports[0]!.error!.message).toContain(`sha256 ${sha256(tampered)}`);
    expect(result.reports[0]!.error!.message).toContain(`expected ${asset.sha256}`);
    expect(leftovers(destDir)).toEqual([]);
  });

  it('stops a body larger than the catalogued size', async () => {
    const asset = syntheticAsset(content);
    const larger = new Uint8Array(content.byteLength * 3);

    const result = await fetchAssets({ catalog: syntheticCatalog([asset]), destDir, fetchImpl: fakeFetch(larger).fetchImpl });

    expect(result.reports[0]).toMatchObject({ status: 'failed', error: { code: 'ASSET_HASH_MISMATCH' } });
    expect(result.reports[0]!.error!.message).toContain(`more than the catalog's ${content.byteLength} bytes`);
    expect(leftovers(destDir)).toEqual([]);
  });

  it('reports ASSET_DOWNLOAD_FAILED for an HTTP error and for a fetch that throws', async () => {
    const notFound = await fetchAssets({ catalog: syntheticCatalog([syntheticAsset(content)]), destDir, fetchImpl: fakeFetch(content, 1000, 404).fetchImpl });
    expect(notFound.reports[0]).toMatchObject({ status: 'failed', error: { code: 'ASSET_DOWNLOAD_FAILED' } });
    expect(notFound.reports[0]!.error!.message).toContain('HTTP 404');

    const offline = (async () => {
      throw new TypeError('fetch failed');
    }) as typeof fetch;
    const thrown = await fetchAssets({ catalog: syntheticCatalog([syntheticAsset(content)]), destDir, fetchImpl: offline });
    expect(thrown.reports[0]).toMatchObject({ status: 'failed', error: { code: 'ASSET_DOWNLOAD_FAILED' } });
    expect(thrown.reports[0]!.error!.message).toContain('fetch failed');
    expect(leftovers(destDir)).toEqual([]);
  });

  it('falls back to upstream when the mirror copy is corrupt, keeping the mismatch as a warning', async () => {
    const asset = syntheticAsset(content);
    const mirror = path.join(tmp, 'mirror');
    fs.mkdirSync(path.join(mirror, 'models'), { recursive: true });
    fs.writeFileSync(path.join(mirror, 'models', 'blob.bin'), 'corrupt');

    const result = await fetchAssets({ catalog: syntheticCatalog([asset]), mirror, destDir, fetchImpl: fakeFetch(content).fetchImpl });

    expect(result.reports[0]).toMatchObject({ status: 'downloaded' });
    expect(result.reports[0]!.warnings.join('\n')).toContain('from mirror');
  });

  it('passes the abort signal on and rethrows instead of reporting', async () => {
    const controller = new AbortController();
    controller.abort();
    const result = fetchAssets({
      catalog: syntheticCatalog([syntheticAsset(content)]),
      destDir,
      fetchImpl: fakeFetch(content).fetchImpl,
      signal: controller.signal,
    });
    await expect(result).rejects.toThrow();
    expect(leftovers(destDir)).toEqual([]);
  });
});

describe('unavailable assets', () => {
  const content = new TextEncoder().encode('made by quantization\n');

  it('reports ASSET_UNAVAILABLE with the obtain text when there is no source', async () => {
    const asset = syntheticAsset(content, { upstream: null, obtain: 'make it with `cctv-agent model quantize`' });
    const emptyMirror = path.join(tmp, 'empty-mirror');
    fs.mkdirSync(emptyMirror);

    const result = await fetchAssets({ catalog: syntheticCatalog([asset]), mirror: emptyMirror, destDir });

    expect(result.ok).toBe(false);
    expect(result.reports[0]).toMatchObject({ status: 'unavailable', path: undefined, error: { code: 'ASSET_UNAVAILABLE' } });
    expect(result.reports[0]!.error!.message).toContain('make it with `cctv-agent model quantize`');
    expect(result.reports[0]!.error!.message).toContain(path.join(emptyMirror, 'models', 'blob.bin'));
  });

  it('an optional asset that is unavailable does not fail the run', async () => {
    const asset = syntheticAsset(content, { upstream: null, required: false });
    const result = await fetchAssets({ catalog: syntheticCatalog([asset]), destDir });
    expect(result.ok).toBe(true);
    expect(result.reports[0]!.status).toBe('unavailable');
  });

  it('real catalog: the int8 model without a mirror points at the mirror, quantize and the float fallback', async () => {
    const result = await fetchAssets({ names: ['yolox-nano-int8.onnx'], destDir });
    expect(result.ok).toBe(true); // optional
    const message = result.reports[0]!.error!.message;
    expect(message).toContain('cctv-agent model quantize');
    expect(message).toContain('yolox-nano-int8-local.onnx');
  });

  it('an unknown asset name is a USAGE error naming it', async () => {
    await expect(fetchAssets({ names: ['nope.onnx'], destDir })).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('nope.onnx') });
  });

  it('a mirror that is not a directory is an error, not a silent skip', async () => {
    await expect(fetchAssets({ names: ['coco-labels.txt'], mirror: path.join(tmp, 'missing'), destDir })).rejects.toBeInstanceOf(AgentError);
  });
});

describe('defaultMirror', () => {
  it('prefers CCTV_ASSET_MIRROR', () => {
    expect(defaultMirror({ CCTV_ASSET_MIRROR: '/srv/assets' }, tmp)).toBe('/srv/assets');
  });

  it('uses ../shared/assets beside the package root when it exists, else none', () => {
    const root = path.join(tmp, 'main');
    fs.mkdirSync(root);
    expect(defaultMirror({}, root)).toBeUndefined();
    fs.mkdirSync(path.join(tmp, 'shared', 'assets'), { recursive: true });
    expect(defaultMirror({}, root)).toBe(path.join(tmp, 'shared', 'assets'));
  });
});

describe.skipIf(sharedAssets === undefined)(mirrorSuiteName('derived assets (made here from a catalogued source)', sharedAssets), () => {
  // The real frame recipe on a synthetic source: a PNG from the project's clip folder is the
  // source, and the derived asset is that picture as BMP, made by the bundled ffmpeg.
  const ffmpegPath = bundledFfmpegPath();
  function derivedCatalog(): { catalog: Catalog; mirror: string } {
    const mirror = path.join(tmp, 'mirror');
    fs.mkdirSync(path.join(mirror, 'images'), { recursive: true });
    const picture = fs.readFileSync(path.join(sharedAssets!, 'images', 'highway-frame-t5s.png'));
    fs.writeFileSync(path.join(mirror, 'images', 'source.png'), picture);
    const source = syntheticAsset(picture, { name: 'source.png', kind: 'image', upstream: null, mirrorPath: 'images/source.png' });
    const derived = syntheticAsset(new Uint8Array([1, 2, 3]), {
      name: 'derived.bmp',
      kind: 'image',
      upstream: null,
      mirrorPath: 'images/derived.bmp',
      derivedFrom: { asset: 'source.png', ffmpegArgs: ['-i', '{input}', '-pix_fmt', 'bgr24', '{output}'] },
    });
    return { catalog: syntheticCatalog([source, derived]), mirror };
  }

  it('is made from its source when no mirror has it, verified through the source hash and its provenance; kept next time', async () => {
    const { catalog, mirror } = derivedCatalog();
    const result = await fetchAssets({ catalog, names: ['derived.bmp'], mirror, destDir, offline: true, ffmpegPath });
    expect(result.ok).toBe(true);
    expect(result.reports).toMatchObject([{ name: 'derived.bmp', status: 'derived', path: path.join(destDir, 'derived.bmp') }]);
    const provenance = JSON.parse(fs.readFileSync(path.join(destDir, 'derived.bmp.provenance.json'), 'utf8')) as DerivedProvenance;
    expect(provenance.source).toEqual({ name: 'source.png', sha256: catalog.assets[0]!.sha256 });
    expect(provenance.output.sha256).toBe(await sha256File(path.join(destDir, 'derived.bmp')));
    expect(fs.readFileSync(path.join(destDir, 'derived.bmp')).subarray(0, 2).toString()).toBe('BM');
    expect(leftovers(destDir).filter((name) => name.includes('.part'))).toEqual([]);
    const again = await fetchAssets({ catalog, names: ['derived.bmp'], mirror, destDir, offline: true, ffmpegPath });
    expect(again.reports[0]!.status).toBe('present');
  });

  it('a derived file changed since, or derived from another source, is made again; without ffmpeg it is unavailable', async () => {
    const { catalog, mirror } = derivedCatalog();
    await fetchAssets({ catalog, names: ['derived.bmp'], mirror, destDir, offline: true, ffmpegPath });
    fs.appendFileSync(path.join(destDir, 'derived.bmp'), 'tampered');
    const afterTamper = await fetchAssets({ catalog, names: ['derived.bmp'], mirror, destDir, offline: true, ffmpegPath });
    expect(afterTamper.reports[0]).toMatchObject({ status: 'derived' });
    expect(afterTamper.reports[0]!.warnings.join(' ')).toMatch(/the file changed since/);

    const provenanceFile = path.join(destDir, 'derived.bmp.provenance.json');
    const provenance = JSON.parse(fs.readFileSync(provenanceFile, 'utf8')) as DerivedProvenance;
    fs.writeFileSync(provenanceFile, JSON.stringify({ ...provenance, source: { ...provenance.source, sha256: '0'.repeat(64) } }));
    const afterSource = await fetchAssets({ catalog, names: ['derived.bmp'], mirror, destDir, offline: true, ffmpegPath });
    expect(afterSource.reports[0]).toMatchObject({ status: 'derived' });
    expect(afterSource.reports[0]!.warnings.join(' ')).toMatch(/another source or by another recipe/);

    const bare = path.join(tmp, 'bare');
    const without = await fetchAssets({ catalog, names: ['derived.bmp'], mirror, destDir: bare, offline: true });
    expect(without.reports[0]).toMatchObject({ status: 'unavailable', error: { code: 'ASSET_UNAVAILABLE' } });
  });

  it('a recipe ffmpeg cannot run is ASSET_DERIVE_FAILED, and no file is left behind', async () => {
    const { catalog, mirror } = derivedCatalog();
    const broken: Catalog = {
      ...catalog,
      assets: [
        catalog.assets[0]!,
        { ...catalog.assets[1]!, derivedFrom: { asset: 'source.png', ffmpegArgs: ['-i', '{input}', '-c:v', 'no-such-codec', '{output}'] } },
      ],
    };
    const result = await fetchAssets({ catalog: broken, names: ['derived.bmp'], mirror, destDir, offline: true, ffmpegPath });
    expect(result.reports[0]).toMatchObject({ status: 'failed', error: { code: 'ASSET_DERIVE_FAILED' } });
    expect(leftovers(destDir).filter((name) => name.includes('derived'))).toEqual([]);
  });

  it('the catalog refuses a recipe without placeholders or from an unknown source', () => {
    const { catalog } = derivedCatalog();
    const bad = { ...catalog, assets: [catalog.assets[0]!, { ...catalog.assets[1]!, derivedFrom: { asset: 'nope.png', ffmpegArgs: ['-i', 'x', 'y'] } }] };
    expect(() => parseCatalog(bad)).toThrow(/derivedFrom\.asset.*must name a catalogued asset|derivedFrom\.ffmpegArgs/);
  });
});
