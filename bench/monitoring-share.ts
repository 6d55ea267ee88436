/**
 * Issues #15 and #17: what the whole monitoring (quality from feedback, alerts and retrain
 * requests, drift statistics and the label-free estimate, the self-test, evidence samples) adds
 * to the agent's main-thread time per frame.
 *
 * Real agents side by side, not one after the other: in each round AGENTS agents with the
 * monitoring on (the monitor section's defaults, or BENCH_ON_MONITOR) and AGENTS with it off
 * (monitor.enabled false, evidence off) run at the same time, each with one file camera (the
 * highway clip, looped, read at its real rate) sampled at FPS, all publishing to one real
 * mosquitto; so both sides see the same machine at the same moments, and neither saturates it
 * (one-after-the-other runs let the machine's state between runs swamp a few percent). The sides
 * differ only in the monitoring: the model (int8, by name, not "auto"), one session of one
 * thread, the decoder and the broker are pinned alike. The "on" agents get feedback over MQTT as
 * a reviewer's tool would send it: a verdict on LABELLED_SHARE of their detections, batched every
 * 30 s, one verdict in 25 a false positive.
 *
 * Per agent, over the measured period after a warm-up: main-thread CPU (/proc schedstat of the
 * thread whose tid is the pid, in ns; inference runs in a worker thread, ffmpeg in a child, sharp
 * in libuv's pool) and the results it stored. A round's ratio: the on agents' mean ns per result
 * over the off agents'. The control: the same ratio between two agents of one side (A/A), which
 * shows how finely this bench resolves. The whole process's CPU (utime+stime of every thread) is
 * printed beside it. Nothing is asserted (bench/README.md). Results: docs/benchmarks/monitoring.md.
 *
 *   node scripts/run-ts.mjs bench/monitoring-share.ts
 *
 * Environment: BENCH_ROUNDS (default 2), BENCH_SECONDS measured per round (default 300),
 * BENCH_WARMUP_SECONDS (default 20), BENCH_AGENTS per side (default 3), BENCH_FPS (default 5),
 * BENCH_LABELLED_SHARE (default 0.02; 0 sends no feedback), BENCH_ON_MONITOR (the on side's
 * monitor section as a YAML flow mapping, default {}: to leave parts out, e.g.
 * '{ evidence: { enabled: false } }'), BENCH_VARIANT (default monitoring; heap-growth: both sides
 * without monitoring, "on" with runtime.heapGrowingPercent at its default, "off" with 0, V8's own
 * heap growth: what the setting saves, docs/decisions/0013-heap-growth.md), BENCH_WITH_NULL=1
 * (each round followed by a null round, both sides without monitoring and no feedback: its
 * ratio should be 1, and the monitoring's cost is read as the mean difference of the pairs, with
 * its standard error), BENCH_NODE_ARGS (node options for every agent, e.g. "--cpu-prof
 * --cpu-prof-dir=/tmp/prof").
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { describeCpuInt8 } from '../agent/inference/cpu-features.js';
import type { FeedbackItem } from '../agent/monitor/feedback-schema.js';
import type { ResultPayload } from '../agent/storage/result-payload.js';
import { type AgentProcess, killIfRunning, spawnAgent } from '../test/support/agent-process.js';
import { assetPath, projectRoot } from '../test/support/assets.js';
import { startMosquitto } from '../test/support/mosquitto.js';
import { BenchCleanup, runBenchmark } from './cleanup.js';
import { CLK_TCK, processTicks } from './proc-cpu.js';

const env = (name: string, fallback: number): number => (process.env[name] ? Number(process.env[name]) : fallback);
const ROUNDS = env('BENCH_ROUNDS', 2);
const SECONDS = env('BENCH_SECONDS', 300);
const WARMUP_SECONDS = env('BENCH_WARMUP_SECONDS', 20);
const AGENTS = env('BENCH_AGENTS', 3);
const FPS = env('BENCH_FPS', 5);
const FEEDBACK_EVERY_MS = 30_000;
/** Share of the on agents' detections that get a verdict (0: no feedback). */
const LABELLED_SHARE = env('BENCH_LABELLED_SHARE', 0.02);
/** The on side's monitor settings (a YAML flow mapping): the defaults unless given. */
const ON_MONITOR = process.env['BENCH_ON_MONITOR'] ?? '{}';
const VARIANT = process.env['BENCH_VARIANT'] ?? 'monitoring';
/** Each monitoring round followed by a null round (both sides without monitoring), to read the bench's own error beside it. */
const WITH_NULL = process.env['BENCH_WITH_NULL'] === '1';
if (VARIANT !== 'monitoring' && VARIANT !== 'heap-growth') throw new Error(`BENCH_VARIANT ${VARIANT}: monitoring or heap-growth`);
const MONITOR_OFF = 'monitor: { enabled: false, evidence: { enabled: false } }';

