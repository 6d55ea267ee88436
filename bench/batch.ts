/**
 * Batching across cameras (issue #19 item 3): does one session.run over B frames give more
 * frames/s than B runs of one frame, on this CPU?
 *
 *  1. Makes a batch-axis variant of the int8 and the float YOLOX-nano in a temp dir
 *     (agent/quantize/batch-axis.ts; nothing is written to models/).
 *  2. Checks that each frame's output at batch 2 and 4 equals its output at batch 1 (the shipped
 *     static model): max abs difference, and the decoded detections compared one by one.
 *  3. Times frames/s at batch 1 (static and batch-axis model), 2 and 4, at 1 and 2 intra-op
 *     threads, through a bare onnxruntime session and (int8) through the agent's session worker,
 *     in short slices, the configurations compared with each other back to back in a rotated
 *     order, many rounds: medians, spreads, and per round the ratio to the static batch-1 slice
 *     of the same round; and the CPU time per frame, which the other processes on a shared box
 *     disturb far less than frames/s.
 *
 * Run: node scripts/run-ts.mjs bench/batch.ts
 *   BENCH_ROUNDS (default 15), BENCH_MS per configuration and round (default 600),
 *   BENCH_FIXED=1 adds the int8 model with a fixed batch of 2 and 4 (bare onnxruntime),
 *   BENCH_FRAMES frames checked for equality (default 8, a multiple of 4)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { cpuInt8Features, describeCpuInt8 } from '../agent/inference/cpu-features.js';
import { createDetectionDecoder } from '../agent/inference/decode-detection.js';
import { geometryOf } from '../agent/inference/loaded-model.js';
import { resolveModel, type ResolvedModel } from '../agent/inference/model-files.js';
import { createPreprocessor } from '../agent/inference/preprocess.js';
import { manifestsDir } from '../agent/paths.js';
import { withBatchAxis } from '../agent/quantize/batch-axis.js';
import { readSourceFrames } from '../agent/quantize/calibration-source.js';
import { decodeModel, encodeModel } from '../agent/quantize/onnx-model.js';
import { assetPath } from '../test/support/assets.js';
import { releaseAll, sessionOptions, timeDirect, timeWorker, type RunConfig, type Timing } from './batch-runs.js';
import { BenchCleanup } from './cleanup.js';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 15);
const MS = Number(process.env['BENCH_MS'] ?? 600);
const FIXED = process.env['BENCH_FIXED'] === '1';
const FRAMES = Number(process.env['BENCH_FRAMES'] ?? 8);
const BATCHES = [1, 2, 4];
const THREADS = [1, 2];

const assetsDir = path.dirname(assetPath('yolox-nano.onnx'));
const models: Record<string, ResolvedModel> = {
  int8: resolveModel(path.join(manifestsDir(), 'yolox-nano-int8.json'), assetsDir),
  float: resolveModel(path.join(manifestsDir(), 'yolox-nano.json'), assetsDir),
};
const f1 = (value: number): string => value.toFixed(1);
const f2 = (value: number): string => value.toFixed(2);
const load = (): string => os.loadavg().map(f1).join(' ');

const median = (values: number[]): number => quantile(values, 0.5);
function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (sorted.length - 1) * q;
  const low = Math.floor(at);
  return sorted[low]! + (sorted[Math.min(low + 1, sorted.length - 1)]! - sorted[low]!) * (at - low);
}
const quartiles = (values: number[], format: (value: number) => string): string => `${format(quantile(values, 0.25))}–${format(quantile(values, 0.75))}`;
const spread = (values: number[], format: (value: number) => string): string => `${format(Math.min(...values))}–${format(Math.max(...values))}`;

/** The batch-axis variant of a model (dynamic, or one fixed batch size), in dir. */
function writeVariant(model: ResolvedModel, dir: string, batch: 'dynamic' | number = 'dynamic'): string {
  const { model: variant, report } = withBatchAxis(decodeModel(fs.readFileSync(model.modelPath), model.modelPath), batch);
  const file = path.join(dir, `${model.manifest.id}.batch-${batch}.onnx`);
  fs.writeFileSync(file, encodeModel(variant));
  if (batch === 'dynamic')
    console.log(
      `${model.manifest.id}: batch axis added; Reshape shapes rewritten 1 -> 0: ${report.reshapesRewritten.join(', ') || 'none'}; value_info shapes dropped: ${report.valueInfoShapesDropped}`,
    );
  return file;
}

