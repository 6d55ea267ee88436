import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundledFfmpegPath } from '../../agent/ingest/ffmpeg-binary.js';
import { videoFilter } from '../../agent/ingest/ffmpeg-args.js';
import { bytesPerFrame } from '../../agent/ingest/frame-geometry.js';
import type { Frame } from '../../agent/ingest/frame.js';
import { LoadedModel, type SessionSettings } from '../../agent/inference/loaded-model.js';
import { resolveModel } from '../../agent/inference/model-files.js';
import type { Vehicle } from '../../agent/inference/result.js';
import { manifestsDir } from '../../agent/paths.js';
import { assetPath } from '../support/assets.js';
import { frameFromImage } from '../support/image-frame.js';

const settings: SessionSettings = {
  intraOpThreads: 2,
  interOpThreads: 1,
  graphOptimization: 'all',
  executionProviders: ['cpu'],
  cpuMemArena: false,
  spinWait: true,
};
const assetsDir = path.dirname(assetPath('yolox-nano.onnx'));

/** Frames of a clip exactly as the agent's ffmpeg makes them (same filter chain), one every 0.5 s. */
async function clipFrames(file: string, count: number, geometry: LoadedModel['geometry']): Promise<Frame[]> {
  const size = bytesPerFrame(geometry);
  const child = spawn(bundledFfmpegPath(), [
    '-hide_banner',
    '-loglevel',
    'error',
    '-i',
    file,
    '-vf',
    videoFilter(geometry, 2),
    '-frames:v',
    String(count),
    '-pix_fmt',
    geometry.pixelFormat,
    '-f',
    'rawvideo',
    'pipe:1',
  ]);
  const chunks: Buffer[] = [];
  for await (const chunk of child.stdout) chunks.push(chunk as Buffer);
  const all = Buffer.concat(chunks);
  return Array.from({ length: Math.floor(all.length / size) }, (_, i) => ({
    cameraId: 'clip',
    seq: i,
    capturedAt: 0,
    width: geometry.width,
    height: geometry.height,
    sourceWidth: 320,
    sourceHeight: 240,
    roi: undefined,
    data: all.subarray(i * size, (i + 1) * size),
  }));
}

function iou(a: Vehicle['box'], b: Vehicle['box']): number {
  const w = Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  return (w * h) / (a[2] * a[3] + b[2] * b[3] - w * h);
}

describe('YOLOX-nano int8 against its float original', () => {
  let int8: LoadedModel;
  let float: LoadedModel;
  beforeAll(async () => {
    int8 = await LoadedModel.load(resolveModel(path.join(manifestsDir(), 'yolox-nano-int8.json'), assetsDir), settings);
    float = await LoadedModel.load(resolveModel(path.join(manifestsDir(), 'yolox-nano.json'), assetsDir), settings);
  });
  afterAll(async () => {
    await int8?.release();
    await float?.release();
  });

  it("agree (IoU >= 0.5, same type) on at least 90% of the float model's detections over 50 frames of the highway clip", async () => {
    const frames = await clipFrames(assetPath('highway-cctv-320x240.mp4'), 50, float.geometry);
    expect(frames).toHaveLength(50);
    let reference = 0;
    let matched = 0;
    for (const frame of frames) {
      const expected = (await float.infer(frame)).vehicles;
      const actual = (await int8.infer(frame)).vehicles;
      const used = new Set<number>();
      reference += expected.length;
      for (const vehicle of expected) {
        const index = actual.findIndex((candidate, i) => !used.has(i) && candidate.type === vehicle.type && iou(candidate.box, vehicle.box) >= 0.5);
        if (index >= 0) {
          used.add(index);
          matched++;
        }
      }
    }
    console.log(`int8 matched ${matched} of ${reference} float detections (${((100 * matched) / reference).toFixed(1)}%) over 50 frames`);
    expect(reference).toBeGreaterThan(100);
    expect(matched / reference).toBeGreaterThanOrEqual(0.9);
  }, 120_000);

  it('bicycle-pickup-dog.jpg: a bicycle and a car or truck (the dog is not a vehicle)', async () => {
    const result = await int8.infer(await frameFromImage(assetPath('bicycle-pickup-dog.jpg'), int8.geometry));
    const types = result.vehicles.map((vehicle) => vehicle.type);
    expect(types).toContain('bicycle');
    expect(types.some((type) => type === 'car' || type === 'truck')).toBe(true);
    expect(result.vehicles.map((vehicle) => vehicle.label)).not.toContain('dog');
  });
});
