import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMosquitto, type MosquittoHandle } from '../support/mosquitto.js';
import { findFfmpegProcesses } from '../support/processes.js';
import { startRtspServer, type RtspServerHandle } from '../support/rtsp-server.js';
import { killIfRunning, spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { assetPath } from '../support/assets.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-e2e-');
const RTSP_PASSWORD = 'rtsp-Pa55-word';
const MQTT_PASSWORD = 'mqtt-Pa55-word';

interface ResultMessage {
  id: string;
  deviceId: string;
  cameraId: string;
  seq: number;
  capturedAt: string;
  model: { id: string; version: string };
  task: string;
  vehicles: Array<{ type: string; label: string; score: number; box: number[] }>;
  inferenceMs: number;
}

describe('RTSP camera -> agent -> mosquitto, on real parts', () => {
  let rtsp: RtspServerHandle;
  let broker: MosquittoHandle;
  let agent: AgentProcess | undefined;

  beforeAll(async () => {
    rtsp = await startRtspServer({ file: assetPath('highway-cctv-320x240.mp4'), user: 'viewer', password: RTSP_PASSWORD });
    broker = await startMosquitto({ variant: 'password', username: 'edge', password: MQTT_PASSWORD });
  });

  afterAll(async () => {
    await killIfRunning(agent);
    await rtsp?.stop();
    await broker?.stop();
  });

  it('results arrive on the results topic, match SQLite, carry the model id and version, and include cars', async () => {
    const dir = tempDir();
    const secretFile = path.join(dir, 'mqtt-password');
    fs.writeFileSync(secretFile, `${MQTT_PASSWORD}\n`, { mode: 0o600 });
    const config = path.join(dir, 'config.yaml');
    fs.writeFileSync(
      config,
      [
        'deviceId: e2e-device',
        `dataDir: ${path.join(dir, 'data')}`,
        'cameras:',
        // Credentials embedded in the URL: they must appear in no log line.
        `  - { id: highway, url: "${rtsp.urlWithCredentials}", sampleFps: 5, transport: tcp }`,
        'mqtt:',
        `  url: ${broker.url}`,
        '  username: edge',
        `  passwordFile: ${secretFile}`,
        'storage: { flushIntervalMs: 100 }',
        'log: { level: debug }',
        '',
      ].join('\n'),
    );

    const subscriber = await mqtt.connectAsync(broker.url, { ...(await broker.clientOptions()), clientId: 'e2e-watcher' });
    const messages: ResultMessage[] = [];
    const availability: string[] = [];
    subscriber.on('message', (topic, payload) => {
      if (topic.endsWith('/results')) messages.push(JSON.parse(payload.toString()) as ResultMessage);
      else availability.push(payload.toString());
    });
    await subscriber.subscribeAsync(['cctv/e2e-device/results', 'cctv/e2e-device/availability'], { qos: 1 });

    agent = spawnAgent(['run', '--config', config]);
    const running = await agent.waitForLog((line) => line.msg === 'cctv-agent running', 30_000);
    const servingModel = String(running['model']).split('@')[0];
    expect(['yolox-nano-int8', 'yolox-nano']).toContain(servingModel);
    const deadline = Date.now() + 30_000;
    while (messages.length < 25 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    agent.kill('SIGTERM');
    const { code } = await agent.exited;
    await new Promise((resolve) => setTimeout(resolve, 300));
    await subscriber.endAsync();

    expect(code, agent.stderr()).toBe(0);
    expect(messages.length).toBeGreaterThanOrEqual(20);
    expect(availability[0]).toBe('online');
    expect(availability.at(-1)).toBe('offline');

    // Every published result is the same row in SQLite, by message id.
    const db = new Database(path.join(dir, 'data', 'agent.db'), { readonly: true });
    const rows = db.prepare('SELECT message_id, camera_id, seq, model_id, model_version, vehicle_count FROM results').all() as Array<{
      message_id: string;
      camera_id: string;
      seq: number;
      model_id: string;
      model_version: string;
      vehicle_count: number;
    }>;
    db.close();
    const byId = new Map(rows.map((row) => [row.message_id, row]));
    for (const message of messages) {
      const row = byId.get(message.id);
      expect(row, `message ${message.id} is not in SQLite`).toBeDefined();
      expect(row).toMatchObject({
        camera_id: 'highway',
        seq: message.seq,
        model_id: message.model.id,
        model_version: message.model.version,
        vehicle_count: message.vehicles.length,
      });
      // The default model setting ("auto") runs int8 or float, whichever is faster on this CPU.
      expect(message.model).toEqual({ id: servingModel, version: '1.0.0' });
      expect(message.deviceId).toBe('e2e-device');
    }
    expect(new Set(messages.map((message) => message.id)).size).toBe(messages.length);
    const seqs = messages.map((message) => message.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    expect(messages.flatMap((message) => message.vehicles.map((vehicle) => vehicle.type))).toContain('car');

    // Nothing secret in any log line; ffmpeg's argv is logged with the URL redacted.
    const output = agent.stdout() + agent.stderr();
    expect(output).not.toContain(RTSP_PASSWORD);
    expect(output).not.toContain(MQTT_PASSWORD);
    expect(output).not.toContain('viewer:');
    expect(agent.logs.some((line) => line.msg === 'ffmpeg started' && JSON.stringify(line['argv']).includes('rtsp://***@127.0.0.1'))).toBe(true);
    expect(await findFfmpegProcesses((args) => args.includes(`:${rtsp.port}/`))).toEqual([]);
  });
});