/** B preprocessed frames, one after the other (NCHW float32). */
function batchInput(frames: Float32Array[], first: number, batch: number): Float32Array {
  const size = frames[0]!.length;
  const input = new Float32Array(size * batch);
  for (let i = 0; i < batch; i++) input.set(frames[first + i]!, i * size);
  return input;
}

/** 2. Each frame's output at batch B against batch 1 of the shipped model, same thread count. */
async function checkEquality(name: string, model: ResolvedModel, variant: string, frames: Float32Array[], threads: number): Promise<string[]> {
  const { manifest, labels } = model;
  if (manifest.task !== 'detection') throw new Error(`${manifest.id} is not a detector`);
  const decode = createDetectionDecoder(manifest, labels, geometryOf(manifest), manifest.output.scoreThreshold);
  const { width, height } = manifest.input;
  const single = await ort.InferenceSession.create(model.modelPath, sessionOptions(threads));
  const batched = await ort.InferenceSession.create(variant, sessionOptions(threads));
  const reference: Float32Array[] = [];
  for (const frame of frames) {
    const out = await single.run({ [manifest.input.name]: new ort.Tensor('float32', frame, [1, 3, height, width]) });
    reference.push(new Float32Array(out[manifest.output.name]!.data as Float32Array));
  }
  const rows: string[] = [];
  for (const batch of BATCHES) {
    let maxDiff = 0;
    let same = 0;
    let detections = 0;
    for (let first = 0; first + batch <= frames.length; first += batch) {
      const dims = [batch, 3, height, width];
      const out = await batched.run({ [manifest.input.name]: new ort.Tensor('float32', batchInput(frames, first, batch), dims) });
      const data = out[manifest.output.name]!.data as Float32Array;
      const size = reference[0]!.length;
      for (let i = 0; i < batch; i++) {
        const mine = data.subarray(i * size, (i + 1) * size);
        const theirs = reference[first + i]!;
        for (let k = 0; k < size; k++) maxDiff = Math.max(maxDiff, Math.abs(mine[k]! - theirs[k]!));
        const a = JSON.stringify(decode(mine, 320, 240, undefined));
        const b = decode(theirs, 320, 240, undefined);
        detections += b.length;
        if (a === JSON.stringify(b)) same++;
      }
    }
    rows.push(`| ${name} | ${threads} | ${batch} | ${maxDiff.toExponential(2)} | ${same} / ${frames.length} | ${detections} |`);
  }
  await single.release();
  await batched.release();
  return rows;
}

interface Config extends RunConfig {
  label: string;
  mode: 'direct' | 'worker';
  model: string;
  variant: 'static' | 'batch-axis' | 'fixed batch';
  manifest: ResolvedModel['manifest'];
}

function configsFor(name: string, model: ResolvedModel, variant: string, frames: Float32Array[], mode: Config['mode']): Config[] {
  const { width, height } = model.manifest.input;
  const configs: Config[] = [];
  for (const threads of THREADS) {
    const base = { mode, model: name, threads, manifest: model.manifest };
    configs.push({ ...base, label: '', file: model.modelPath, variant: 'static', batch: 1, input: batchInput(frames, 0, 1), dims: [1, 3, height, width] });
    for (const batch of BATCHES) {
      const input = batchInput(frames, 0, batch);
      configs.push({ ...base, label: '', file: variant, variant: 'batch-axis', batch, input, dims: [batch, 3, height, width] });
    }
  }
  if (FIXED && mode === 'direct' && name === 'int8') {
    // The same rewrite with the batch fixed (2, 4): does a static shape let onnxruntime plan better?
    for (const threads of THREADS) {
      for (const batch of BATCHES.filter((size) => size > 1)) {
        const file = writeVariant(model, path.dirname(variant), batch);
        const base = { mode, model: name, threads, manifest: model.manifest, label: '', file, variant: 'fixed batch' as const, batch };
        configs.push({ ...base, input: batchInput(frames, 0, batch), dims: [batch, 3, height, width] });
      }
    }
  }
  for (const config of configs) config.label = `${config.mode} ${config.model} t${config.threads} ${config.variant} b${config.batch}`;
  return configs;
}

async function time(config: Config): Promise<Timing> {
  if (config.mode === 'direct') return timeDirect(config, MS);
  return timeWorker(config, MS, config.manifest.input.name, config.manifest.output.name);
}

