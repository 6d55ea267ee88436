/**
 * Inference benchmarks, printed from one run on this machine:
 *  1. the ceiling: a bare onnxruntime loop on an already prepared tensor (same model, threads);
 *  2. the full pipeline at an unlimited sample rate: file -> ffmpeg -> slot -> scheduler ->
 *     preprocessing -> inference -> results written to SQLite; its frames/s as a ratio of 1;
 *  3. int8 vs float speed (ceiling and pipeline);
 *  4. latency from frame arrival to stored result at 5 fps per camera, 1 and 4 cameras (p50/p95).
 *
 * Run: node scripts/run-ts.mjs bench/inference.ts
 *   BENCH_SECONDS (default 8) per measurement, BENCH_ROUNDS (default 3) alternations of ceiling and pipeline
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { configSchema } from '../agent/config/schema.js';
import { FrameScheduler } from '../agent/inference/frame-scheduler.js';
import { InferenceService } from '../agent/inference/inference-service.js';
import { geometryOf, type SessionSettings } from '../agent/inference/loaded-model.js';
import { resolveModel, type ResolvedModel } from '../agent/inference/model-files.js';
import type { InferenceResult } from '../agent/inference/result.js';
import { IngestService } from '../agent/ingest/ingest-service.js';
import { openDatabase } from '../agent/storage/database.js';
import { ResultWriter } from '../agent/storage/result-writer.js';
import { manifestsDir } from '../agent/paths.js';
import { assetPath } from '../test/support/assets.js';
import { captureLogger } from '../test/support/capture-log.js';
import { childPids, CLK_TCK, processTicks } from './proc-cpu.js';
import { describeCpuInt8 } from '../agent/inference/cpu-features.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 8);
// The agent's defaults, overridable for experiments: BENCH_SPIN=1, BENCH_ARENA=0, BENCH_DECODE_THREADS=1.
const defaults = configSchema.parse({ cameras: [{ id: 'defaults', url: 'defaults.mp4' }] }).inference;
const arena = process.env['BENCH_ARENA'] === undefined ? defaults.cpuMemArena : process.env['BENCH_ARENA'] !== '0';
const spinWait = process.env['BENCH_SPIN'] === undefined ? defaults.spinWait : process.env['BENCH_SPIN'] !== '0';
const threads = Number(process.env['BENCH_THREADS'] ?? defaults.intraOpThreads);
const settings: SessionSettings = {
  intraOpThreads: threads,
  interOpThreads: 1,
  graphOptimization: 'all',
  executionProviders: ['cpu'],
  cpuMemArena: arena,
  spinWait,
};
const decodeThreads = Number(process.env['BENCH_DECODE_THREADS'] ?? 0);
const assetsDir = path.dirname(assetPath('yolox-nano.onnx'));
const clip = assetPath('highway-cctv-320x240.mp4');
const models = {
  int8: resolveModel(path.join(manifestsDir(), 'yolox-nano-int8.json'), assetsDir),
  float: resolveModel(path.join(manifestsDir(), 'yolox-nano.json'), assetsDir),
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** CPU time (ms, user + system) of this process, all its threads, and of its child processes alive now (ffmpeg). */
function cpuMs(): { agent: number; children: number } {
  const usage = process.cpuUsage();
  let childTicks = 0;
  for (const pid of childPids()) {
    try {
      childTicks += processTicks(pid);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error; // the child just ended
    }
  }
  return { agent: (usage.user + usage.system) / 1000, children: (childTicks * 1000) / CLK_TCK };
}

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
};

