/**
 * What evidence sampling and monitoring cost the frame path. The agent's pipeline runs once
 * (looping clip -> ffmpeg -> scheduler -> model -> results in SQLite) and windows with evidence
 * ON (every result offered) and OFF alternate in it, so both see the same machine. Per window:
 * the main thread's CPU time per frame (/proc schedstat, nanoseconds) and the whole process's
 * (sharp encodes in libuv's pool). Printed: the ON/OFF ratio of each pair, their median and
 * spread, at the default random share and at a high one.
 * The monitor does nothing per frame: it evaluates its windows every publishIntervalSeconds (and
 * on feedback). Its cost is timed directly (one evaluation of every camera over 300 labels) and
 * spread over the frames of one default period; then direct per-call timings of offer() on
 * frames the draw passes over and on sampled frames. Nothing is asserted (bench/README.md).
 *
 * Run: node scripts/run-ts.mjs bench/evidence.ts
 *   BENCH_SECONDS (default 10) per window, BENCH_PAIRS (default 8) ON/OFF pairs per share,
 *   BENCH_CAMERAS (default 2) at BENCH_FPS (default 5) each, BENCH_HIGH_SHARE (default 0.05)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { evidenceSchema, monitorSchema } from '../agent/config/monitor-schema.js';
import { configSchema } from '../agent/config/schema.js';
import { EvidenceService } from '../agent/evidence/evidence-service.js';
import { FrameScheduler } from '../agent/inference/frame-scheduler.js';
import { InferenceService } from '../agent/inference/inference-service.js';
import { geometryOf } from '../agent/inference/loaded-model.js';
import { resolveModel } from '../agent/inference/model-files.js';
import { type Picture, pictureOfInput } from '../agent/inference/picture.js';
import type { InferenceResult } from '../agent/inference/result.js';
import { IngestService } from '../agent/ingest/ingest-service.js';
import type { FeedbackItem } from '../agent/monitor/feedback-schema.js';
import { MonitorService } from '../agent/monitor/monitor-service.js';
import { deviceTopics, fleetTopics } from '../agent/mqtt/topics.js';
import { manifestsDir } from '../agent/paths.js';
import { openDatabase } from '../agent/storage/database.js';
import { ResultWriter } from '../agent/storage/result-writer.js';
import { assetPath } from '../test/support/assets.js';
import { captureLogger } from '../test/support/capture-log.js';
import { BenchCleanup, runBenchmark } from './cleanup.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10);
const PAIRS = Number(process.env['BENCH_PAIRS'] ?? 8);
const CAMERAS = Number(process.env['BENCH_CAMERAS'] ?? 2);
const FPS = Number(process.env['BENCH_FPS'] ?? 5);
const HIGH_SHARE = Number(process.env['BENCH_HIGH_SHARE'] ?? 0.05);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/**
 * Main-thread CPU ns. The kernel brings a running thread's figure up to date only at its ticks, so
 * a reading is late by up to one tick (1-10 ms by the kernel's HZ): a few percent of one window's
 * ~200 ms, one reason pairs scatter.
 */
const mainThreadNs = (): number => Number(fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);
const processCpuNs = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) * 1000;
};

interface Window {
  frames: number;
  mainNsPerFrame: number;
  processNsPerFrame: number;
}

