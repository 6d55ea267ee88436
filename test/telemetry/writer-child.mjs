// A stand-in for the daemon's writers, as a separate process: results and telemetry rows in
// WAL, as fast as one core allows, with a TRUNCATE checkpoint every 250 ms (the checkpoint a
// long-lived reader would block). Prints one JSON summary line on exit.
// usage: node writer-child.mjs <database> <durationMs>   (WRITER_TRACE=1: each checkpoint's time on stderr)
import crypto from 'node:crypto';
import Database from 'better-sqlite3';

const [file, durationText] = process.argv.slice(2);
const db = new Database(file, { fileMustExist: true, timeout: 2000 });
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
const insertResult = db.prepare(
  `INSERT INTO results (message_id, camera_id, seq, captured_at, model_id, model_version, task, vehicle_count, vehicles, top, inference_ms)
   VALUES (?, ?, ?, ?, 'yolox-nano-int8', '1.0.0', 'detection', ?, ?, NULL, 9.5)`,
);
const insertTelemetry = db.prepare(
  `INSERT INTO telemetry (message_id, at, interval_s, cpu_percent, temperature_c, memory_available_bytes, disk_free_bytes, rss_bytes,
     fps, inference_p50_ms, inference_p95_ms, outbox_depth, database_bytes, sample) VALUES (?, ?, 30, ?, NULL, 1, 1, 1, ?, 10, 14, 0, 1, ?)`,
);
const types = ['car', 'truck', 'bus', 'van'];
let seq = 0;
const batch = db.transaction(() => {
  const now = Date.now();
  for (let index = 0; index < 20; index++) {
    const vehicles = types.slice(0, seq % 4).map((type) => ({ type, label: type, score: 0.9, box: [0.1, 0.1, 0.1, 0.1] }));
    insertResult.run(crypto.randomUUID(), seq % 2 ? 'north' : 'south', seq++, now, vehicles.length, JSON.stringify(vehicles));
  }
  const id = crypto.randomUUID();
  insertTelemetry.run(id, now, seq % 100, 5, JSON.stringify({ id, at: new Date(now).toISOString() }));
});

const summary = { transactions: 0, results: 0, samples: 0, failures: [], checkpoints: 0, checkpointsBusy: 0, maxCommitMs: 0, maxCheckpointMs: 0 };
const end = Date.now() + Number(durationText);
let nextCheckpoint = Date.now() + 250;
while (Date.now() < end) {
  const started = performance.now();
  try {
    batch();
    summary.transactions += 1;
    summary.results += 20;
    summary.samples += 1;
  } catch (error) {
    summary.failures.push(error.code ?? String(error));
  }
  summary.maxCommitMs = Math.max(summary.maxCommitMs, performance.now() - started);
  if (Date.now() >= nextCheckpoint) {
    nextCheckpoint = Date.now() + 250;
    const checkpointStarted = performance.now();
    try {
      const [result] = db.pragma('wal_checkpoint(TRUNCATE)');
      summary.checkpoints += 1;
      if (result.busy !== 0) summary.checkpointsBusy += 1;
    } catch (error) {
      summary.failures.push(error.code ?? String(error));
    }
    summary.maxCheckpointMs = Math.max(summary.maxCheckpointMs, performance.now() - checkpointStarted);
    if (process.env.WRITER_TRACE) process.stderr.write(`checkpoint ${(performance.now() - checkpointStarted).toFixed(1)} ms\n`);
  }
}
db.close();
process.stdout.write(`${JSON.stringify(summary)}\n`);
