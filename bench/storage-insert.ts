/**
 * Storage benchmarks, printed from one run on this machine, with the real schema and the real
 * ResultWriter (a result row plus its outbox row per result, one transaction per flush):
 *  1. sustained insert rate: results enqueued as fast as possible, flushed in batches of
 *     storage.maxBatchRows, for BENCH_SECONDS; rows/s;
 *  2. what a flush costs the event loop at a camera-like rate: 4 cameras x 25 fps, the default
 *     250 ms flush (25 rows per transaction): flush time p50/p99/max and the event loop's delay
 *     (monitorEventLoopDelay) p99/max over the run;
 *  3. one retention batch (storage.retention.pruneBatchRows rows deleted): its time.
 *
 * Run: node scripts/run-ts.mjs bench/storage-insert.ts   (BENCH_SECONDS, default 8)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { configSchema } from '../agent/config/schema.js';
import type { InferenceResult } from '../agent/inference/result.js';
import { openDatabase } from '../agent/storage/database.js';
import { ResultWriter } from '../agent/storage/result-writer.js';
import { captureLogger } from '../test/support/capture-log.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 8);
const defaults = configSchema.parse({ cameras: [{ id: 'c', url: '/dev/null' }] }).storage;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
};

/** A typical highway detection result: four vehicles. */
function resultFor(cameraId: string, seq: number): InferenceResult {
  return {
    cameraId,
    seq,
    capturedAt: Date.now(),
    model: { id: 'yolox-nano-int8', version: '1.0.0' },
    task: 'detection',
    vehicles: [
      { type: 'car', label: 'car', score: 0.81, box: [0.6641, 0.471, 0.1122, 0.13] },
      { type: 'car', label: 'car', score: 0.74, box: [0.2141, 0.371, 0.0822, 0.09] },
      { type: 'truck', label: 'truck', score: 0.66, box: [0.4641, 0.271, 0.1522, 0.2] },
      { type: 'bus', label: 'bus', score: 0.52, box: [0.4325, 0.1322, 0.0675, 0.1009] },
    ],
    inferenceMs: 9.8,
  };
}

function freshDatabase(): { file: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-bench-storage-'));
  return { file: path.join(dir, 'agent.db'), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

async function sustainedInsertRate(): Promise<{ rowsPerSecond: number; rows: number; databaseBytes: number }> {
  const { file, cleanup } = freshDatabase();
  const db = openDatabase(file);
  const writer = new ResultWriter({
    db: () => db,
    deviceId: 'bench',
    resultsTopic: 'cctv/bench/results',
    expiryMs: 604_800_000,
    flushIntervalMs: 60_000,
    maxBatchRows: defaults.maxBatchRows,
    log: captureLogger().log,
  });
  await writer.start();
  let seq = 0;
  const started = performance.now();
  while (performance.now() - started < SECONDS * 1000) {
    for (let i = 0; i < 1000; i++) writer.enqueue(resultFor('a', seq++));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await writer.stop();
  const seconds = (performance.now() - started) / 1000;
  const rows = (db.prepare('SELECT count(*) AS n FROM results').get() as { n: number }).n;
  const databaseBytes = fs.statSync(file).size + (fs.existsSync(`${file}-wal`) ? fs.statSync(`${file}-wal`).size : 0);
  db.close();
  cleanup();
  return { rowsPerSecond: rows / seconds, rows, databaseBytes };
}

async function cameraRate(): Promise<{ flushMs: number[]; loopP99Ms: number; loopMaxMs: number; pruneMs: number; rows: number }> {
  const { file, cleanup } = freshDatabase();
  const db = openDatabase(file);
  const flushMs: number[] = [];
  const writer = new ResultWriter({
    db: () => db,
    deviceId: 'bench',
    resultsTopic: 'cctv/bench/results',
    expiryMs: 604_800_000,
    flushIntervalMs: 60_000,
    maxBatchRows: 10_000,
    log: captureLogger().log,
  });
  await writer.start();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const cameras = ['a', 'b', 'c', 'd'];
  let seq = 0;
  const frames = setInterval(() => {
    for (const camera of cameras) writer.enqueue(resultFor(camera, seq));
    seq++;
  }, 40);
  const flushes = setInterval(() => {
    const started = performance.now();
    writer.flush();
    flushMs.push(performance.now() - started);
  }, defaults.flushIntervalMs);
  await sleep(SECONDS * 1000);
  clearInterval(frames);
  clearInterval(flushes);
  loop.disable();
  await writer.stop();
  const rows = (db.prepare('SELECT count(*) AS n FROM results').get() as { n: number }).n;
  const started = performance.now();
  db.prepare('DELETE FROM results WHERE id IN (SELECT id FROM results ORDER BY id LIMIT ?)').run(defaults.retention.pruneBatchRows);
  const pruneMs = performance.now() - started;
  db.close();
  cleanup();
  return { flushMs, loopP99Ms: loop.percentile(99) / 1e6, loopMaxMs: loop.max / 1e6, pruneMs, rows };
}

const insert = await sustainedInsertRate();
console.log(
  `1. sustained insert rate (result + outbox row, batches of ${defaults.maxBatchRows}): ${Math.round(insert.rowsPerSecond)} results/s over ${SECONDS} s (${insert.rows} rows, ${(insert.databaseBytes / insert.rows).toFixed(0)} bytes per result on disk)`,
);
const camera = await cameraRate();
console.log(
  `2. 4 cameras x 25 fps, flush every ${defaults.flushIntervalMs} ms (${camera.rows} results): flush p50 ${percentile(camera.flushMs, 0.5).toFixed(2)} ms, ` +
    `p99 ${percentile(camera.flushMs, 0.99).toFixed(2)} ms, max ${Math.max(...camera.flushMs).toFixed(2)} ms; event loop delay p99 ${camera.loopP99Ms.toFixed(1)} ms, max ${camera.loopMaxMs.toFixed(1)} ms`,
);
console.log(`3. one retention batch (${defaults.retention.pruneBatchRows} rows deleted): ${camera.pruneMs.toFixed(1)} ms`);
