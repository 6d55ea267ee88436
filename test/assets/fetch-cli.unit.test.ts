import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mirrorSuiteName, testMirror } from '../support/assets.js';
import { runAssetsCommand } from '../../agent/cli/assets-command.js';

const sharedAssets = testMirror(import.meta.url);

let tmp: string;
let dest: string;
let emptyMirror: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-assets-cli-'));
  dest = path.join(tmp, 'dest');
  emptyMirror = path.join(tmp, 'empty-mirror');
  fs.mkdirSync(emptyMirror);
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface Captured {
  code: number;
  out: string;
  err: string;
}

async function run(argv: string[], options: { isTTY?: boolean; env?: NodeJS.ProcessEnv; fetchImpl?: typeof fetch } = {}): Promise<Captured> {
  const out = new PassThrough();
  const err = new PassThrough();
  if (options.isTTY) (out as unknown as { isTTY: boolean }).isTTY = true;
  const outChunks: string[] = [];
  const errChunks: string[] = [];
  out.on('data', (chunk: Buffer) => outChunks.push(chunk.toString()));
  err.on('data', (chunk: Buffer) => errChunks.push(chunk.toString()));
  const code = await runAssetsCommand(argv, { out, err, env: options.env ?? {}, fetchImpl: options.fetchImpl });
  return { code, out: outChunks.join(''), err: errChunks.join('') };
}

/** Serves the real file bytes as a download, in small chunks, so progress has several steps. */
function serveFile(file: string): typeof fetch {
  const content = fs.readFileSync(file);
  return (async () => {
    let offset = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (offset >= content.byteLength) return controller.close();
        controller.enqueue(content.subarray(offset, offset + 100));
        offset += 100;
      },
    });
    return new Response(body, { headers: { 'content-length': String(content.byteLength) } });
  }) as typeof fetch;
}

describe.skipIf(sharedAssets === undefined)(mirrorSuiteName('assets fetch', sharedAssets), () => {
  it('fetches from the mirror, one line per asset, exit 0 when the required ones are there', async () => {
    const result = await run(['fetch', '--mirror', sharedAssets!, '--dest', dest, '--only', 'labels']);
    expect(result.code).toBe(0);
    expect(result.out).toContain('  coco-labels.txt  ok (copied from mirror)\n');
    expect(result.out).toContain('  imagenet-labels.txt  ok (copied from mirror)\n');
    expect(result.out).toContain('2 assets: 2 mirrored');

    const again = await run(['fetch', '--mirror', sharedAssets!, '--dest', dest, 'coco-labels.txt']);
    expect(again.out).toContain('  coco-labels.txt  ok (present)\n');
  });

  it('takes the mirror from CCTV_ASSET_MIRROR', async () => {
    const result = await run(['fetch', '--dest', dest, '--offline', 'coco-labels.txt'], { env: { CCTV_ASSET_MIRROR: sharedAssets! } });
    expect(result.out).toContain(`mirror: ${sharedAssets}`);
    expect(result.code).toBe(0);
  });

  it('on a terminal, rewrites a download percentage in place', async () => {
    const fetchImpl = serveFile(path.join(sharedAssets!, 'models', 'coco-labels.txt'));
    const result = await run(['fetch', '--mirror', emptyMirror, '--dest', dest, 'coco-labels.txt'], { isTTY: true, fetchImpl });
    expect(result.code).toBe(0);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal's erase-line sequence is what this checks
    expect(result.out).toMatch(/\r\x1b\[2K {2}coco-labels\.txt {2}downloading {2}\d+%/);
    expect(result.out).toContain('100% (0.6 kB of 0.6 kB)');
    expect(result.out).toContain('\r\x1b[2K  coco-labels.txt  ok (downloaded 0.6 kB)\n');
  });

  it('into a pipe, writes only the final line of a download', async () => {
    const fetchImpl = serveFile(path.join(sharedAssets!, 'models', 'coco-labels.txt'));
    const result = await run(['fetch', '--mirror', emptyMirror, '--dest', dest, 'coco-labels.txt'], { fetchImpl });
    expect(result.out).not.toContain('\r');
    expect(result.out).not.toContain('%');
    expect(result.out).toContain('  coco-labels.txt  ok (downloaded 0.6 kB)\n');
  });
});

describe('assets fetch failures', () => {
  it('exits 1 when a required asset cannot be had, with its code and how to get it', async () => {
    const result = await run(['fetch', '--mirror', emptyMirror, '--dest', dest, 'highway-frame-t5s.png']);
    expect(result.code).toBe(1);
    expect(result.out).toContain('highway-frame-t5s.png  UNAVAILABLE ASSET_UNAVAILABLE:');
    expect(result.out).toContain('extracts the frame at t = 5 s of highway-cctv-320x240.avi');
    expect(result.err).toContain('required assets missing: highway-frame-t5s.png');
  });

  it('exits 0 when only an optional asset is missing', async () => {
    const result = await run(['fetch', '--mirror', emptyMirror, '--dest', dest, 'yolox-nano-int8.onnx']);
    expect(result.code).toBe(0);
    expect(result.out).toContain('yolox-nano-int8.onnx  UNAVAILABLE (optional) ASSET_UNAVAILABLE');
  });

  it('rejects bad arguments as USAGE with exit 2', async () => {
    for (const argv of [['fetch', '--only', 'weights'], ['fetch', '--bogus'], ['fetch', 'nope.onnx'], ['frobnicate']]) {
      const result = await run([...argv, '--dest', dest]);
      expect(result.code, argv.join(' ')).toBe(2);
      expect(result.err, argv.join(' ')).toMatch(/^error USAGE: /);
    }
  });

  it('reports a mirror that does not exist', async () => {
    const result = await run(['fetch', '--mirror', path.join(tmp, 'nope'), '--dest', dest]);
    expect(result.code).toBe(1);
    expect(result.err).toContain('error ASSET_UNAVAILABLE: mirror');
  });
});

describe('assets list', () => {
  it('shows a table with kind, required, present, source and licence', async () => {
    fs.mkdirSync(dest);
    fs.writeFileSync(path.join(dest, 'coco-labels.txt'), 'wrong\n');
    const result = await run(['list', '--mirror', emptyMirror, '--dest', dest]);
    expect(result.code).toBe(0);
    const lines = result.out.split('\n');
    expect(lines[2]).toMatch(/^NAME +KIND +REQUIRED +PRESENT +SOURCE +LICENCE$/);
    expect(lines.find((line) => line.startsWith('yolox-nano.onnx '))).toMatch(/model +yes +no +upstream \(raw\.githubusercontent\.com\) +Apache-2\.0/);
    expect(lines.find((line) => line.startsWith('coco-labels.txt '))).toContain('BAD SHA256');
    expect(lines.find((line) => line.startsWith('fox-squirrel.jpg '))).toContain('manual: see obtain');
    expect(lines.filter((line) => line.trim() !== '').length).toBe(2 + 1 + 13);
  });
});
