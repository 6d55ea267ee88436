/**
 * Model push benchmark, on real parts: a compiled agent reading the highway clip over RTSP at
 * BENCH_FPS with the int8 model, mosquitto on loopback, and `pushBundle` (what
 * `cctv-agent model push` runs) sending signed bundles of growing size:
 *  1. push throughput (MB/s over the chunk transfer, announcement to last ack) per chunk size;
 *  2. the frames' latency (capture -> result received by a subscriber) before the push, during
 *     the transfer, during the activation (the hot swap) and after, with the frames dropped
 *     (gaps in the per-camera frame numbers) in each phase.
 * The bundles carry the real model; the larger ones add a padding file as their golden set.
 *
 * Run: node scripts/run-ts.mjs bench/model-push.ts
 *   BENCH_SIZES_MB (default "0,16,64") padding added to the 1.3 MB model bundle,
 *   BENCH_CHUNKS (default "65536,262144") chunk sizes, BENCH_FPS (default 5)
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { loadPrivateKey, generateKey } from '../agent/models/keys.js';
import { packBundle } from '../agent/models/pack.js';
import { pushBundle } from '../agent/models/push-sender.js';
import { spawnAgent, killIfRunning, type AgentProcess } from '../test/support/agent-process.js';
import { assetPath } from '../test/support/assets.js';
import { startMosquitto } from '../test/support/mosquitto.js';
import { startRtspServer } from '../test/support/rtsp-server.js';
import { BenchCleanup, runBenchmark } from './cleanup.js';

const SIZES_MB = (process.env['BENCH_SIZES_MB'] ?? '0,16,64').split(',').map(Number);
const CHUNKS = (process.env['BENCH_CHUNKS'] ?? '65536,262144').split(',').map(Number);
const FPS = Number(process.env['BENCH_FPS'] ?? 5);
const cleanups = new BenchCleanup('stopping the agent, mosquitto and the RTSP server');

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
};

interface Seen {
  at: number;
  seq: number;
  latencyMs: number;
  version: string;
}

async function main(): Promise<void> {
  cleanups.installSignalHandlers();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-bench-push-'));
  cleanups.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  const rtsp = await startRtspServer({ file: assetPath('highway-cctv-320x240.mp4') });
  cleanups.add(() => rtsp.stop());
  const broker = await startMosquitto();
  cleanups.add(() => broker.stop());
  const generated = generateKey();
  const privateKey = loadPrivateKey(generated.privateKeyPem, 'bench key');
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(
    config,
    [
      'deviceId: bench',
      `dataDir: ${path.join(dir, 'data')}`,
      'cameras:',
      `  - { id: highway, url: "${rtsp.url}", sampleFps: ${FPS} }`,
      `mqtt: { url: ${broker.url} }`,
      'storage: { flushIntervalMs: 100 }',
      'modelUpdates:',
      `  trustedKeys: [{ id: ${generated.keyId}, publicKey: "${generated.publicKeyRaw}" }]`,
      '  maxBundleMB: 512',
      '  keepVersions: 2',
      '',
    ].join('\n'),
  );
  const seen: Seen[] = [];
  const steps: Array<{ at: number; step: string }> = [];
  const watcher = await mqtt.connectAsync(broker.url, { clientId: 'bench-watcher' });
  cleanups.add(() => watcher.endAsync(true));
  watcher.on('message', (topic, payload) => {
    const body = JSON.parse(payload.toString()) as { seq: number; capturedAt: string; model: { version: string }; kind?: string; detail?: { step?: string } };
    if (topic.endsWith('/results'))
      seen.push({ at: Date.now(), seq: body.seq, latencyMs: Date.now() - Date.parse(body.capturedAt), version: body.model.version });
    else if (body.kind === 'model-update' && body.detail?.step) steps.push({ at: Date.now(), step: body.detail.step });
  });
  await watcher.subscribeAsync(['cctv/bench/results', 'cctv/bench/events'], { qos: 1 });
  const agent: AgentProcess = spawnAgent(['run', '--config', config]);
  cleanups.add(() => killIfRunning(agent));
  await agent.waitForLog((line) => line.msg === 'cctv-agent running', 60_000);
  while (seen.length < FPS * 3) await new Promise((resolve) => setTimeout(resolve, 200));

  console.log(
    `model push over loopback mosquitto; agent at ${FPS} fps on the highway clip over RTSP; ${os.cpus().length} CPUs, load ${os.loadavg()[0]!.toFixed(2)}`,
  );
  console.log(
    'bundle MB | chunk KB | chunks | transfer s | MB/s | verify+activate s | latency p50/p95/max ms: before | transfer | activation | after | dropped frames',
  );
  let minor = 0;
  for (const padMb of SIZES_MB) {
    for (const chunkSize of CHUNKS) {
      minor++;
      const manifestDir = fs.mkdtempSync(path.join(dir, 'manifest-'));
      const manifest = JSON.parse(fs.readFileSync(path.resolve('models/manifests/yolox-nano-int8.json'), 'utf8')) as Record<string, unknown>;
      manifest['file'] = assetPath('yolox-nano-int8.onnx');
      manifest['labels'] = { file: assetPath('coco-labels.txt') };
      if (padMb > 0) {
        fs.writeFileSync(path.join(manifestDir, 'padding.bin'), crypto.randomBytes(padMb * 1024 * 1024));
        manifest['golden'] = { file: 'padding.bin' };
      }
      fs.writeFileSync(path.join(manifestDir, 'manifest.json'), JSON.stringify(manifest));
      const bundle = path.join(dir, `bundle-${minor}.tar`);
      await packBundle({ manifestPath: path.join(manifestDir, 'manifest.json'), assetsDir: manifestDir, out: bundle, version: `2.${minor}.0`, privateKey });
      const size = fs.statSync(bundle).size;
      const start = Date.now();
      const firstSeen = seen.length;
      const stepsFrom = steps.length;
      const outcome = await pushBundle(bundle, { url: broker.url, prefix: 'cctv', deviceId: 'bench', options: { protocolVersion: 5 } }, { chunkSize });
      if (!outcome.result.ok) throw new Error(`push refused: ${outcome.result.code} ${outcome.result.message}`);
      const transferEnd = start + outcome.transferMs;
      while (!steps.slice(stepsFrom).some((s) => s.step === 'activated')) await new Promise((resolve) => setTimeout(resolve, 50));
      const activating = steps.slice(stepsFrom).find((s) => s.step === 'activating')!.at;
      const activated = steps.slice(stepsFrom).find((s) => s.step === 'activated')!.at;
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const phase = (from: number, to: number) => seen.filter((s) => s.at >= from && s.at < to);
      const before = seen.slice(Math.max(0, firstSeen - FPS * 3), firstSeen);
      const fmt = (list: Seen[]): string =>
        list.length === 0
          ? '-'
          : `${percentile(
              list.map((s) => s.latencyMs),
              0.5,
            ).toFixed(0)}/${percentile(
              list.map((s) => s.latencyMs),
              0.95,
            ).toFixed(0)}/${Math.max(...list.map((s) => s.latencyMs)).toFixed(0)}`;
      const window = seen.slice(Math.max(0, firstSeen - 1));
      let dropped = 0;
      for (let i = 1; i < window.length; i++) dropped += Math.max(0, window[i]!.seq - window[i - 1]!.seq - 1);
      console.log(
        [
          (size / 1048576).toFixed(1),
          (chunkSize / 1024).toFixed(0),
          outcome.chunks,
          (outcome.transferMs / 1000).toFixed(2),
          (size / 1048576 / (outcome.transferMs / 1000)).toFixed(1),
          ((activated - transferEnd) / 1000).toFixed(2),
          `${fmt(before)} | ${fmt(phase(start, transferEnd))} | ${fmt(phase(activating, activated + 500))} | ${fmt(phase(activated + 500, Date.now()))}`,
          dropped,
        ].join(' | '),
      );
      fs.rmSync(bundle, { force: true });
    }
  }
}

void runBenchmark(main, cleanups);
