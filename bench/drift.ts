/**
 * Drift monitoring's cost and its false alarms (issue #17), three parts chosen by BENCH_PARTS:
 *
 * - micro: the input statistics of one sampled frame (FrameFeatures.measure on the highway
 *   clip's frames at model input size), one result's prediction statistics, one window
 *   comparison, and a skipped frame (the counter), in µs; with the share of a frame's
 *   inference time they add at the default one-in-N sampling; then the DriftService hooks per
 *   call, warm and with cold caches (as between two frames of a real agent).
 * - share: the real agent on the highway clip (a file camera, not real-time, so it runs as fast
 *   as the model allows) with the whole monitoring on (feedback monitor, drift on every frame,
 *   self-test) and off, alternated in pairs; main-thread CPU per result from /proc
 *   (the agent's main thread only: inference runs in a worker, ffmpeg in a child).
 * - false-alarms: the unaltered clip looped through the real RTSP server for BENCH_MINUTES with
 *   short windows (so that many windows are compared), counting drifted windows and drift
 *   alerts per hour.
 *
 *   node scripts/run-ts.mjs bench/drift.ts
 *   BENCH_PARTS=false-alarms BENCH_MINUTES=30 node scripts/run-ts.mjs bench/drift.ts
 *
 * Environment: BENCH_PARTS (default micro,share), BENCH_PAIRS (share: on/off pairs, default 4),
 * BENCH_SECONDS (share: measuring window per run, default 20), BENCH_EVERY_NTH (share: default the config's), BENCH_MINUTES (false-alarms,
 * default 30), BENCH_WINDOW_SECONDS (false-alarms, default 15). Results: docs/benchmarks/drift.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { driftSchema, monitorSchema } from '../agent/config/monitor-schema.js';
import { compareWindows } from '../agent/drift/compare.js';
import type { DriftPayload } from '../agent/drift/drift-schema.js';
import { DriftService } from '../agent/drift/drift-service.js';
import { FrameFeatures } from '../agent/drift/frame-features.js';
import { WindowStats } from '../agent/drift/window-stats.js';
import { describeCpuInt8 } from '../agent/inference/cpu-features.js';
import { LoadedModel } from '../agent/inference/loaded-model.js';
import { resolveModel } from '../agent/inference/model-files.js';
import type { InferenceResult } from '../agent/inference/result.js';
import type { Frame } from '../agent/ingest/frame.js';
import type { FrameGeometry } from '../agent/ingest/frame-geometry.js';
import { deviceTopics } from '../agent/mqtt/topics.js';
import { openDatabase } from '../agent/storage/database.js';
import { readSourceFrames } from '../agent/quantize/calibration-source.js';
import { EVALUATION_SETTINGS, frameOf } from '../agent/quantize/evaluate.js';
import { type AgentProcess, killIfRunning, spawnAgent } from '../test/support/agent-process.js';
import { assetPath, projectRoot } from '../test/support/assets.js';
import { startMosquitto } from '../test/support/mosquitto.js';
import { startRtspServer } from '../test/support/rtsp-server.js';
import { captureLogger } from '../test/support/capture-log.js';
import { BenchCleanup, runBenchmark } from './cleanup.js';
import { CLK_TCK } from './proc-cpu.js';

const env = (name: string, fallback: number): number => (process.env[name] ? Number(process.env[name]) : fallback);
const PARTS = (process.env['BENCH_PARTS'] ?? 'micro,share').split(',').map((part) => part.trim());
const PAIRS = env('BENCH_PAIRS', 4);
const SECONDS = env('BENCH_SECONDS', 20);
const MINUTES = env('BENCH_MINUTES', 30);
const WINDOW_SECONDS = env('BENCH_WINDOW_SECONDS', 15);
/** share: input statistics on one frame in N (the config's default; 1 is the stress case). */
const EVERY_NTH = env('BENCH_EVERY_NTH', driftSchema.parse(undefined).everyNthFrame);

const cleanup = new BenchCleanup('stopping the drift bench');
const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
};

