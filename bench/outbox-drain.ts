/**
 * Outbox drain benchmark: a backlog of result messages (the real schema, written by the real
 * ResultWriter) drained to a local mosquitto by the real OutboxDrain + MqttLink, while live
 * results keep coming at 5/s:
 *  1. messages/s acknowledged by the broker (PUBACK: the outbox rows deleted);
 *  2. messages/s received by a subscriber in another process (mosquitto_sub);
 *  3. latency of the live results, from enqueue (the frame's result) to the subscriber, before
 *     the backlog (normal operation), during it and after it;
 *  4. event-loop delay while draining (what the frame path would feel), and without a backlog
 *     just before (the same live results, the same machine load) for comparison.
 * Each window size (messages in flight) is measured BENCH_ROUNDS times, alternating.
 *
 * Run: node scripts/run-ts.mjs bench/outbox-drain.ts
 *   BENCH_MESSAGES (default 10000) backlog size, BENCH_ROUNDS (default 3),
 *   BENCH_IN_FLIGHT (default "100,250,500") window sizes, BENCH_BATCH (default 100, mqtt.publishBatch),
 *   BENCH_PROTOCOL (default "auto": MQTT 5 with mosquitto; "3.1.1" to compare),
 *   BENCH_NODELAY=1 runs mosquitto with set_tcp_nodelay true (its default is false: Nagle on)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { mqttSchema } from '../agent/config/schema.js';
import type { InferenceResult, Vehicle } from '../agent/inference/result.js';
import { MqttLink } from '../agent/mqtt/mqtt-link.js';
import { OutboxDrain } from '../agent/mqtt/outbox-drain.js';
import { deviceTopics } from '../agent/mqtt/topics.js';
import { openDatabase } from '../agent/storage/database.js';
import { SqliteOutbox } from '../agent/storage/outbox.js';
import { ResultWriter } from '../agent/storage/result-writer.js';
import { spawnManaged, type ManagedProcess } from '../test/support/managed-process.js';
import { startMosquitto, type MosquittoHandle } from '../test/support/mosquitto.js';
import { captureLogger } from '../test/support/capture-log.js';
import { BenchCleanup, runBenchmark } from './cleanup.js';

const MESSAGES = Number(process.env['BENCH_MESSAGES'] ?? 10_000);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const WINDOWS = (process.env['BENCH_IN_FLIGHT'] ?? '100,250,500').split(',').map(Number);
const BATCH = Number(process.env['BENCH_BATCH'] ?? 100);
const PROTOCOL = (process.env['BENCH_PROTOCOL'] ?? 'auto') as 'auto' | '5' | '3.1.1';
const NODELAY = process.env['BENCH_NODELAY'] === '1';
const LIVE_PER_SECOND = 5;
const AFTER_BACKLOG_MS = 3000;
const topics = deviceTopics('cctv', 'bench');

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
};
const median = (values: number[]): number => percentile(values, 0.5);
const f0 = (value: number): string => value.toFixed(0);
const f1 = (value: number): string => value.toFixed(1);

const cleanups = new BenchCleanup('stopping mosquitto');

/** A result as the highway clip gives them: a handful of vehicles. */
function result(cameraId: string, seq: number, capturedAt: number): InferenceResult {
  const types = ['car', 'car', 'car', 'truck', 'bus', 'van'] as const;
  const vehicles: Vehicle[] = Array.from({ length: 3 + (seq % 5) }, (_, i) => ({
    type: types[(seq + i) % types.length]!,
    label: types[(seq + i) % types.length]!,
    score: 0.5 + ((seq * 7 + i) % 50) / 100,
    box: [0.1 + i * 0.1, 0.3 + (seq % 10) / 100, 0.0812, 0.0733],
  }));
  return { cameraId, seq, capturedAt, model: { id: 'yolox-nano-int8', version: '1.0.0' }, task: 'detection', vehicles, inferenceMs: 11.4 };
}

/** mosquitto_sub in its own process: receipt times (%U) do not depend on our event loop. */
class Subscriber {
  backlog = 0;
  lastBacklogAt = 0;
  readonly live = new Map<number, number>();
  private buffered = '';
  private readonly process: ManagedProcess;