/** 1. The ceiling: session.run in a loop on one prepared tensor, nothing else. */
async function ceiling(model: ResolvedModel): Promise<{ fps: number; cpuPerFrame: number }> {
  const spin = settings.spinWait ? '1' : '0';
  const session = await ort.InferenceSession.create(model.modelPath, {
    executionProviders: ['cpu'],
    intraOpNumThreads: settings.intraOpThreads,
    interOpNumThreads: settings.interOpThreads,
    graphOptimizationLevel: 'all',
    enableCpuMemArena: arena,
    extra: { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } } },
  });
  const { width, height } = model.manifest.input;
  const feeds = { [model.manifest.input.name]: new ort.Tensor('float32', new Float32Array(3 * width * height).fill(114), [1, 3, height, width]) };
  for (let i = 0; i < 10; i++) await session.run(feeds);
  let runs = 0;
  const cpuBefore = cpuMs();
  const started = performance.now();
  while (performance.now() - started < SECONDS * 1000) {
    await session.run(feeds);
    runs++;
  }
  const fps = (runs * 1000) / (performance.now() - started);
  const cpuPerFrame = (cpuMs().agent - cpuBefore.agent) / runs;
  await session.release();
  return { fps, cpuPerFrame };
}

interface PipelineRun {
  fps: number;
  /** CPU ms per frame: the agent's threads (main, inference worker, onnxruntime pool) and ffmpeg. */
  agentCpuPerFrame: number;
  /** Busy time of the main thread's event loop per frame (reading frames, preprocessing, decoding, SQLite). */
  mainThreadMsPerFrame: number;
  ffmpegCpuPerFrame: number;
  latencies: number[];
  dropped: number;
}

/** 2 and 4. The agent's own services wired as in agent/daemon.ts, without MQTT. */
async function pipeline(model: ResolvedModel, cameras: number, sampleFps: number | null): Promise<PipelineRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-bench-'));
  const { log } = captureLogger();
  const config = configSchema.parse({
    cameras: Array.from({ length: cameras }, (_, i) => ({ id: `cam${i}`, url: clip, sampleFps, realtime: sampleFps !== null, loop: true })),
    inference: { cpuMemArena: arena, spinWait, intraOpThreads: threads },
    ffmpeg: { decodeThreads },
  });
  const db = openDatabase(path.join(dir, 'bench.db'));
  const awaiting: number[] = [];
  const latencies: number[] = [];
  const writer = new ResultWriter({
    db: () => db,
    deviceId: 'bench',
    resultsTopic: 'bench/results',
    flushIntervalMs: config.storage.flushIntervalMs,
    maxBatchRows: config.storage.maxBatchRows,
    log,
    onCommitted: () => {
      const now = Date.now();
      for (const capturedAt of awaiting) latencies.push(now - capturedAt);
      awaiting.length = 0;
    },
  });
  const inference = new InferenceService(model, { ...settings, sessions: settings.sessions ?? 1 }, log);
  let results = 0;
  let scheduler: FrameScheduler | undefined;
  const ingest = new IngestService({ config, geometry: geometryOf(model.manifest), log, onSlotsChanged: () => scheduler?.refreshSlots() });
  scheduler = new FrameScheduler({
    slots: () => ingest.slots,
    models: inference,
    onResult: (result: InferenceResult) => {
      results++;
      awaiting.push(result.capturedAt);
      writer.enqueue(result);
    },
    log,
  });
  const signal = new AbortController().signal;
  await writer.start();
  await inference.start();
  await scheduler.start();
  await ingest.start(signal);
  await sleep(2000); // connection, first frames, warm caches
  const startResults = results;
  latencies.length = 0;
  const droppedBefore = ingest.cameras().reduce((sum, camera) => sum + camera.dropped, 0);
  const cpuBefore = cpuMs();
  const loopBefore = performance.eventLoopUtilization();
  const started = performance.now();
  await sleep(SECONDS * 1000);
  const loop = performance.eventLoopUtilization(loopBefore);
  const frames = results - startResults;
  const fps = (frames * 1000) / (performance.now() - started);
  const cpuAfter = cpuMs();
  const dropped = ingest.cameras().reduce((sum, camera) => sum + camera.dropped, 0) - droppedBefore;
  const measured = [...latencies];
  await ingest.stop();
  await scheduler.stop();
  await inference.stop();
  await writer.stop();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    fps,
    latencies: measured,
    dropped,
    agentCpuPerFrame: (cpuAfter.agent - cpuBefore.agent) / frames,
    mainThreadMsPerFrame: loop.active / frames,
    ffmpegCpuPerFrame: (cpuAfter.children - cpuBefore.children) / frames,
  };
}

