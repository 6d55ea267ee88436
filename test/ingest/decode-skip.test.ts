import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cameraSchema } from '../../agent/config/schema.js';
import type { DecodeSkipMode } from '../../agent/ingest/decode-skip.js';
import { buildFfmpegArgs } from '../../agent/ingest/ffmpeg-args.js';
import { FfmpegProcess } from '../../agent/ingest/ffmpeg-process.js';
import { bytesPerFrame } from '../../agent/ingest/frame-geometry.js';
import { assetPath } from '../support/assets.js';
import { ffmpegPath, runFfmpeg } from '../support/ffmpeg.js';
import { SMALL_GEOMETRY, startIngest, type Harness } from '../support/ingest-harness.js';
import { waitForNoFfmpegChildren } from '../support/processes.js';
import { startRtspServer, type RtspServerHandle } from '../support/rtsp-server.js';

/**
 * Decoder-level skipping against the real RTSP test server and real ffmpeg: for each mode, the
 * camera's ffmpeg runs with it (read from the process's own argv), frames keep arriving at
 * sampleFps, and they are distinct pictures, not the fps filter repeating one; a stream whose
 * keyframes are too far apart is never sampled by keyframes alone.
 */

const WINDOW_MS = 6000;
let tmp: string;
const servers: Record<string, RtspServerHandle> = {};
let harness: Harness | undefined;

/** The highway clip re-encoded with a known GOP and B-frames (SPS/PPS on every keyframe, as the server needs). */
async function encode(name: string, gop: number, bframes: number): Promise<string> {
  const file = path.join(tmp, `${name}.mp4`);
  const x264 = ['-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0', '-bf', String(bframes), '-x264-params', 'repeat-headers=1'];
  const result = await runFfmpeg(
    [
      '-loglevel',
      'error',
      '-y',
      '-i',
      assetPath('highway-cctv-320x240.mp4'),
      '-t',
      '20',
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      ...x264,
      '-pix_fmt',
      'yuv420p',
      '-an',
      file,
    ],
    { timeoutMs: 60_000 },
  );
  if (result.code !== 0) throw new Error(`encoding ${name} failed: ${result.stderr}`);
  return file;
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'cctv-decode-skip-'));
  const files = {
    gop1s: assetPath('highway-cctv-320x240.mp4'), // as shipped: GOP 25 at 25 fps, no B-frames
    bframes: await encode('bframes', 25, 3), // GOP 1 s, 3 B-frames: ~15 reference frames/s
    gop02s: await encode('gop02s', 5, 0), // 5 keyframes/s
    gop4s: await encode('gop4s', 100, 0), // one keyframe per 4 s: too sparse for 1 fps by keyframes alone
  };
  for (const [name, file] of Object.entries(files)) servers[name] = await startRtspServer({ file });
});

