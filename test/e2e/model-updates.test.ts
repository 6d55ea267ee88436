import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelStatePayload } from '../../agent/models/model-schemas.js';
import { encodeChunk, type PushAck, transferIdOf } from '../../agent/models/push-protocol.js';
import { pushBundle } from '../../agent/models/push-sender.js';
import type { CommandReply } from '../../agent/mqtt/command-schemas.js';
import { sha256Of } from '../../agent/common/checksum.js';
import { isAgentError } from '../../agent/errors.js';
import { killIfRunning, spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { assetPath, projectRoot } from '../support/assets.js';
import { startMosquitto, type MosquittoHandle } from '../support/mosquitto.js';
import { startRtspServer, type RtspServerHandle } from '../support/rtsp-server.js';
import { useTempDir } from '../support/temp-dir.js';
import { waitFor } from '../support/wait.js';
import { makeBundle, testKey } from '../models/bundle-fixtures.js';

const PREFIX = 'cctv';
const DEVICES = ['upd-a', 'upd-b', 'upd-c'] as const;
const tempDir = useTempDir('cctv-e2e-models-');

interface Result {
  seq: number;
  cameraId: string;
  model: { id: string; version: string };
}

/**
 * Issue #16 on real parts: one RTSP camera, the real int8 model, mosquitto, three agents. A
 * "new version" is the same model file packed and signed again with a higher version.
 */
describe('model updates end to end', () => {
  const key = testKey();
  const stranger = testKey();
  let rtsp: RtspServerHandle;
  let broker: MosquittoHandle;
  let watcher: mqtt.MqttClient;
  let workDir: string;
  const agents = new Map<string, AgentProcess>();
  const configs = new Map<string, string>();
  const results = new Map<string, Result[]>();
  const messages = new Map<string, Buffer[]>();
  const bundles: Record<string, string> = {};

  beforeAll(async () => {
    workDir = fs.mkdtempSync(path.join(path.dirname(tempDir()), 'cctv-e2e-models-keep-'));
    rtsp = await startRtspServer({ file: assetPath('highway-cctv-320x240.mp4') });
    broker = await startMosquitto();
    watcher = await mqtt.connectAsync(broker.url, { clientId: 'models-watcher' });
    watcher.on('message', (topic, payload) => {
      const match = /^cctv\/([^/]+)\/results$/.exec(topic);
      if (match) {
        const list = results.get(match[1]!) ?? [];
        list.push(JSON.parse(payload.toString()) as Result);
        results.set(match[1]!, list);
        return;
      }
      const list = messages.get(topic) ?? [];
      list.push(payload);
      messages.set(topic, list);
    });
    await watcher.subscribeAsync('cctv/#', { qos: 1 });
    bundles['1.1.0'] = await makeBundle(workDir, { version: '1.1.0', key, name: 'v110.tar' });
    bundles['1.2.0'] = await makeBundle(workDir, { version: '1.2.0', key, name: 'v120.tar' });
    bundles['1.0.5'] = await makeBundle(workDir, { version: '1.0.5', key, name: 'v105.tar' });
    bundles['stranger'] = await makeBundle(workDir, { version: '1.9.0', key: stranger, name: 'stranger.tar' });
    bundles['unsigned'] = await makeBundle(workDir, { version: '1.9.1', name: 'unsigned.tar' });
    bundles['1.3.0'] = await makeBundle(workDir, { version: '1.3.0', key, name: 'v130.tar' });
    for (const deviceId of DEVICES) {
      const file = path.join(workDir, `${deviceId}.yaml`);
      fs.writeFileSync(
        file,
        [
          `deviceId: ${deviceId}`,
          `dataDir: ${path.join(workDir, deviceId)}`,
          'cameras:',
          `  - { id: highway, url: "${rtsp.url}", sampleFps: 2 }`,
          // The int8 model by name: these tests are about its updates and results, not about "auto".
          `model: { manifest: "${path.join(projectRoot, 'models', 'manifests', 'yolox-nano-int8.json')}" }`,
          'mqtt:',
          `  url: ${broker.url}`,
          'storage: { flushIntervalMs: 100 }',
          'modelUpdates:',
          '  trustedKeys:',
          `    - { id: ${key.id}, publicKey: "${key.publicKeyRaw}" }`,
          '  push: { idleTimeoutSeconds: 3 }',
          '',
        ].join('\n'),
      );
      configs.set(deviceId, file);
    }
  }, 120_000);

  afterAll(async () => {
    for (const agent of agents.values()) await killIfRunning(agent);
    await watcher?.endAsync();
    await rtsp?.stop();
    await broker?.stop();
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  async function startAgent(deviceId: string): Promise<AgentProcess> {
    const agent = spawnAgent(['run', '--config', configs.get(deviceId)!]);
    agents.set(deviceId, agent);
    await agent.waitForLog((line) => line.msg === 'cctv-agent running', 60_000);
    return agent;
  }

  const resultsOf = (deviceId: string): Result[] => results.get(deviceId) ?? [];
  const state = (deviceId: string): ModelStatePayload | undefined => {
    const last = messages.get(`cctv/${deviceId}/model/state`)?.at(-1);
    return last ? (JSON.parse(last.toString()) as ModelStatePayload) : undefined;
  };
  const target = (deviceId: string) => ({ url: broker.url, prefix: PREFIX, deviceId, options: { protocolVersion: 4 as const, reconnectPeriod: 0 } });

  async function command(deviceId: string, name: string, args: unknown): Promise<CommandReply> {
    const requestId = crypto.randomUUID();
    const topic = `cctv/${deviceId}/cmd/${name}/reply`;
    await watcher.publishAsync(`cctv/${deviceId}/cmd/${name}`, JSON.stringify({ requestId, args }), { qos: 1 });
    return waitFor(
      () => (messages.get(topic) ?? []).map((payload) => JSON.parse(payload.toString()) as CommandReply).find((reply) => reply.requestId === requestId),
      15_000,
      `the ${name} reply`,
    );
  }

  /** Results keep coming with this version: the model serving is untouched. */
  async function stillServing(deviceId: string, version: string): Promise<void> {
    const before = resultsOf(deviceId).length;
    await waitFor(() => resultsOf(deviceId).length >= before + 3, 30_000, `${deviceId} still producing results`);
    expect(resultsOf(deviceId).at(-1)!.model.version).toBe(version);
  }

  async function refusalCode(work: Promise<unknown>): Promise<string> {
    try {
      const outcome = (await work) as { result?: { ok: boolean; code: string | null } };
      return outcome.result?.ok === false ? (outcome.result.code ?? 'no code') : 'accepted';
    } catch (error) {
      return isAgentError(error) ? error.code : String(error);
    }
  }

  it('cctv-agent model push reaches three agents on one broker: each verifies and activates 1.1.0 with no frame dropped, and the audit log has the chain', async () => {
    for (const deviceId of DEVICES) await startAgent(deviceId);
    for (const deviceId of DEVICES) await waitFor(() => resultsOf(deviceId).length >= 4, 60_000, `${deviceId} results`);
    // --fleet: the devices are those whose retained model state shows the bundle's model.
    const cli = spawnAgent(['model', 'push', bundles['1.1.0']!, '--fleet', '--config', configs.get('upd-a')!, '--chunk-size', '65536', '--json']);
    const exit = await cli.exited;
    expect(exit.code, cli.stderr()).toBe(0);
    const report = JSON.parse(cli.stdout()) as {
      devices: Array<{ deviceId: string; ok: boolean; state: string; model: { version: string }; chunksSent: number; chunks: number }>;
    };
    expect(report.devices).toHaveLength(3);
    for (const entry of report.devices) expect(entry).toMatchObject({ ok: true, state: 'active', model: { version: '1.1.0' } });
    for (const deviceId of DEVICES) {
      await waitFor(() => resultsOf(deviceId).filter((result) => result.model.version === '1.1.0').length >= 4, 60_000, `${deviceId} results of 1.1.0`);
      // No frame dropped across the swap: the frame numbers around it follow each other.
      const list = resultsOf(deviceId);
      const first = list.findIndex((result) => result.model.version === '1.1.0');
      const around = list.slice(Math.max(0, first - 3), first + 3).map((result) => result.seq);
      for (let i = 1; i < around.length; i++) expect(around[i], `${deviceId} seq ${around.join(',')}`).toBe(around[i - 1]! + 1);
      expect(list.slice(first).every((result) => result.model.version === '1.1.0')).toBe(true);
      expect(state(deviceId)?.active).toMatchObject({ id: 'yolox-nano-int8', version: '1.1.0', keyId: key.id });
    }
    const history = spawnAgent(['model', 'history', '--config', configs.get('upd-b')!, '--json']);
    expect((await history.exited).code, history.stderr()).toBe(0);
    const entries = (JSON.parse(history.stdout()) as { entries: Array<{ updateId: string; step: string; outcome: string }> }).entries.reverse();
    const updateId = entries.find((entry) => entry.step === 'push-announced')!.updateId;
    expect(entries.filter((entry) => entry.updateId === updateId).map((entry) => entry.step)).toEqual([
      'push-announced',
      'received',
      'verified',
      'activating',
      'activated',
    ]);
    const events = (messages.get('cctv/upd-b/events') ?? []).map((payload) => JSON.parse(payload.toString()) as { kind: string; detail: { step?: string } });
    expect(events.filter((event) => event.kind === 'model-update').map((event) => event.detail.step)).toEqual(
      expect.arrayContaining(['push-announced', 'received', 'verified', 'activating', 'activated']),
    );
  }, 180_000);

  it('refusals with their own codes while 1.1.0 keeps serving: unknown key, unsigned, downgrade, oversized, bad chunk, missing chunks, an abandoned push (then resumed with only the missing chunks)', async () => {
    const deviceId = 'upd-a';
    expect(await refusalCode(pushBundle(bundles['stranger']!, target(deviceId)))).toBe('MODEL_BUNDLE_KEY_UNKNOWN');
    expect(await refusalCode(pushBundle(bundles['unsigned']!, target(deviceId)))).toBe('MODEL_BUNDLE_UNSIGNED');
    expect(await refusalCode(pushBundle(bundles['1.0.5']!, target(deviceId)))).toBe('MODEL_DOWNGRADE');
    await stillServing(deviceId, '1.1.0');

    const bytes = fs.readFileSync(bundles['1.2.0']!);
    const sha256 = sha256Of(bytes);
    const transferId = transferIdOf(sha256);
    const chunkSize = 65_536;
    const chunks = Math.ceil(bytes.length / chunkSize);
    const chunk = (index: number) => bytes.subarray(index * chunkSize, (index + 1) * chunkSize);
    const oversized = await command(deviceId, 'model-push-begin', { transferId, size: 900 * 1024 * 1024, sha256, chunkSize: 262_144, chunks: 3600 });
    expect(oversized).toMatchObject({ ok: false, code: 'MODEL_BUNDLE_TOO_LARGE' });

    const begin = await command(deviceId, 'model-push-begin', { transferId, size: bytes.length, sha256, chunkSize, chunks });
    expect(begin.ok, JSON.stringify(begin)).toBe(true);
    const ackTopic = `cctv/${deviceId}/model/push/${transferId}/ack`;
    const acks = (): PushAck[] => (messages.get(ackTopic) ?? []).map((payload) => JSON.parse(payload.toString()) as PushAck);
    const bad = encodeChunk(chunk(0));
    bad[100] = (bad[100] ?? 0) ^ 0x55;
    await watcher.publishAsync(`cctv/${deviceId}/model/push/${transferId}/chunk/0`, bad, { qos: 1 });
    await waitFor(() => acks().length >= 1, 10_000, 'the ack of the bad chunk');
    expect(acks()[0]).toMatchObject({ index: 0, ok: false, code: 'MODEL_PUSH_CHUNK_INVALID' });
    for (let index = 0; index < chunks / 2; index++)
      await watcher.publishAsync(`cctv/${deviceId}/model/push/${transferId}/chunk/${index}`, encodeChunk(chunk(index)), { qos: 1 });
    const end = await command(deviceId, 'model-push-end', { transferId });
    expect(end).toMatchObject({ ok: false, code: 'MODEL_PUSH_CHUNK_MISSING' });
    await waitFor(() => state(deviceId)?.lastError?.code === 'MODEL_PUSH_ABANDONED', 20_000, 'the abandoned push in the model state');
    expect(state(deviceId)!.inFlight[0]).toMatchObject({ transferId, kind: 'push' });
    await stillServing(deviceId, '1.1.0');

    const resumed = await pushBundle(bundles['1.2.0']!, target(deviceId), { chunkSize });
    expect(resumed.result).toMatchObject({ ok: true, state: 'active', model: { version: '1.2.0' } });
    expect(resumed.chunksSent).toBe(chunks - Math.ceil(chunks / 2));
    await waitFor(() => resultsOf(deviceId).at(-1)?.model.version === '1.2.0', 30_000, 'results of 1.2.0');
  }, 180_000);

  it('SIGKILL mid-download: after the restart the old model is active and the push resumes with only the missing chunks', async () => {
    const deviceId = 'upd-b';
    const bytes = fs.readFileSync(bundles['1.2.0']!);
    const sha256 = sha256Of(bytes);
    const transferId = transferIdOf(sha256);
    const chunkSize = 16_384;
    const chunks = Math.ceil(bytes.length / chunkSize);
    const begin = await command(deviceId, 'model-push-begin', { transferId, size: bytes.length, sha256, chunkSize, chunks });
    expect(begin.ok, JSON.stringify(begin)).toBe(true);
    const ackTopic = `cctv/${deviceId}/model/push/${transferId}/ack`;
    for (let index = 0; index < 40; index++)
      await watcher.publishAsync(
        `cctv/${deviceId}/model/push/${transferId}/chunk/${index}`,
        encodeChunk(bytes.subarray(index * chunkSize, (index + 1) * chunkSize)),
        { qos: 1 },
      );
    await waitFor(() => (messages.get(ackTopic) ?? []).length >= 40, 20_000, '40 acks');
    const agent = agents.get(deviceId)!;
    agent.kill('SIGKILL');
    await agent.exited;
    await startAgent(deviceId);
    await waitFor(() => state(deviceId)?.inFlight.length === 1 && state(deviceId), 20_000, 'the resumable transfer in the model state');
    expect(state(deviceId)!.active?.version).toBe('1.1.0');
    await stillServing(deviceId, '1.1.0');
    const resumed = await pushBundle(bundles['1.2.0']!, target(deviceId), { chunkSize });
    expect(resumed.result).toMatchObject({ ok: true, state: 'active', model: { version: '1.2.0' } });
    // At least the 32 chunks persisted before the kill (the bitmap is saved every 16) were not sent again.
    expect(resumed.chunksSent).toBeLessThanOrEqual(chunks - 32);
    await waitFor(() => resultsOf(deviceId).at(-1)?.model.version === '1.2.0', 30_000, 'results of 1.2.0');
  }, 180_000);

  it('SIGKILL mid-activation: after the restart the new version is fully active (the cut-short activation resumed) or the old one with the candidate kept, never half', async () => {
    const deviceId = 'upd-c';
    const eventsTopic = `cctv/${deviceId}/events`;
    const activating = () =>
      (messages.get(eventsTopic) ?? []).some((payload) => {
        const event = JSON.parse(payload.toString()) as { kind: string; detail: { step?: string; version?: string } };
        return event.kind === 'model-update' && event.detail.step === 'activating' && event.detail.version === '1.2.0';
      });
    // Its result never comes (the agent is killed): it ends by its own timeout, unawaited.
    void pushBundle(bundles['1.2.0']!, target(deviceId), { resultTimeoutMs: 20_000 }).catch((error: unknown) => error);
    await waitFor(activating, 60_000, 'the activating step');
    const agent = agents.get(deviceId)!;
    agent.kill('SIGKILL');
    await agent.exited;
    await startAgent(deviceId);
    await waitFor(
      () => state(deviceId)?.active?.version === '1.2.0',
      30_000,
      () => `1.2.0 active, state: ${JSON.stringify(state(deviceId))}`,
    );
    await waitFor(() => resultsOf(deviceId).at(-1)?.model.version === '1.2.0', 30_000, 'results of 1.2.0');
    const list = spawnAgent(['model', 'list', '--config', configs.get(deviceId)!, '--json']);
    expect((await list.exited).code).toBe(0);
    const versions = (JSON.parse(list.stdout()) as { versions: Array<{ version: string; state: string }> }).versions;
    expect(versions.filter((row) => row.state === 'active')).toEqual([expect.objectContaining({ version: '1.2.0' })]);
    expect(versions.find((row) => row.version === '1.1.0')?.state).toBe('previous');
    const history = spawnAgent(['model', 'history', '--config', configs.get(deviceId)!, '--json']);
    expect((await history.exited).code).toBe(0);
    const steps = (JSON.parse(history.stdout()) as { entries: Array<{ step: string; version: string | null }> }).entries
      .reverse()
      .filter((entry) => entry.version === '1.2.0')
      .map((entry) => entry.step);
    // Killed before the registry's commit: interrupted, then resumed at start; after it: already active.
    expect([
      ['verified', 'activating', 'activation-interrupted', 'activating', 'activated'],
      ['verified', 'activating', 'activated'],
    ]).toContainEqual(steps);
    console.info(`mid-activation kill: ${steps.join(' -> ')}`);
  }, 120_000);

  it('pull: a fleet announcement of 1.3.0 is pulled once a retrain request is pending; the server killed mid-transfer, the download resumes with Range, and 1.3.0 activates', async () => {
    const deviceId = 'upd-a';
    const bytes = fs.readFileSync(bundles['1.3.0']!);
    const ranges: Array<string | undefined> = [];
    let downUntil = 0;
    const server = http.createServer((req, res) => {
      if (Date.now() < downUntil) {
        req.socket.destroy(); // the server is down
        return;
      }
      ranges.push(req.headers.range);
      const match = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (ranges.length === 1) {
        // The first download: half the bundle, then the server dies for a while.
        res.writeHead(200, { 'content-length': bytes.length });
        res.write(bytes.subarray(0, bytes.length / 2), () => {
          downUntil = Date.now() + 1500;
          res.socket?.destroy();
        });
        return;
      }
      const start = match ? Number(match[1]) : 0;
      res.writeHead(match ? 206 : 200, { 'content-length': bytes.length - start });
      res.end(bytes.subarray(start));
    });
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
    try {
      const announcement = {
        modelId: 'yolox-nano-int8',
        version: '1.3.0',
        url: `http://127.0.0.1:${port}/v130.tar`,
        size: bytes.length,
        sha256: sha256Of(bytes),
      };
      await watcher.publishAsync('cctv/fleet/models/yolox-nano-int8', JSON.stringify(announcement), { qos: 1, retain: true });
      // No retrain request pending yet: the announcement waits.
      await stillServing(deviceId, '1.2.0');
      expect(ranges).toHaveLength(0);
      const retrain = await command(deviceId, 'retrain', { cameraId: 'highway', reason: 'e2e: pull the announced model' });
      expect(retrain.ok, JSON.stringify(retrain)).toBe(true);
      await waitFor(
        () => state(deviceId)?.active?.version === '1.3.0',
        90_000,
        () => `1.3.0 active; ranges ${JSON.stringify(ranges)}; state ${JSON.stringify(state(deviceId))}`,
      );
      expect(ranges[0]).toBeUndefined();
      expect(ranges.at(-1)).toMatch(/^bytes=[1-9]\d*-$/);
      await waitFor(() => resultsOf(deviceId).at(-1)?.model.version === '1.3.0', 30_000, 'results of 1.3.0');
      const history = spawnAgent(['model', 'history', '--config', configs.get(deviceId)!, '--json']);
      expect((await history.exited).code).toBe(0);
      const entries = (
        JSON.parse(history.stdout()) as { entries: Array<{ updateId: string; step: string; trigger: string; code: string | null }> }
      ).entries.reverse();
      const updateId = entries.find((entry) => entry.step === 'pull-requested')!.updateId;
      const chain = entries.filter((entry) => entry.updateId === updateId);
      expect(chain[0]!.trigger).toBe('fleet-announcement');
      const steps = chain.map((entry) => entry.step);
      expect(steps[0]).toBe('pull-requested');
      expect(steps).toContain('download-interrupted');
      expect(steps.filter((step) => step !== 'retired').slice(-4)).toEqual(['downloaded', 'verified', 'activating', 'activated']);
    } finally {
      await watcher.publishAsync('cctv/fleet/models/yolox-nano-int8', '', { qos: 1, retain: true });
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }, 150_000);
});