const cleanup = new BenchCleanup('stopping the monitoring share bench');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};
const mean = (values: number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;

/** Resident memory of a process (VmRSS), in MB. */
const rssMb = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

/** Run time of one thread in ns (schedstat's first field), exact where /proc/stat counts ticks. */
const threadNs = (pid: number, tid: number): number => Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);

interface RunningAgent {
  name: string;
  monitoring: boolean;
  process: AgentProcess;
  results: () => number;
  close: () => void;
}

interface Reading {
  rssMb: number;
  mainNs: number;
  processTicks: number;
  results: number;
}

function configFor(name: string, monitoring: boolean, dir: string, brokerUrl: string, nullRound: boolean): string {
  const file = path.join(dir, 'config.yaml');
  fs.writeFileSync(
    file,
    [
      `deviceId: ${name}`,
      `dataDir: ${dir}`,
      'cameras:',
      `  - { id: highway, url: "${assetPath('highway-cctv-320x240.mp4')}", sampleFps: ${FPS}, realtime: true, loop: true, decodeSkip: none }`,
      // Both sides alike: the int8 model by name (not "auto", which times at start), one session of one thread.
      `model: { manifest: "${path.join(projectRoot, 'models', 'manifests', 'yolox-nano-int8.json')}" }`,
      'inference: { intraOpThreads: 1, sessions: 1 }',
      `mqtt: { url: "${brokerUrl}" }`,
      ...(VARIANT === 'heap-growth'
        ? [MONITOR_OFF, ...(monitoring ? [] : ['runtime: { heapGrowingPercent: 0 }'])]
        : [monitoring && !nullRound ? `monitor: ${ON_MONITOR}` : MONITOR_OFF]),
      '',
    ].join('\n'),
  );
  return file;
}

