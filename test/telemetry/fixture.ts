import crypto from 'node:crypto';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { CliIo } from '../../agent/cli/io.js';
import { openDatabase, type Db } from '../../agent/storage/database.js';
import type { TelemetrySample } from '../../agent/telemetry/telemetry-sample.js';

/** A fixed clock for exact ranges: 2026-11-27T12:00:00Z. */
export const T0 = Date.UTC(2026, 10, 27, 12, 0, 0);
export const MINUTE = 60_000;

/** A real agent database (migrated, WAL) at <dir>/agent.db, as the daemon creates it. */
export function createAgentDatabase(dir: string): { db: Db; file: string } {
  const file = path.join(dir, 'agent.db');
  return { db: openDatabase(file), file };
}

export interface SampleFigures {
  cpu?: number | null;
  temperature?: number | null;
  fps?: number;
  p50?: number;
  p95?: number;
  outbox?: number;
  rss?: number;
  databaseBytes?: number;
}

export function makeSample(at: number, figures: SampleFigures = {}): TelemetrySample {
  return {
    id: crypto.randomUUID(),
    deviceId: 'edge-test',
    at: new Date(at).toISOString(),
    intervalSeconds: 30,
    model: { id: 'yolox-nano-int8', version: '1.0.0' },
    system: {
      cpuLoadPercent: figures.cpu === undefined ? 40 : figures.cpu,
      cpuPerCorePercent: [40, 40],
      temperatureC: figures.temperature === undefined ? 50 : figures.temperature,
      memoryTotalBytes: 4 * 1024 ** 3,
      memoryAvailableBytes: 2 * 1024 ** 3,
      diskFreeBytes: 20 * 1024 ** 3,
      diskTotalBytes: 32 * 1024 ** 3,
      uptimeSeconds: 1000,
      agentUptimeSeconds: 500,
      agentRssBytes: figures.rss ?? 200 * 1024 ** 2,
    },
    pipeline: {
      fps: figures.fps ?? 5,
      results: 150,
      inferenceP50Ms: figures.p50 ?? 10,
      inferenceP95Ms: figures.p95 ?? 14,
      vehicles: { car: 10 },
      cameras: [{ id: 'north', state: 'streaming', framesIn: 1000, framesOut: 990, dropped: 10, reconnects: 1, decodeFps: 5, lastError: null }],
      pendingWrites: 0,
      outboxDepth: figures.outbox ?? 0,
      outboxDropped: 0,
      databaseBytes: figures.databaseBytes ?? 5 * 1024 ** 2,
      storageDegraded: false,
    },
  };
}

/** Inserts a telemetry row the way the daemon's telemetry writer does: columns plus the JSON. */
export function insertSample(db: Db, sample: TelemetrySample): void {
  db.prepare(
    `INSERT INTO telemetry (message_id, at, interval_s, cpu_percent, temperature_c, memory_available_bytes, disk_free_bytes, rss_bytes,
       fps, inference_p50_ms, inference_p95_ms, outbox_depth, database_bytes, sample) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    sample.id,
    Date.parse(sample.at),
    sample.intervalSeconds,
    sample.system.cpuLoadPercent,
    sample.system.temperatureC,
    sample.system.memoryAvailableBytes,
    sample.system.diskFreeBytes,
    sample.system.agentRssBytes,
    sample.pipeline.fps,
    sample.pipeline.inferenceP50Ms,
    sample.pipeline.inferenceP95Ms,
    sample.pipeline.outboxDepth,
    sample.pipeline.databaseBytes,
    JSON.stringify(sample),
  );
}

let seq = 0;

/** A results row as ResultWriter writes it (vehicles as JSON.stringify of Vehicle[]). */
export function insertResult(db: Db, at: number, types: string[], cameraId = 'north'): void {
  const vehicles = types.map((type) => ({ type, label: type, score: 0.8, box: [0.1, 0.2, 0.05, 0.04] }));
  db.prepare(
    `INSERT INTO results (message_id, camera_id, seq, captured_at, model_id, model_version, task, vehicle_count, vehicles, top, inference_ms)
     VALUES (?, ?, ?, ?, 'yolox-nano-int8', '1.0.0', 'detection', ?, ?, NULL, 9.5)`,
  ).run(crypto.randomUUID(), cameraId, seq++, at, vehicles.length, JSON.stringify(vehicles));
}

export function insertEvent(db: Db, at: number, kind: string, subject: string | null, code: string | null, detail: string | null): void {
  db.prepare('INSERT INTO events (at, kind, subject, code, detail) VALUES (?, ?, ?, ?, ?)').run(at, kind, subject, code, detail);
}

export interface CapturedIo extends CliIo {
  stdout: () => string;
  stderr: () => string;
}

/** In-process CLI streams, read back as text. */
export function captureIo(env: NodeJS.ProcessEnv = {}): CapturedIo {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  err.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return { out, err, env, stdout: () => stdout, stderr: () => stderr };
}