/** utime+stime of one thread (the main thread's tid is the pid), in clock ticks. */
function threadTicks(pid: number, tid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

async function micro(): Promise<void> {
  const manifest = path.join(projectRoot, 'models', 'manifests', 'yolox-nano-int8.json');
  const model = await LoadedModel.load(resolveModel(manifest), EVALUATION_SETTINGS);
  try {
    const { frames } = await readSourceFrames({ kind: 'video', file: assetPath('highway-cctv-320x240.mp4'), fps: 5, seconds: 'all' }, model.geometry, 150);
    const features = new FrameFeatures(model.geometry);
    const stats = new WindowStats();
    stats.reset(0);
    const asFrames = frames.map((data, seq) => frameOf(data, model, seq));
    const results = [];
    let inferenceMs = 0;
    for (const frame of asFrames) {
      const result = await model.infer(frame);
      inferenceMs += result.inferenceMs;
      results.push(result);
    }
    // Warm-up, then timed passes over every frame.
    for (const frame of asFrames) features.measure(frame, stats);
    const passes = 5;
    let started = performance.now();
    for (let pass = 0; pass < passes; pass++) for (const frame of asFrames) features.measure(frame, stats);
    const perFrameUs = ((performance.now() - started) * 1000) / (passes * asFrames.length);
    started = performance.now();
    for (let pass = 0; pass < passes * 20; pass++) for (const result of results) stats.addResult(result);
    const perResultUs = ((performance.now() - started) * 1000) / (passes * 20 * results.length);
    const reference = stats.snapshot();
    const thresholds = driftSchema.parse(undefined);
    started = performance.now();
    for (let i = 0; i < 20; i++) compareWindows(reference, stats.snapshot(), thresholds);
    const compareMs = (performance.now() - started) / 20;
    const meanInferenceMs = inferenceMs / results.length;
    const everyNth = thresholds.everyNthFrame;
    const perFrameShare = (perFrameUs / everyNth + perResultUs) / 1000 / meanInferenceMs;
    console.log(`micro (${asFrames.length} frames of the highway clip at ${model.geometry.width}x${model.geometry.height}):`);
    console.log(`  input statistics of a sampled frame: ${perFrameUs.toFixed(1)} µs`);
    console.log(
      `  prediction statistics of a result: ${perResultUs.toFixed(2)} µs (${(results.reduce((n, r) => n + r.vehicles.length, 0) / results.length).toFixed(1)} vehicles)`,
    );
    console.log(`  a window comparison (snapshot + tests): ${compareMs.toFixed(2)} ms, once per window`);
    console.log(
      `  per frame at everyNthFrame ${everyNth}: ${(perFrameUs / everyNth + perResultUs).toFixed(1)} µs = ${(perFrameShare * 100).toFixed(2)} % of the mean inference (${meanInferenceMs.toFixed(1)} ms)`,
    );
    coldHooks(asFrames, results, model.geometry);
  } finally {
    await model.release();
  }
}

/**
 * The service's hooks as the frame path calls them (DriftService.onFrame on every frame, the
 * statistics on one in N; onResult on every result), each call with cold caches: between two
 * frames of a real agent, decoding, inference and SQLite have had the caches, which a hot loop
 * hides (it gives the warm figures above). 32 MB are touched before each call.
 */
function coldHooks(frames: Frame[], results: InferenceResult[], geometry: FrameGeometry): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-bench-drift-cold-'));
  const db = openDatabase(path.join(dir, 'agent.db'));
  const { log } = captureLogger();
  const drift = new DriftService({
    db: () => db,
    deviceId: 'bench',
    topics: deviceTopics('bench', 'bench'),
    publishing: false,
    config: monitorSchema.parse({}),
    geometry,
    activeModel: () => ({ id: results[0]!.model.id, version: results[0]!.model.version }),
    log,
  });
  const thrash = new Float64Array(4 * 1024 * 1024);
  const touch = (): void => {
    for (let i = 0; i < thrash.length; i += 8) thrash[i]! += 1;
  };
  const timed = { warmFrame: [] as number[], warmResult: [] as number[], coldFrame: [] as number[], coldResult: [] as number[] };
  void drift.start();
  try {
    for (let i = 0; i < 1500; i++) {
      const cold = i % 2 === 0;
      if (cold) touch();
      let started = performance.now();
      drift.onFrame(frames[i % frames.length]!);
      const frameUs = (performance.now() - started) * 1000;
      if (cold) touch();
      started = performance.now();
      drift.onResult(results[i % results.length]!);
      const resultUs = (performance.now() - started) * 1000;
      if (i < 300) continue; // past V8's tiering
      (cold ? timed.coldFrame : timed.warmFrame).push(frameUs);
      (cold ? timed.coldResult : timed.warmResult).push(resultUs);
    }
  } finally {
    void drift.stop();
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const mean = (values: number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;
  const line = (name: string, warm: number[], cold: number[]): string =>
    `  ${name}: warm median ${median(warm).toFixed(2)} µs (mean ${mean(warm).toFixed(2)}), cold caches median ${median(cold).toFixed(2)} µs (mean ${mean(cold).toFixed(2)})`;
  console.log('the service hooks per call, warm and with cold caches (32 MB touched before each call):');
  console.log(line('DriftService.onFrame (statistics on one frame in N)', timed.warmFrame, timed.coldFrame));
  console.log(line('DriftService.onResult', timed.warmResult, timed.coldResult));
}

async function runAgentFor(monitoring: boolean, seconds: number): Promise<{ ticks: number; results: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-bench-drift-'));
  cleanup.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(
    config,
    [
      'deviceId: bench',
      `dataDir: ${dir}`,
      'cameras:',
      `  - { id: highway, url: "${assetPath('highway-cctv-320x240.mp4')}", sampleFps: null, realtime: false }`,
      monitoring ? `monitor: { drift: { everyNthFrame: ${EVERY_NTH}, windowSeconds: 5, referenceSeconds: 5 } }` : 'monitor: { enabled: false }',
      '',
    ].join('\n'),
  );
  const agent: AgentProcess = spawnAgent(['run', '--config', config]);
  cleanup.add(() => killIfRunning(agent));
  await agent.waitForLog((line) => line.msg === 'cctv-agent running', 60_000);
  await new Promise((resolve) => setTimeout(resolve, 8000)); // warm-up; with monitoring, past the reference
  const pid = agent.child.pid!;
  const db = new Database(path.join(dir, 'agent.db'), { readonly: true });
  const count = (): number => (db.prepare('SELECT count(*) AS n FROM results').get() as { n: number }).n;
  const ticks0 = threadTicks(pid, pid);
  const results0 = count();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const ticks = threadTicks(pid, pid) - ticks0;
  const results = count() - results0;
  db.close();
  agent.kill('SIGTERM');
  await agent.exited;
  return { ticks, results };
}

async function share(): Promise<void> {
  const ratios: number[] = [];
  console.log(
    `share: ${PAIRS} pairs of ${SECONDS} s runs, monitoring on (input statistics on one frame in ${EVERY_NTH}, 5 s drift windows, self-test) and off, alternated`,
  );
  for (let pair = 0; pair < PAIRS; pair++) {
    const order = pair % 2 === 0 ? [true, false] : [false, true];
    const runs = new Map<boolean, { ticks: number; results: number }>();
    for (const monitoring of order) runs.set(monitoring, await runAgentFor(monitoring, SECONDS));
    const perResult = (run: { ticks: number; results: number }): number => ((run.ticks / CLK_TCK) * 1000) / Math.max(1, run.results);
    const on = runs.get(true)!;
    const off = runs.get(false)!;
    ratios.push(perResult(on) / perResult(off));
    console.log(
      `  pair ${pair + 1}: on ${perResult(on).toFixed(2)} ms main thread per result (${on.results} results), off ${perResult(off).toFixed(2)} ms (${off.results}); ratio ${ratios.at(-1)!.toFixed(3)}`,
    );
  }
  console.log(
    `share: median on/off ${median(ratios).toFixed(3)} (${((median(ratios) - 1) * 100).toFixed(1)} %), pairs ${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)}; clock tick ${(1000 / CLK_TCK).toFixed(0)} ms`,
  );
}

async function falseAlarms(): Promise<void> {
  const rtsp = await startRtspServer({ file: assetPath('highway-cctv-320x240.mp4') });
  cleanup.add(() => rtsp.stop());
  const broker = await startMosquitto();
  cleanup.add(() => broker.stop());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-bench-drift-fa-'));
  cleanup.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(
    config,
    [
      'deviceId: fa',
      `dataDir: ${dir}`,
      'cameras:',
      `  - { id: highway, url: "${rtsp.url}", sampleFps: 4 }`,
      `mqtt: { url: "${broker.url}" }`,
      `monitor: { drift: { everyNthFrame: 1, referenceSeconds: 30, windowSeconds: ${WINDOW_SECONDS} } }`,
      '',
    ].join('\n'),
  );
  const windows: DriftPayload[] = [];
  let raised = 0;
  const watcher = await mqtt.connectAsync(broker.url, { clientId: 'fa-watcher' });
  cleanup.add(() => watcher.endAsync());
  watcher.on('message', (topic, payload) => {
    if (topic.endsWith('/drift')) windows.push(JSON.parse(payload.toString()) as DriftPayload);
    if (topic.endsWith('/events') && (JSON.parse(payload.toString()) as { kind: string }).kind === 'alert-raised') raised++;
  });
  await watcher.subscribeAsync(['cctv/fa/drift', 'cctv/fa/events'], { qos: 1 });
  const agent = spawnAgent(['run', '--config', config]);
  cleanup.add(() => killIfRunning(agent));
  await agent.waitForLog((line) => line.msg === 'cctv-agent running', 60_000);
  const started = Date.now();
  console.log(`false alarms: the unaltered clip looped over RTSP for ${MINUTES} min, ${WINDOW_SECONDS} s windows, 30 s reference, every frame measured`);
  while (Date.now() - started < MINUTES * 60_000) {
    await new Promise((resolve) => setTimeout(resolve, 60_000));
    const minutes = (Date.now() - started) / 60_000;
    console.log(`  ${minutes.toFixed(0)} min: ${windows.length} windows, ${windows.filter((w) => w.drifted).length} drifted, ${raised} alerts raised`);
  }
  const hours = (Date.now() - started) / 3_600_000;
  const featureCounts = new Map<string, number>();
  for (const w of windows) for (const f of w.features) if (f.drifted) featureCounts.set(f.feature, (featureCounts.get(f.feature) ?? 0) + 1);
  const maxKs = Math.max(...windows.flatMap((w) => w.features.filter((f) => f.test === 'ks' && !f.insufficient).map((f) => f.value)));
  const maxPsi = Math.max(...windows.flatMap((w) => w.features.filter((f) => f.test === 'psi' && !f.insufficient).map((f) => f.value)));
  console.log(
    `false alarms: ${windows.length} windows in ${(hours * 60).toFixed(1)} min; drifted windows ${windows.filter((w) => w.drifted).length} (${(windows.filter((w) => w.drifted).length / hours).toFixed(1)}/h); alerts raised ${raised} (${(raised / hours).toFixed(1)}/h)`,
  );
  console.log(
    `  largest KS distance ${maxKs.toFixed(3)} (threshold ${driftSchema.parse(undefined).ksStatistic}), largest PSI ${maxPsi.toFixed(3)} (threshold ${driftSchema.parse(undefined).psi})`,
  );
  console.log(`  features that shifted: ${[...featureCounts].map(([feature, n]) => `${feature} ${n}`).join(', ') || 'none'}`);
}

await runBenchmark(async () => {
  cleanup.installSignalHandlers();
  console.log(
    `cpu: ${describeCpuInt8()}; load ${os
      .loadavg()
      .map((load) => load.toFixed(1))
      .join(' ')}`,
  );
  if (PARTS.includes('micro')) await micro();
  if (PARTS.includes('share')) await share();
  if (PARTS.includes('false-alarms')) await falseAlarms();
}, cleanup);