  constructor(broker: MosquittoHandle) {
    this.process = spawnManaged({
      name: 'mosquitto_sub',
      command: 'mosquitto_sub',
      args: ['-h', broker.host, '-p', String(broker.port), '-q', '1', '-t', topics.results, '-t', `${topics.base}/probe`, '-F', '%U %p'],
      onStdout: (text) => this.read(text),
    });
    cleanups.add(() => this.process.stop(2000));
  }

  private read(text: string): void {
    this.buffered += text;
    const lines = this.buffered.split('\n');
    this.buffered = lines.pop()!;
    for (const line of lines) {
      const space = line.indexOf(' ');
      const at = Number(line.slice(0, space)) * 1000;
      const payload = line.slice(space + 1);
      if (payload === 'probe') this.live.set(-1, at);
      else if (payload.includes('"cameraId":"live"')) this.live.set((JSON.parse(payload) as { seq: number }).seq, at);
      else {
        this.backlog++;
        this.lastBacklogAt = at;
      }
    }
  }

  async ready(broker: MosquittoHandle): Promise<void> {
    // Subscribed once a probe comes back.
    const probe = spawnManaged({
      name: 'mosquitto_pub',
      command: 'mosquitto_pub',
      args: ['-h', broker.host, '-p', String(broker.port), '-t', `${topics.base}/probe`, '-m', 'probe', '-q', '1'],
    });
    for (let i = 0; !this.live.has(-1); i++) {
      if (i === 50) throw new Error('mosquitto_sub did not receive the probe');
      await sleep(100);
      if (i % 10 === 9)
        spawnManaged({
          name: 'mosquitto_pub',
          command: 'mosquitto_pub',
          args: ['-h', broker.host, '-p', String(broker.port), '-t', `${topics.base}/probe`, '-m', 'probe', '-q', '1'],
        });
    }
    await probe.exited;
    this.live.delete(-1);
  }

  async stop(): Promise<void> {
    await this.process.stop(2000);
  }
}

interface Round {
  window: number;
  ackedPerSecond: number;
  receivedPerSecond: number;
  liveBefore: number[];
  liveDuring: number[];
  liveAfter: number[];
  loopP99: number;
  loopMax: number;
  idleP99: number;
  payloadBytes: number;
}

async function round(broker: MosquittoHandle, window: number): Promise<Round> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-bench-drain-'));
  const { log } = captureLogger();
  const db = openDatabase(path.join(dir, 'bench.db'));
  let drain: OutboxDrain | undefined;
  const writer = new ResultWriter({
    db: () => db,
    deviceId: 'bench',
    resultsTopic: topics.results,
    expiryMs: 7 * 86_400_000,
    flushIntervalMs: 250,
    maxBatchRows: 500,
    log,
    onCommitted: () => drain?.wake(),
  });
  await writer.start();
  const outbox = new SqliteOutbox(db);
  const subscriber = new Subscriber(broker);
  await subscriber.ready(broker);
  const link = new MqttLink({
    url: () => broker.url,
    config: mqttSchema.parse({ url: broker.url, protocol: PROTOCOL }),
    clientId: 'bench-drain',
    availabilityTopic: topics.availability,
    log,
  });
  await link.start(new AbortController().signal);
  drain = new OutboxDrain({ outbox: () => outbox, publisher: link, batchSize: BATCH, maxInFlight: window, log });
  await drain.start();

  // Live results all along, as a camera at 5 fps would give them.
  const enqueuedAt = new Map<number, number>();
  let liveSeq = 0;
  const live = setInterval(() => {
    enqueuedAt.set(liveSeq, Date.now());
    writer.enqueue(result('live', liveSeq++, Date.now()));
  }, 1000 / LIVE_PER_SECOND);
  // First without a backlog: the event loop's delay and the live latency of normal operation.
  const idle = monitorEventLoopDelay({ resolution: 10 });
  idle.enable();
  await sleep(2000);
  idle.disable();

  // Then a backlog, as a broker coming back after an outage finds it (written in one go).
  const filled = Date.now();
  for (let seq = 0; seq < MESSAGES; seq++) writer.enqueue(result('backlog', seq, filled - 60_000 + seq));
  writer.flush();
  const payloadBytes = (db.prepare('SELECT avg(length(payload)) AS n FROM outbox').get() as { n: number }).n;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const t0 = performance.now();
  const wall0 = Date.now();
  let ackedAt = 0;
  const publishedBefore = drain.health().detail!['published'] as number;
  while (subscriber.backlog < MESSAGES) {
    if (ackedAt === 0 && (drain.health().detail!['published'] as number) - publishedBefore >= MESSAGES) ackedAt = performance.now();
    if (performance.now() - t0 > 120_000) throw new Error(`drain stalled: ${subscriber.backlog} of ${MESSAGES} received`);
    await sleep(20);
  }
  if (ackedAt === 0) ackedAt = performance.now();
  loop.disable();
  const backlogDoneAt = subscriber.lastBacklogAt;
  await sleep(AFTER_BACKLOG_MS);
  clearInterval(live);
  await sleep(1000);

  const liveBefore: number[] = [];
  const liveDuring: number[] = [];
  const liveAfter: number[] = [];
  for (const [seq, at] of enqueuedAt) {
    const receivedAt = subscriber.live.get(seq);
    if (receivedAt === undefined) continue;
    (at < wall0 ? liveBefore : at <= backlogDoneAt ? liveDuring : liveAfter).push(receivedAt - at);
  }
  await drain.stop();
  await link.stop();
  await writer.stop();
  await subscriber.stop();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    window,
    ackedPerSecond: (MESSAGES * 1000) / (ackedAt - t0),
    receivedPerSecond: (MESSAGES * 1000) / (backlogDoneAt - wall0),
    liveBefore,
    liveDuring,
    liveAfter,
    loopP99: loop.percentile(99) / 1e6,
    loopMax: loop.max / 1e6,
    idleP99: idle.percentile(99) / 1e6,
    payloadBytes,
  };
}

