import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Frame } from '../ingest/frame.js';
import { LoadedModel, type SessionSettings } from '../inference/loaded-model.js';
import type { ResolvedModel } from '../inference/model-files.js';
import type { Vehicle } from '../inference/result.js';
import { createSession, type ModelInput } from './collect.js';

/**
 * How far the quantized model is from its float original, measured with the agent's own
 * inference code (LoadedModel: preprocessing, YOLOX decoding, NMS), and how fast each runs.
 */

export interface Agreement {
  frames: number;
  floatDetections: number;
  int8Detections: number;
  /** Vehicles both models found: one-to-one pairs at IoU >= 0.5. */
  matched: number;
  /** Of those, the pairs that also agree on the vehicle type. */
  sameType: number;
  /** Of the int8 detections, the share that match a float one. */
  precision: number;
  /** Of the float detections, the share the int8 model also finds. */
  recall: number;
  /** Of the matched vehicles, the share given the same type by both. */
  typeAgreement: number;
}

export function iou(a: Vehicle['box'], b: Vehicle['box']): number {
  const w = Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  return (w * h) / (a[2] * a[3] + b[2] * b[3] - w * h);
}

/**
 * Greedy one-to-one matching of vehicles, highest float score first: IoU >= 0.5, a box of the
 * same type preferred. Detectors report one box per vehicle (class-agnostic suppression), so
 * this counts vehicles both models found; whether they agree on its type is counted apart
 * (a car/truck flip near equal scores is a type disagreement, not a missed vehicle).
 */
export function matchDetections(reference: Vehicle[], candidate: Vehicle[]): { matched: number; sameType: number } {
  const used = new Uint8Array(candidate.length);
  let matched = 0;
  let sameType = 0;
  for (const vehicle of [...reference].sort((a, b) => b.score - a.score)) {
    let best = -1;
    let bestRank = 0;
    candidate.forEach((other, i) => {
      if (used[i]) return;
      const overlap = iou(other.box, vehicle.box);
      if (overlap < 0.5) return;
      // Same type first, then the larger overlap.
      const rank = (other.type === vehicle.type ? 2 : 1) + overlap;
      if (rank > bestRank) {
        best = i;
        bestRank = rank;
      }
    });
    if (best >= 0) {
      used[best] = 1;
      matched++;
      if (candidate[best]!.type === vehicle.type) sameType++;
    }
  }
  return { matched, sameType };
}

/** precision, recall and type agreement from the counts. */
export function agreementOf(counts: Omit<Agreement, 'precision' | 'recall' | 'typeAgreement'>): Agreement {
  const { floatDetections, int8Detections, matched, sameType } = counts;
  return {
    ...counts,
    precision: int8Detections === 0 ? (floatDetections === 0 ? 1 : 0) : matched / int8Detections,
    recall: floatDetections === 0 ? 1 : matched / floatDetections,
    typeAgreement: matched === 0 ? 1 : sameType / matched,
  };
}

export const EVALUATION_SETTINGS: SessionSettings = {
  intraOpThreads: 2,
  interOpThreads: 1,
  graphOptimization: 'all',
  executionProviders: ['cpu'],
  cpuMemArena: false,
  spinWait: true,
};

/** A resolved model whose file is `bytes`, written to a temporary file for LoadedModel. */
export async function loadModelBytes(
  floatModel: ResolvedModel,
  bytes: Uint8Array,
  id: string,
  settings: SessionSettings = EVALUATION_SETTINGS,
): Promise<LoadedModel> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-quantize-'));
  const file = path.join(dir, `${id}.onnx`);
  try {
    fs.writeFileSync(file, bytes);
    const { sha256: _unchecked, ...manifest } = floatModel.manifest;
    return await LoadedModel.load({ ...floatModel, manifest: { ...manifest, id, file: `${id}.onnx` }, modelPath: file }, settings);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function frameOf(data: Buffer, model: LoadedModel, seq: number): Frame {
  return {
    cameraId: 'evaluation',
    seq,
    capturedAt: 0,
    width: model.geometry.width,
    height: model.geometry.height,
    sourceWidth: 0,
    sourceHeight: 0,
    roi: undefined,
    data,
  };
}

export async function measureAgreement(float: LoadedModel, int8: LoadedModel, frames: Buffer[]): Promise<Agreement> {
  const counts = { frames: frames.length, floatDetections: 0, int8Detections: 0, matched: 0, sameType: 0 };
  for (const [seq, data] of frames.entries()) {
    const expected = (await float.infer(frameOf(data, float, seq))).vehicles;
    const actual = (await int8.infer(frameOf(data, int8, seq))).vehicles;
    counts.floatDetections += expected.length;
    counts.int8Detections += actual.length;
    const pairs = matchDetections(expected, actual);
    counts.matched += pairs.matched;
    counts.sameType += pairs.sameType;
  }
  return agreementOf(counts);
}

export interface SpeedRound {
  threads: number;
  floatFps: number;
  int8Fps: number;
  ratio: number;
}

async function framesPerSecond(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, seconds: number): Promise<number> {
  for (let i = 0; i < 3; i++) for (const output of Object.values(await session.run(feeds))) output.dispose();
  const started = performance.now();
  let runs = 0;
  while (performance.now() - started < seconds * 1000) {
    for (const output of Object.values(await session.run(feeds))) output.dispose();
    runs++;
  }
  return (runs * 1000) / (performance.now() - started);
}

/**
 * Bare onnxruntime frames/s of both models on the same prepared input, alternating float and
 * int8 within each round so that load from other processes hits both alike; the ratio per
 * round is what to compare, and its median what to report.
 */
export async function measureSpeed(
  floatBytes: Uint8Array,
  int8Bytes: Uint8Array,
  input: ModelInput,
  threads: number[],
  rounds: number,
  seconds: number,
): Promise<SpeedRound[]> {
  const results: SpeedRound[] = [];
  const feeds = { [input.name]: new ort.Tensor('float32', input.data, input.dims) };
  for (const count of threads) {
    const float = await createSession(floatBytes, count);
    const int8 = await createSession(int8Bytes, count);
    try {
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? [float, int8] : [int8, float];
        const fps = new Map<ort.InferenceSession, number>();
        for (const session of order) fps.set(session, await framesPerSecond(session, feeds, seconds));
        results.push({ threads: count, floatFps: fps.get(float)!, int8Fps: fps.get(int8)!, ratio: fps.get(int8)! / fps.get(float)! });
      }
    } finally {
      await float.release();
      await int8.release();
    }
  }
  return results;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length === 0 ? Number.NaN : sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
