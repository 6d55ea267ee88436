/**
 * Preprocessing cost per frame (416×416 BGR → NCHW float32, the YOLOX input; and 224×224 with
 * mean/std, the classifier's): the agent's preprocessor against the plain per-byte loop it
 * replaced, side by side, alternating, in one run.
 *
 * Run: node scripts/run-ts.mjs bench/preprocess.ts   (BENCH_FRAMES, default 2000 per round)
 */
import { createPreprocessor } from '../agent/inference/preprocess.js';
import { manifestSchema, type ModelManifest } from '../agent/inference/manifest.js';

const FRAMES = Number(process.env['BENCH_FRAMES'] ?? 2000);
const ROUNDS = 5;

function inputOf(width: number, mean: number[], std: number[]): ModelManifest['input'] {
  return manifestSchema.parse({
    schemaVersion: 1,
    id: 'bench',
    version: '1',
    task: 'classification',
    file: 'bench.onnx',
    input: { name: 'x', layout: 'NCHW', dtype: 'float32', width, height: width, colorOrder: 'BGR', resize: { mode: 'stretch' }, normalization: { mean, std } },
    labels: ['a'],
    output: { name: 'y', scores: 'probabilities' },
    vehicleTypes: {},
  }).input;
}

/** The loop the agent used before: one typed-array load and one subtract-multiply per byte. */
function perByteLoop(input: ModelManifest['input']): (source: Buffer, target: Float32Array) => void {
  const plane = input.width * input.height;
  const [m0, m1, m2] = input.normalization.mean;
  const [s0, s1, s2] = input.normalization.std.map((std) => 1 / std) as [number, number, number];
  return (source, target) => {
    for (let i = 0, p = 0; i < plane; i++, p += 3) {
      target[i] = (source[p]! - m0) * s0;
      target[plane + i] = (source[p + 1]! - m1) * s1;
      target[2 * plane + i] = (source[p + 2]! - m2) * s2;
    }
  };
}

function msPerFrame(run: (source: Buffer, target: Float32Array) => void, pool: Buffer[], target: Float32Array): number {
  const started = performance.now();
  for (let i = 0; i < FRAMES; i++) run(pool[i % pool.length]!, target);
  return (performance.now() - started) / FRAMES;
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

console.log(`preprocessing, ms per frame (median of ${ROUNDS} alternating rounds of ${FRAMES} frames; a pool of 3 frame buffers as the reader has)`);
console.log('| input | per-byte loop | agent (words + tables) | speed-up |\n|---|---|---|---|');
for (const [name, input] of [
  ['416×416, raw pixels (YOLOX)', inputOf(416, [0, 0, 0], [1, 1, 1])],
  ['224×224, mean/std (SqueezeNet)', inputOf(224, [104, 117, 123], [1, 1, 1])],
] as const) {
  const bytes = input.width * input.height * 3;
  const pool = [0, 1, 2].map((seed) => {
    const frame = Buffer.alloc(bytes);
    for (let i = 0; i < bytes; i++) frame[i] = (i * 31 + seed * 7) & 255;
    return frame;
  });
  const target = new Float32Array(bytes);
  const agent = createPreprocessor(input);
  const loop = perByteLoop(input);
  const times = { loop: [] as number[], agent: [] as number[] };
  msPerFrame(loop, pool, target);
  msPerFrame(agent, pool, target);
  for (let round = 0; round < ROUNDS; round++) {
    times.loop.push(msPerFrame(loop, pool, target));
    times.agent.push(msPerFrame(agent, pool, target));
  }
  const [a, b] = [median(times.loop), median(times.agent)];
  console.log(`| ${name} | ${a.toFixed(3)} | ${b.toFixed(3)} | ${(a / b).toFixed(2)}× |`);
}