afterAll(async () => {
  for (const server of Object.values(servers)) await server.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

afterEach(async () => {
  await harness?.stop();
  harness = undefined;
  await waitForNoFfmpegChildren();
});

interface Expectation {
  id: string;
  stream: keyof typeof servers | string;
  sampleFps: number;
  decodeSkip: 'auto' | 'none' | 'nonref' | 'keyframes';
  mode: DecodeSkipMode;
  code?: string;
}

/** A cheap fingerprint of a frame: a strided byte sum (the test's own, per frame, off the agent's path). */
function fingerprint(data: Buffer): number {
  let sum = 0;
  for (let i = 0; i < data.length; i += 61) sum = (sum * 31 + data[i]!) >>> 0;
  return sum;
}

async function runCameras(cameras: Expectation[]): Promise<void> {
  const prints = new Map<string, number[]>();
  harness = await startIngest(
    {
      cameras: cameras.map((c) => ({ id: c.id, url: servers[c.stream]!.url, sampleFps: c.sampleFps, decodeSkip: c.decodeSkip })),
      ffmpeg: { stallTimeoutSeconds: 15, restartBackoffMs: { initial: 100, max: 500, maxWhenRejected: 500 } },
    },
    undefined,
    {
      onFrame: (id, frame) => {
        const list = prints.get(id) ?? [];
        list.push(fingerprint(frame.data));
        prints.set(id, list);
      },
    },
  );
  for (const c of cameras) await harness.waitState(c.id, (state) => state.state === 'streaming', 30_000);
  // Past the fps filter's start: count whole seconds from here.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const counts = new Map(cameras.map((c) => [c.id, harness!.arrivals.get(c.id)!.length]));
  const printsBefore = new Map(cameras.map((c) => [c.id, prints.get(c.id)?.length ?? 0]));
  const started = Date.now();
  await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
  const seconds = (Date.now() - started) / 1000;

  for (const c of cameras) {
    const state = harness.camera(c.id);
    expect(state.decode, c.id).toMatchObject({ setting: c.decodeSkip, mode: c.mode, code: c.code });
    expect(state.reconnects, c.id).toBe(0);
    // The ffmpeg that runs has the mode in its argv (-skip_frame before -i), or none at all.
    const argv = readFileSync(`/proc/${state.pid}/cmdline`, 'utf8').split('\0');
    const skip = argv.indexOf('-skip_frame');
    if (c.mode === 'none') expect(skip, c.id).toBe(-1);
    else {
      expect(argv[skip + 1], c.id).toBe(c.mode === 'keyframes' ? 'nokey' : 'noref');
      expect(skip, c.id).toBeLessThan(argv.indexOf('-i'));
    }
    // Frames at the configured rate...
    const rate = (harness.arrivals.get(c.id)!.length - counts.get(c.id)!) / seconds;
    expect(rate, `${c.id}: ${rate.toFixed(2)} frames/s`).toBeGreaterThanOrEqual(c.sampleFps * 0.8);
    expect(rate, `${c.id}: ${rate.toFixed(2)} frames/s`).toBeLessThanOrEqual(c.sampleFps * 1.2);
    // ...and distinct pictures: the fps filter repeats the last frame when the decoder gives too few.
    const window = prints.get(c.id)!.slice(printsBefore.get(c.id));
    const repeats = window.filter((value, i) => i > 0 && value === window[i - 1]).length;
    expect(repeats, `${c.id}: ${repeats} repeated frames of ${window.length}`).toBeLessThanOrEqual(Math.floor(window.length / 10));
  }
}

describe('decoder skipping on a real RTSP stream', () => {
  it('auto: keyframes only where keyframes alone give sampleFps, non-reference skipping on B-frames, none otherwise', async () => {
    await runCameras([
      { id: 'gop1s-at-1', stream: 'gop1s', sampleFps: 1, decodeSkip: 'auto', mode: 'keyframes' },
      { id: 'gop02s-at-5', stream: 'gop02s', sampleFps: 5, decodeSkip: 'auto', mode: 'keyframes' },
      { id: 'bframes-at-5', stream: 'bframes', sampleFps: 5, decodeSkip: 'auto', mode: 'nonref' },
      // GOP 1 s at 5 fps: keyframes too sparse, every frame a reference: no skipping, no complaint.
      { id: 'gop1s-at-5', stream: 'gop1s', sampleFps: 5, decodeSkip: 'auto', mode: 'none' },
      { id: 'gop4s-at-1', stream: 'gop4s', sampleFps: 1, decodeSkip: 'auto', mode: 'none' },
    ]);
  });

  it('explicit modes: followed where the stream allows; keyframes on a GOP too sparse falls back with DECODE_SKIP_TOO_SPARSE', async () => {
    await runCameras([
      { id: 'keyframes-gop1s-at-1', stream: 'gop1s', sampleFps: 1, decodeSkip: 'keyframes', mode: 'keyframes' },
      { id: 'nonref-gop1s-at-5', stream: 'gop1s', sampleFps: 5, decodeSkip: 'nonref', mode: 'nonref' },
      { id: 'keyframes-gop4s-at-1', stream: 'gop4s', sampleFps: 1, decodeSkip: 'keyframes', mode: 'none', code: 'DECODE_SKIP_TOO_SPARSE' },
      { id: 'keyframes-bframes-at-5', stream: 'bframes', sampleFps: 5, decodeSkip: 'keyframes', mode: 'nonref', code: 'DECODE_SKIP_TOO_SPARSE' },
    ]);
    const warnings = harness!
      .logLines()
      .map((line) => JSON.parse(line) as { msg: string; camera?: string; code?: string; fix?: string })
      .filter((entry) => entry.msg === 'decode skipping falls back');
    expect(warnings.map((entry) => [entry.camera, entry.code]).sort()).toEqual([
      ['keyframes-bframes-at-5', 'DECODE_SKIP_TOO_SPARSE'],
      ['keyframes-gop4s-at-1', 'DECODE_SKIP_TOO_SPARSE'],
    ]);
    expect(warnings[0]?.fix).toMatch(/sampleFps|GOP/);
  });

  it('why the GOP check matters: keyframes forced on a GOP of 4 s at 1 fps delivers repeats of one picture, not 1 new frame a second', async () => {
    const camera = cameraSchema.parse({ id: 'forced', url: servers['gop4s']!.url, sampleFps: 1 });
    const args = buildFfmpegArgs({
      camera,
      url: camera.url,
      capabilities: { rtspTimeoutOption: '-stimeout', hasFpsMode: false },
      geometry: SMALL_GEOMETRY,
      hwaccel: 'none',
      socketTimeoutSeconds: 10,
      decodeSkip: 'keyframes',
    });
    const ffmpeg = new FfmpegProcess(ffmpegPath, args);
    const frameBytes = bytesPerFrame(SMALL_GEOMETRY);
    const prints: number[] = [];
    let pending = Buffer.alloc(0);
    ffmpeg.child.stdout.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= frameBytes) {
        prints.push(fingerprint(pending.subarray(0, frameBytes)));
        pending = pending.subarray(frameBytes);
      }
    });
    try {
      const deadline = Date.now() + 30_000;
      while (prints.length < 9 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      await ffmpeg.stop(true);
    }
    // The fps filter keeps its 1 frame a second by repeating the last keyframe until the next.
    const window = prints.slice(1);
    const repeats = window.filter((value, i) => i > 0 && value === window[i - 1]).length;
    expect(window.length).toBeGreaterThanOrEqual(8);
    expect(repeats, `${repeats} repeats in ${window.length} frames`).toBeGreaterThanOrEqual(window.length / 2);
  });
});