const f1 = (value: number): string => value.toFixed(1);

const median = (values: number[]): number => percentile(values, 0.5);

async function main(): Promise<void> {
  const rounds = Number(process.env['BENCH_ROUNDS'] ?? 3);
  console.log(`settings: spinWait ${settings.spinWait}, ffmpeg decode threads ${decodeThreads || 'auto'}`);
  console.log(`cpu: ${describeCpuInt8()}`);
  console.log(
    `inference bench: ${os.cpus().length} cores (${os.cpus()[0]?.model}), load ${os.loadavg().map(f1).join(' ')}, ${SECONDS} s per measurement, ${rounds} rounds, ${settings.intraOpThreads} intra-op threads`,
  );
  // Ceiling and pipeline alternate, round after round, so both see the same machine: the
  // ratio of each round is what counts on a shared, noisy box, and its median is reported.
  const table: string[] = [];
  const cpuTable: string[] = [];
  const speed: Record<string, { ceiling: number; pipeline: number }> = {};
  const only = process.env['BENCH_MODELS']?.split(',');
  for (const [name, model] of Object.entries(models)) {
    if (only && !only.includes(name)) continue;
    const ceilings: number[] = [];
    const pipelines: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const top = await ceiling(model);
      ceilings.push(top.fps);
      const run = await pipeline(model, 1, null);
      pipelines.push(run.fps);
      cpuTable.push(
        `| ${model.manifest.id} | ${round + 1} | ${f1(top.cpuPerFrame)} | ${f1(run.agentCpuPerFrame)} | ${run.mainThreadMsPerFrame.toFixed(2)} | ${f1(run.ffmpegCpuPerFrame)} |`,
      );
    }
    const ratios = ceilings.map((top, i) => pipelines[i]! / top);
    speed[name] = { ceiling: median(ceilings), pipeline: median(pipelines) };
    table.push(
      `| ${model.manifest.id} | ${ceilings.map(f1).join(', ')} | ${pipelines.map(f1).join(', ')} | ${ratios.map((ratio) => ratio.toFixed(2)).join(', ')} | **${median(ratios).toFixed(2)}** |`,
    );
  }
  console.log(
    '\n1-2. ceiling (bare session.run on a prepared tensor) vs full pipeline (file -> ffmpeg -> preprocessing -> inference -> SQLite), unlimited sample rate, one camera; frames/s per round',
  );
  console.log('| model | ceiling | pipeline | pipeline / ceiling per round | median |\n|---|---|---|---|---|');
  console.log(table.join('\n'));
  console.log('\nCPU per frame (ms of CPU, user + system, all threads): where the cores go');
  console.log(
    "| model | round | ceiling | pipeline: agent (main + worker + onnxruntime) | of which the main thread's event loop | pipeline: ffmpeg |\n|---|---|---|---|---|---|",
  );
  console.log(cpuTable.join('\n'));
  if (speed['int8'] && speed['float'])
    console.log(
      `\n3. int8 / float speed (medians): ceiling ${(speed['int8'].ceiling / speed['float'].ceiling).toFixed(2)}x, pipeline ${(speed['int8'].pipeline / speed['float'].pipeline).toFixed(2)}x`,
    );
  if (process.env['BENCH_SKIP_LATENCY'] === '1') return;

  console.log('\n4. latency from frame arrival (last byte from ffmpeg) to the result committed in SQLite, 5 fps per camera, int8');
  console.log('| cameras | results/s | p50 ms | p95 ms | frames dropped by latest-wins |\n|---|---|---|---|---|');
  for (const cameras of [1, 4]) {
    const run = await pipeline(models.int8, cameras, 5);
    console.log(`| ${cameras} | ${f1(run.fps)} | ${f1(percentile(run.latencies, 0.5))} | ${f1(percentile(run.latencies, 0.95))} | ${run.dropped} |`);
  }
  console.log(`\nload at the end: ${os.loadavg().map(f1).join(' ')}`);
}

await main();