async function main(): Promise<void> {
  cleanups.installSignalHandlers();
  const broker = await startMosquitto(NODELAY ? { extraConfig: ['set_tcp_nodelay true'] } : {});
  cleanups.add(() => broker.stop());
  console.log(
    `outbox drain bench: ${os.cpus().length} cores (${os.cpus()[0]?.model}), load ${os.loadavg().map(f1).join(' ')}; mosquitto on 127.0.0.1 (set_tcp_nodelay ${NODELAY}), protocol ${PROTOCOL}`,
  );
  console.log(`backlog ${MESSAGES} results, publishBatch ${BATCH}, live results at ${LIVE_PER_SECOND}/s, ${ROUNDS} rounds per window`);
  const rounds: Round[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    for (const window of WINDOWS) {
      const measured = await round(broker, window);
      rounds.push(measured);
      console.log(
        `  round ${i + 1}, in flight ${window}: ${f0(measured.ackedPerSecond)} msg/s acked, ${f0(measured.receivedPerSecond)} msg/s received, live p50 ${f0(median(measured.liveDuring))} ms during (n=${measured.liveDuring.length}), event loop p99 ${f1(measured.loopP99)} ms (${f1(measured.idleP99)} without the drain)`,
      );
    }
  }
  console.log(`\naverage payload ${f0(rounds[0]!.payloadBytes)} bytes`);
  console.log(
    '| in flight | acked msg/s (per round) | received msg/s (per round) | median received msg/s | live latency without backlog p50 / p95 ms | during backlog p50 / p95 / max ms | after backlog p50 / p95 ms | event loop delay p99 / max ms while draining | p99 without backlog |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const window of WINDOWS) {
    const mine = rounds.filter((r) => r.window === window);
    const before = mine.flatMap((r) => r.liveBefore);
    const during = mine.flatMap((r) => r.liveDuring);
    const after = mine.flatMap((r) => r.liveAfter);
    console.log(
      `| ${window} | ${mine.map((r) => f0(r.ackedPerSecond)).join(', ')} | ${mine.map((r) => f0(r.receivedPerSecond)).join(', ')} | **${f0(median(mine.map((r) => r.receivedPerSecond)))}** | ${f0(percentile(before, 0.5))} / ${f0(percentile(before, 0.95))} | ${f0(percentile(during, 0.5))} / ${f0(percentile(during, 0.95))} / ${f0(Math.max(...during))} (n=${during.length}) | ${f0(percentile(after, 0.5))} / ${f0(percentile(after, 0.95))} (n=${after.length}) | ${f1(median(mine.map((r) => r.loopP99)))} / ${f1(Math.max(...mine.map((r) => r.loopMax)))} | ${f1(median(mine.map((r) => r.idleP99)))} |`,
    );
  }
  console.log(`\nload at the end: ${os.loadavg().map(f1).join(' ')}`);
}

await runBenchmark(main, cleanups);