async function main(): Promise<void> {
  const cleanup = new BenchCleanup('releasing the sessions and removing the temp dir');
  cleanup.installSignalHandlers();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-batch-'));
  cleanup.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  cleanup.add(releaseAll);
  const features = cpuInt8Features();
  console.log(`cpu: ${describeCpuInt8(features)}`);
  console.log(`${os.cpus().length} cores, onnxruntime-node ${ort.env.versions.common}, load ${load()}; ${ROUNDS} rounds, ${MS} ms per configuration and round`);

  const variants: Record<string, string> = {};
  for (const [name, model] of Object.entries(models)) variants[name] = writeVariant(model, dir);
  const { manifest } = models['int8']!;
  const geometry = geometryOf(manifest);
  const clip = assetPath('highway-cctv-320x240.mp4');
  const source = await readSourceFrames({ kind: 'video', file: clip, fps: 1, seconds: 'all' }, geometry, FRAMES);
  const preprocess = createPreprocessor(manifest.input);
  const frames = source.frames.map((frame) => {
    const tensor = new Float32Array(frame.length);
    preprocess(frame, tensor);
    return tensor;
  });
  console.log(`frames: ${frames.length} of the highway clip (${source.labels[0]} … ${source.labels.at(-1)})`);

  console.log('\n2. each frame at batch B (batch-axis model) against batch 1 of the shipped static model, same threads');
  console.log('| model | threads | batch | max abs diff of the outputs | frames with identical detections | detections (batch 1) |\n|---|---|---|---|---|---|');
  for (const [name, model] of Object.entries(models)) {
    for (const threads of THREADS) for (const row of await checkEquality(name, model, variants[name]!, frames, threads)) console.log(row);
  }

  const configs = [
    ...Object.entries(models).flatMap(([name, model]) => configsFor(name, model, variants[name]!, frames, 'direct')),
    ...configsFor('int8', models['int8']!, variants['int8']!, frames, 'worker'),
  ];
  const samples = new Map<Config, Timing[]>(configs.map((config) => [config, []]));
  // Configurations compared with each other (same path and model) run back to back in
  // short slices, so that each round's ratio sees the same machine: the other engineers' load
  // on this shared box changes within seconds.
  const groups = [...new Set(configs.map((config) => `${config.mode} ${config.model}`))].map((key) =>
    configs.filter((config) => `${config.mode} ${config.model}` === key),
  );
  const rotate = <T>(list: T[], by: number): T[] => {
    const shift = by % list.length;
    const rotated = [...list.slice(shift), ...list.slice(0, shift)];
    return by % 2 ? rotated.reverse() : rotated;
  };
  const loads: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const group of rotate(groups, round)) for (const config of rotate(group, round)) samples.get(config)!.push(await time(config));
    loads.push(load());
    console.error(`round ${round + 1}/${ROUNDS} done, load ${load()}`);
  }

  console.log(
    '\n3. frames/s (inferences/s) and CPU ms per frame (user + system, every thread of this process). Per round: ratio = this / the static batch-1 slice at the same thread count; vs best = this / the faster of the two static batch-1 slices (1 or 2 threads), what the agent would run unbatched',
  );
  console.log(
    '| path | model | threads | model file | batch | frames/s median | p25–p75 | ratio median | p25–p75 | min–max | vs best median | p25–p75 | CPU ms/frame median | CPU ratio median | p25–p75 |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  );
  const staticOf = (config: Config, threads: number): Timing[] =>
    samples.get(
      configs.find((other) => other.mode === config.mode && other.model === config.model && other.threads === threads && other.variant === 'static')!,
    )!;
  for (const config of configs) {
    const timings = samples.get(config)!;
    const reference = staticOf(config, config.threads);
    const best = timings.map((_, round) => Math.max(...THREADS.map((threads) => staticOf(config, threads)[round]!.framesPerSecond)));
    const fps = timings.map((timing) => timing.framesPerSecond);
    const ratios = fps.map((value, round) => value / reference[round]!.framesPerSecond);
    const vsBest = fps.map((value, round) => value / best[round]!);
    const cpu = timings.map((timing) => timing.cpuMsPerFrame);
    const cpuRatios = cpu.map((value, round) => value / reference[round]!.cpuMsPerFrame);
    console.log(
      `| ${config.mode} | ${config.model} | ${config.threads} | ${config.variant} | ${config.batch} | ${f1(median(fps))} | ${quartiles(fps, f1)} | ${f2(median(ratios))} | ${quartiles(ratios, f2)} | ${spread(ratios, f2)} | ${f2(median(vsBest))} | ${quartiles(vsBest, f2)} | ${f1(median(cpu))} | ${f2(median(cpuRatios))} | ${quartiles(cpuRatios, f2)} |`,
    );
  }
  console.log(`\nload after each round: ${loads.join(' | ')}`);
  await cleanup.runAll();
}

await main();
