import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventPayloadSchema } from '../../agent/storage/event-schema.js';
import { telemetrySampleSchema, type TelemetrySample } from '../../agent/telemetry/telemetry-sample.js';
import { assetPath } from '../support/assets.js';
import { startMosquitto, type MosquittoHandle } from '../support/mosquitto.js';
import { killIfRunning, spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-telemetry-');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('telemetry and events, stored and published', () => {
  let broker: MosquittoHandle;
  let agent: AgentProcess | undefined;

  beforeAll(async () => {
    broker = await startMosquitto();
  });

  afterAll(async () => {
    await killIfRunning(agent);
    await broker?.stop();
  });

  it('publishes samples that match the documented schema, stores the same samples, and reports camera events', async () => {
    const dir = tempDir();
    const dataDir = path.join(dir, 'data');
    const config = path.join(dir, 'config.yaml');
    fs.writeFileSync(
      config,
      [
        'deviceId: telemetry',
        `dataDir: ${dataDir}`,
        'cameras:',
        `  - { id: highway, url: "${assetPath('highway-cctv-320x240.mp4')}", sampleFps: 5 }`,
        // A camera that cannot work: its state changes must show up as events.
        `  - { id: missing, url: "${path.join(dir, 'no-such-clip.mp4')}" }`,
        `mqtt: { url: "${broker.url}" }`,
        'telemetry: { intervalSeconds: 1 }',
        '',
      ].join('\n'),
    );
    fs.writeFileSync(path.join(dir, 'no-such-clip.mp4'), 'not a video');

    const samples: TelemetrySample[] = [];
    const events: unknown[] = [];
    const watcher = await mqtt.connectAsync(broker.url, { clientId: 'telemetry-watcher' });
    watcher.on('message', (topic, payload) => {
      const body = JSON.parse(payload.toString()) as unknown;
      if (topic === 'cctv/telemetry/telemetry') samples.push(telemetrySampleSchema.parse(body));
      if (topic === 'cctv/telemetry/events') events.push(eventPayloadSchema.parse(body));
    });
    await watcher.subscribeAsync(['cctv/telemetry/telemetry', 'cctv/telemetry/events'], { qos: 1 });

    agent = spawnAgent(['run', '--config', config]);
    await agent.waitForLog((line) => line.msg === 'cctv-agent running', 30_000);
    for (const deadline = Date.now() + 20_000; Date.now() < deadline && samples.filter((s) => s.pipeline.results > 0).length < 3; ) await sleep(200);

    // The telemetry command answers with a fresh sample on the reply topic.
    const replies: Array<{ requestId: string; ok: boolean; result?: unknown }> = [];
    watcher.on('message', (topic, payload) => {
      if (topic === 'cctv/telemetry/cmd/telemetry/reply') replies.push(JSON.parse(payload.toString()) as (typeof replies)[number]);
    });
    await watcher.subscribeAsync('cctv/telemetry/cmd/telemetry/reply', { qos: 1 });
    await watcher.publishAsync('cctv/telemetry/cmd/telemetry', JSON.stringify({ requestId: 'now', args: { fresh: true } }), { qos: 1 });
    for (const deadline = Date.now() + 10_000; Date.now() < deadline && replies.length === 0; ) await sleep(100);
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatchObject({ requestId: 'now', ok: true });
    const fresh = telemetrySampleSchema.parse(replies[0]!.result);
    agent.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
    await watcher.endAsync();

    const live = samples.filter((sample) => sample.pipeline.results > 0);
    expect(live.length).toBeGreaterThanOrEqual(3);
    const last = live.at(-1)!;
    expect(last.deviceId).toBe('telemetry');
    expect(last.model?.id).toMatch(/^yolox-nano/);
    expect(last.system.cpuPerCorePercent).toHaveLength(os.cpus().length);
    expect(last.system.memoryTotalBytes).toBeGreaterThan(0);
    expect(last.system.diskFreeBytes).toBeGreaterThan(0);
    expect(last.system.agentRssBytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(last.pipeline.fps).toBeGreaterThan(2);
    expect(last.pipeline.inferenceP95Ms).toBeGreaterThanOrEqual(last.pipeline.inferenceP50Ms);
    const highway = last.pipeline.cameras.find((camera) => camera.id === 'highway')!;
    expect(highway).toMatchObject({ state: 'streaming' });
    expect(highway.framesOut).toBeGreaterThan(0);
    expect(highway.framesIn).toBeGreaterThanOrEqual(highway.framesOut);
    const missing = last.pipeline.cameras.find((camera) => camera.id === 'missing')!;
    expect(missing.lastError).toMatch(/^SOURCE_|^CAMERA_CONFIG_REJECTED$/);

    const db = new Database(path.join(dataDir, 'agent.db'), { readonly: true });
    const stored = db.prepare('SELECT message_id, fps, sample FROM telemetry ORDER BY id').all() as Array<{ message_id: string; fps: number; sample: string }>;
    const storedEvents = db.prepare('SELECT kind, subject, code FROM events ORDER BY id').all() as Array<{
      kind: string;
      subject: string | null;
      code: string | null;
    }>;
    db.close();
    // Every published sample is a stored one, byte for byte.
    const storedById = new Map(stored.map((row) => [row.message_id, row]));
    for (const sample of samples) expect(JSON.parse(storedById.get(sample.id)!.sample)).toEqual(sample);
    expect(storedById.has(fresh.id)).toBe(true);
    expect(storedEvents[0]).toMatchObject({ kind: 'agent-started' });
    expect(storedEvents).toContainEqual({ kind: 'camera-state', subject: 'highway', code: null });
    expect(storedEvents.some((event) => event.kind === 'camera-state' && event.subject === 'missing' && event.code !== null)).toBe(true);
    expect(storedEvents.at(-1)).toMatchObject({ kind: 'agent-stopped' });
    expect(events.length).toBeGreaterThanOrEqual(3);
  }, 90_000);
});