async function startAgent(name: string, monitoring: boolean, brokerUrl: string, nullRound: boolean): Promise<RunningAgent> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cctv-bench-share-${name}-`));
  cleanup.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  // BENCH_NODE_ARGS reach every agent's node (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to see where the difference goes).
  const nodeArgs = process.env['BENCH_NODE_ARGS']?.split(' ').filter(Boolean) ?? [];
  const agent = spawnAgent(['run', '--config', configFor(name, monitoring, dir, brokerUrl, nullRound)], { nodeArgs });
  cleanup.add(() => killIfRunning(agent));
  await agent.waitForLog((line) => line.msg === 'cctv-agent running', 60_000);
  const db = new Database(path.join(dir, 'agent.db'), { readonly: true, fileMustExist: true });
  const count = db.prepare('SELECT count(*) AS n FROM results');
  return {
    name,
    monitoring,
    process: agent,
    results: () => (count.get() as { n: number }).n,
    close: () => db.close(),
  };
}

function read(agent: RunningAgent): Reading {
  const pid = agent.process.child.pid!;
  return { mainNs: threadNs(pid, pid), processTicks: processTicks(pid), results: agent.results(), rssMb: rssMb(pid) };
}

/** Feedback to the "on" agents, as a reviewer's tool would send it: verdicts on detections of results they published. */
class Reviewer {
  private readonly pending = new Map<string, FeedbackItem[]>();
  private sent = 0;
  private detections = 0;
  private labelled = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: mqtt.MqttClient,
    private readonly devices: string[],
    private readonly share: number,
  ) {
    for (const device of devices) this.pending.set(device, []);
    client.on('message', (topic, payload) => {
      const device = topic.split('/')[1]!;
      const items = this.pending.get(device);
      if (!items || !topic.endsWith('/results')) return;
      const result = JSON.parse(payload.toString()) as ResultPayload;
      if (result.task !== 'detection') return;
      result.vehicles.forEach((_, index) => {
        if (this.share <= 0 || VARIANT !== 'monitoring' || this.detections++ % Math.round(1 / this.share) !== 0) return;
        items.push({
          id: `${result.id}-${index}`,
          resultId: result.id,
          detection: index,
          // Counted apart from the detections, so that one verdict in 25 is a false positive whatever the share.
          verdict: ++this.labelled % 25 === 0 ? 'false-positive' : 'correct',
        } as FeedbackItem);
      });
    });
  }

  async start(): Promise<void> {
    await this.client.subscribeAsync(
      this.devices.map((device) => `cctv/${device}/results`),
      { qos: 0 },
    );
    this.timer = setInterval(() => {
      for (const [device, items] of this.pending) {
        if (items.length === 0) continue;
        const batch = items.splice(0, 100);
        this.sent += batch.length;
        this.client.publish(`cctv/${device}/cmd/feedback`, JSON.stringify({ args: { items: batch } }), { qos: 1 });
      }
    }, FEEDBACK_EVERY_MS);
  }

  stop(): number {
    clearInterval(this.timer);
    return this.sent;
  }
}

interface RoundResult {
  ratio: number;
  processRatio: number;
  controls: number[];
}

async function round(index: number, brokerUrl: string, client: mqtt.MqttClient, nullRound = false): Promise<RoundResult> {
  const names: Array<{ name: string; monitoring: boolean }> = [];
  const tag = nullRound ? 'n' : '';
  for (let i = 0; i < AGENTS; i++) names.push({ name: `on${tag}${index}x${i}`, monitoring: true }, { name: `off${tag}${index}x${i}`, monitoring: false });
  // Start order alternates between rounds, so neither side always starts first.
  if (index % 2 === 1) names.reverse();
  const agents: RunningAgent[] = [];
  for (const { name, monitoring } of names) agents.push(await startAgent(name, monitoring, brokerUrl, nullRound));
  const reviewer = new Reviewer(
    client,
    agents.filter((agent) => agent.monitoring).map((agent) => agent.name),
    nullRound ? 0 : LABELLED_SHARE,
  );
  await reviewer.start();
  await sleep(WARMUP_SECONDS * 1000); // past start-up, the self-test and the drift reference
  const before = new Map(agents.map((agent) => [agent, read(agent)]));
  await sleep(SECONDS * 1000);
  const after = new Map(agents.map((agent) => [agent, read(agent)]));
  const feedbackSent = reviewer.stop();
  const perResult = agents.map((agent) => {
    const start = before.get(agent)!;
    const end = after.get(agent)!;
    const results = Math.max(1, end.results - start.results);
    return {
      agent,
      results: end.results - start.results,
      mainUs: (end.mainNs - start.mainNs) / 1000 / results,
      processUs: (((end.processTicks - start.processTicks) / CLK_TCK) * 1e6) / results,
      rssMb: end.rssMb,
    };
  });
  for (const agent of agents) {
    agent.close();
    agent.process.kill('SIGTERM');
  }
  await Promise.all(agents.map((agent) => agent.process.exited));
  const side = (monitoring: boolean) => perResult.filter((entry) => entry.agent.monitoring === monitoring);
  const on = side(true);
  const off = side(false);
  const ratio = mean(on.map((entry) => entry.mainUs)) / mean(off.map((entry) => entry.mainUs));
  const processRatio = mean(on.map((entry) => entry.processUs)) / mean(off.map((entry) => entry.processUs));
  const controls = [on, off].filter((entries) => entries.length >= 2).map((entries) => entries[0]!.mainUs / entries[1]!.mainUs);
  console.log(
    nullRound ? `  null round ${index + 1} (both sides without monitoring):` : `  round ${index + 1} (${feedbackSent} verdicts sent to the on agents):`,
  );
  for (const entry of perResult) {
    console.log(
      `    ${entry.agent.monitoring ? 'on ' : 'off'} ${entry.agent.name} (pid ${entry.agent.process.child.pid}): ${entry.results} results, main thread ${entry.mainUs.toFixed(0)} µs per result, whole process ${entry.processUs.toFixed(0)} µs, RSS at the end ${entry.rssMb.toFixed(0)} MB`,
    );
  }
  console.log(
    `    on/off main thread ${ratio.toFixed(4)}, whole process ${processRatio.toFixed(4)}; A/A controls ${controls.map((value) => value.toFixed(4)).join(', ') || 'none (BENCH_AGENTS=1)'}`,
  );
  return { ratio, processRatio, controls };
}

/**
 * The monitoring's cost read against the null rounds run beside it: each monitoring round minus
 * the null round that followed it (a pair shares the machine's state of those minutes), with the
 * standard error of the mean of those differences.
 */
function printAgainstNull(monitoring: number[], nulls: number[]): void {
  const differences = monitoring.map((ratio, index) => ratio - nulls[index]!);
  const average = mean(differences);
  const variance = differences.reduce((sum, value) => sum + (value - average) ** 2, 0) / Math.max(1, differences.length - 1);
  const standardError = Math.sqrt(variance / differences.length);
  console.log(`share: null rounds ${nulls.map((value) => value.toFixed(4)).join(', ')}: mean ${mean(nulls).toFixed(4)}, median ${median(nulls).toFixed(4)}`);
  console.log(
    `share: monitoring rounds mean ${mean(monitoring).toFixed(4)}; minus the null round beside each: ${differences.map((value) => (value * 100).toFixed(1)).join(', ')} points, mean ${(average * 100).toFixed(1)} ± ${(standardError * 100).toFixed(1)} (standard error) points`,
  );
}

await runBenchmark(async () => {
  cleanup.installSignalHandlers();
  console.log(
    `cpu: ${describeCpuInt8()}; ${os.cpus().length} cores; load ${os
      .loadavg()
      .map((load) => load.toFixed(1))
      .join(' ')}`,
  );
  const broker = await startMosquitto();
  cleanup.add(() => broker.stop());
  const client = await mqtt.connectAsync(broker.url, { clientId: 'share-reviewer' });
  cleanup.add(() => client.endAsync());
  if (VARIANT === 'heap-growth')
    console.log('variant heap-growth: "on" = runtime.heapGrowingPercent default, "off" = 0 (V8\'s own); no monitoring on either side');
  console.log(
    `share: ${ROUNDS} rounds; in each, ${AGENTS} agents with the monitoring on and ${AGENTS} with it off at once, one camera at ${FPS} fps each, ${WARMUP_SECONDS} s warm-up, ${SECONDS} s measured`,
  );
  const rounds: RoundResult[] = [];
  const nulls: RoundResult[] = [];
  for (let index = 0; index < ROUNDS; index++) {
    rounds.push(await round(index, broker.url, client));
    if (WITH_NULL) nulls.push(await round(index, broker.url, client, true));
  }
  const ratios = rounds.map((entry) => entry.ratio);
  const controls = rounds.flatMap((entry) => entry.controls);
  const deviation = (value: number): string => `${((value - 1) * 100).toFixed(1)} %`;
  console.log(
    `share: monitoring on/off, main thread per result: median ${median(ratios).toFixed(4)} (${deviation(median(ratios))}), rounds ${Math.min(...ratios).toFixed(4)}-${Math.max(...ratios).toFixed(4)}`,
  );
  console.log(`share: whole process per result: median ${median(rounds.map((entry) => entry.processRatio)).toFixed(4)}`);
  if (WITH_NULL)
    printAgainstNull(
      ratios,
      nulls.map((entry) => entry.ratio),
    );
  if (controls.length > 0) {
    const worst = Math.max(...controls.map((value) => Math.abs(value - 1)));
    console.log(
      `share: A/A controls (two agents of one side) ${controls.map((value) => value.toFixed(4)).join(', ')}: the bench resolves about ±${(worst * 100).toFixed(1)} %`,
    );
  }
}, cleanup);