const cleanups = new BenchCleanup('stopping ffmpeg');
cleanups.installSignalHandlers();

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-bench-evidence-'));
  cleanups.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  const { log } = captureLogger();
  const model = resolveModel(path.join(manifestsDir(), 'yolox-nano-int8.json'), path.dirname(assetPath('yolox-nano.onnx')));
  const clip = assetPath('highway-cctv-320x240.mp4');
  const config = configSchema.parse({
    cameras: Array.from({ length: CAMERAS }, (_, i) => ({ id: `cam${i}`, url: clip, sampleFps: FPS, realtime: true, loop: true })),
  });
  const db = openDatabase(path.join(dir, 'agent.db'));
  const writer = new ResultWriter({
    db: () => db,
    deviceId: 'bench',
    resultsTopic: 'bench/results',
    flushIntervalMs: config.storage.flushIntervalMs,
    maxBatchRows: config.storage.maxBatchRows,
    log,
  });
  const evidenceAt = (randomShare: number): EvidenceService =>
    new EvidenceService({
      db: () => db,
      dir: path.join(dir, 'evidence'),
      config: evidenceSchema.parse({ randomShare }),
      cropOf: () => null,
      recordEvent: () => undefined,
      log,
    });
  const shares = [evidenceSchema.parse({}).randomShare, HIGH_SHARE];
  const services = shares.map(evidenceAt);
  const monitorConfig = monitorSchema.parse({});
  const monitor = new MonitorService({
    db: () => db,
    deviceId: 'bench',
    config: monitorConfig,
    topics: deviceTopics('bench', 'bench'),
    fleet: fleetTopics('bench'),
    publishing: true,
    recordEvent: () => undefined,
    activeKeys: () => config.cameras.map((camera) => ({ cameraId: camera.id, modelId: model.manifest.id, modelVersion: model.manifest.version })),
    onDisputed: (ids) => active?.markDisputed(ids),
    log,
  });

  let active: EvidenceService | undefined;
  let frames = 0;
  const inference = new InferenceService(model, config.inference, log);
  let scheduler: FrameScheduler | undefined;
  const ingest = new IngestService({ config, geometry: geometryOf(model.manifest), log, onSlotsChanged: () => scheduler?.refreshSlots() });
  scheduler = new FrameScheduler({
    slots: () => ingest.slots,
    models: inference,
    onResult: (result: InferenceResult, picture: () => Picture) => {
      frames++;
      const id = writer.enqueue(result);
      active?.offer(result, picture, id);
    },
    log,
  });
  const abort = new AbortController();
  const stopCameras = async (): Promise<void> => {
    abort.abort();
    await ingest.stop();
  };
  cleanups.add(stopCameras);
  await writer.start();
  for (const service of services) await service.start();
  await inference.start();
  await scheduler.start();
  await ingest.start(abort.signal);
  console.log(
    `evidence bench: ${os.cpus().length} cores (${os.cpus()[0]?.model}), load ${os
      .loadavg()
      .map((load) => load.toFixed(1))
      .join(' ')}, ${CAMERAS} cameras x ${FPS} fps, ${SECONDS} s windows, ${PAIRS} ON/OFF pairs per share`,
  );
  await sleep(8000); // connections, first frames, warm caches, results to label
  writer.flush();

  // Labels for the monitor to compute over: 300 verdicts on stored detections, a third false positives.
  const items: FeedbackItem[] = [];
  for (const row of db.prepare('SELECT message_id, vehicle_count FROM results WHERE vehicle_count > 0 ORDER BY id').all() as Array<{
    message_id: string;
    vehicle_count: number;
  }>) {
    for (let detection = 0; detection < row.vehicle_count && items.length < 300; detection++) {
      items.push({ id: `bench-${items.length}`, resultId: row.message_id, detection, verdict: items.length % 3 === 0 ? 'false-positive' : 'correct' });
    }
  }
  await monitor.start();
  if (items.length > 0) monitor.acceptFeedback(items, 'bench', false);
  const keys = config.cameras.map((camera) => ({ cameraId: camera.id, modelId: model.manifest.id, modelVersion: model.manifest.version }));
  const evaluations: number[] = [];
  // Wall time per evaluation (schedstat is only brought up to date at the scheduler's ticks, too
  // coarse for one call): the median of 30 on a shared machine.
  for (let i = 0; i < 30; i++) {
    const start = process.hrtime.bigint();
    for (const key of keys) monitor.evaluateKey(key);
    evaluations.push(Number(process.hrtime.bigint() - start));
    await sleep(50);
  }
  await monitor.stop();
  const evaluationNs = median(evaluations);

  const offMainNs: number[] = [];
  const measure = async (on: boolean, evidence: EvidenceService): Promise<Window> => {
    if (on) active = evidence;
    const framesBefore = frames;
    const mainBefore = mainThreadNs();
    const processBefore = processCpuNs();
    await sleep(SECONDS * 1000);
    const counted = frames - framesBefore;
    const window = {
      frames: counted,
      mainNsPerFrame: (mainThreadNs() - mainBefore) / counted,
      processNsPerFrame: (processCpuNs() - processBefore) / counted,
    };
    if (on) {
      active = undefined;
      await evidence.idle();
    } else {
      offMainNs.push(window.mainNsPerFrame);
    }
    return window;
  };

  const summary: string[] = [];
  for (const [index, share] of shares.entries()) {
    const evidence = services[index]!;
    const before = evidence.health().detail as { encoded: number; droppedBusy: number };
    console.log(`\nrandomShare ${share}: CPU per frame (ms), ON = evidence offered every result, OFF = not; order alternates`);
    console.log('| pair | OFF main | ON main | ON/OFF main | OFF process | ON process | ON/OFF process | frames OFF/ON |\n|---|---|---|---|---|---|---|---|');
    const mainRatios: number[] = [];
    const processRatios: number[] = [];
    for (let pair = 0; pair < PAIRS; pair++) {
      // Alternating which comes first cancels a slow drift of the machine's load.
      const first = pair % 2 === 0;
      const a = await measure(first, evidence);
      const b = await measure(!first, evidence);
      const [on, off] = first ? [a, b] : [b, a];
      mainRatios.push(on.mainNsPerFrame / off.mainNsPerFrame);
      processRatios.push(on.processNsPerFrame / off.processNsPerFrame);
      const ms = (ns: number): string => (ns / 1e6).toFixed(3);
      console.log(
        `| ${pair + 1} | ${ms(off.mainNsPerFrame)} | ${ms(on.mainNsPerFrame)} | ${mainRatios.at(-1)!.toFixed(3)} | ${ms(off.processNsPerFrame)} | ${ms(on.processNsPerFrame)} | ${processRatios.at(-1)!.toFixed(3)} | ${off.frames}/${on.frames} |`,
      );
    }
    const after = evidence.health().detail as { encoded: number; droppedBusy: number };
    const line = `randomShare ${share}: main thread ON/OFF median ${median(mainRatios).toFixed(3)} (spread ${Math.min(...mainRatios).toFixed(3)}-${Math.max(...mainRatios).toFixed(3)}), whole process median ${median(processRatios).toFixed(3)} (spread ${Math.min(...processRatios).toFixed(3)}-${Math.max(...processRatios).toFixed(3)}); samples written ${after.encoded - before.encoded}, dropped busy ${after.droppedBusy - before.droppedBusy}`;
    console.log(line);
    summary.push(line);
  }

  const framesPerPeriod = CAMERAS * FPS * monitorConfig.publishIntervalSeconds;
  const monitorShare = evaluationNs / framesPerPeriod / median(offMainNs);
  const monitorLine = `monitor: one evaluation of ${CAMERAS} cameras over ${items.length} labels takes ${(evaluationNs / 1e6).toFixed(2)} ms of main thread (median of 30); every ${monitorConfig.publishIntervalSeconds} s at ${CAMERAS * FPS} frames/s that is ${(evaluationNs / framesPerPeriod / 1e3).toFixed(2)} µs per frame, ${(monitorShare * 100).toFixed(3)} % of the OFF main-thread time per frame`;
  console.log(`\n${monitorLine}`);
  summary.push(monitorLine);

  await stopCameras();
  cleanups.delete(stopCameras);
  await scheduler.stop();
  await inference.stop();
  for (const service of services) await service.stop();
  await writer.stop();

  // Direct per-call timings, free of the pipeline's noise: offer() on frames the draw passes over
  // (the per-frame cost every frame pays) and on sampled frames with the encoder free (the copy of
  // the picture out of a 416x416 input tensor, the JSON, starting the encode; the rest is async).
  const { width, height } = model.manifest.input;
  const input = new Float32Array(3 * width * height).map((_, i) => (i * 7) % 255);
  const picture = (): Picture => pictureOfInput(input, model.manifest.input, geometryOf(model.manifest), 320, 240, undefined);
  const result = (seq: number): InferenceResult => ({
    cameraId: 'cam0',
    seq,
    capturedAt: Date.now(),
    model: { id: model.manifest.id, version: model.manifest.version },
    task: 'detection',
    vehicles: Array.from({ length: 8 }, () => ({
      type: 'car' as const,
      label: 'car',
      score: 0.8,
      box: [0.1, 0.1, 0.2, 0.2] as [number, number, number, number],
    })),
    inferenceMs: 20,
  });
  // Wall time per call (schedstat is only brought up to date at the scheduler's ticks, too coarse
  // for one call). On a shared machine a call may also wait for a core: the median is the figure,
  // the 99th percentile shows the preemptions.
  const timed = async (service: EvidenceService, calls: number, settle: boolean): Promise<number[]> => {
    const times: number[] = [];
    for (let i = 0; i < calls; i++) {
      const start = process.hrtime.bigint();
      service.offer(result(i), picture, `r${i}`);
      times.push(Number(process.hrtime.bigint() - start) / 1000);
      if (settle) await service.idle();
    }
    return times;
  };
  const never = evidenceAt(0);
  const always = evidenceAt(1);
  await never.start();
  await always.start();
  await timed(never, 10_000, false); // warm
  const unsampled = await timed(never, 100_000, false);
  await timed(always, 20, true);
  const sampled = await timed(always, 200, true);
  const copies: number[] = [];
  for (let i = 0; i < 200; i++) {
    const start = process.hrtime.bigint();
    picture();
    copies.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  await never.stop();
  await always.stop();
  db.close();
  const p = (values: number[], q: number): string => [...values].sort((x, y) => x - y)[Math.floor(q * (values.length - 1))]!.toFixed(2);
  const direct = `offer() per call (µs, wall): unsampled median ${p(unsampled, 0.5)}, p99 ${p(unsampled, 0.99)}; sampled (picture copy + start of encode) median ${p(sampled, 0.5)}, p99 ${p(sampled, 0.99)}, of which the picture copy (pictureOfInput, 416x312) median ${p(copies, 0.5)}`;
  console.log(`\n${direct}`);
  console.log('\nsummary');
  for (const line of [...summary, direct]) console.log(`  ${line}`);
}

await runBenchmark(main, cleanups);
process.exit(process.exitCode ?? 0);
