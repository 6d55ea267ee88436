import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertsPayload } from '../../agent/monitor/quality-schema.js';
import type { CommandReply } from '../../agent/mqtt/command-schemas.js';
import type { SelfTestReport } from '../../agent/self-test/self-test-service.js';
import { killIfRunning, spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { assetPath, projectRoot } from '../support/assets.js';
import { startMosquitto, type MosquittoHandle } from '../support/mosquitto.js';
import { useTempDir } from '../support/temp-dir.js';
import { waitFor } from '../support/wait.js';

const tempDir = useTempDir('cctv-e2e-self-test-');
const PREFIX = 'cctv/selftest-dev';

/**
 * Issue #17 item 8 on real parts: the real int8 model with its shipped golden samples, run
 * through the live session of an agent that keeps serving a camera. Altered weights on disk and
 * a wrong expectation each raise the self-test alert; the true model passes.
 */
describe('golden-sample self-test end to end', () => {
  let broker: MosquittoHandle;
  let agent: AgentProcess | undefined;
  let watcher: mqtt.MqttClient;
  const replies: CommandReply[] = [];
  const alerts: AlertsPayload[] = [];
  const events: Array<{ kind: string; code: string | null }> = [];
  let results = 0;

  beforeAll(async () => {
    broker = await startMosquitto();
    watcher = await mqtt.connectAsync(broker.url, { clientId: 'self-test-watcher' });
    watcher.on('message', (topic, payload) => {
      if (topic.endsWith('/availability')) return; // "online" / "offline", not JSON
      const body = JSON.parse(payload.toString()) as unknown;
      if (topic === `${PREFIX}/cmd/self-test/reply`) replies.push(body as CommandReply);
      if (topic === `${PREFIX}/alerts`) alerts.push(body as AlertsPayload);
      if (topic === `${PREFIX}/events`) events.push(body as { kind: string; code: string | null });
      if (topic === `${PREFIX}/results`) results++;
    });
    await watcher.subscribeAsync(`${PREFIX}/#`, { qos: 1 });
  });

  afterAll(async () => {
    await killIfRunning(agent);
    await watcher?.endAsync();
    await broker?.stop();
  });

  async function selfTest(): Promise<SelfTestReport> {
    const before = replies.length;
    await watcher.publishAsync(`${PREFIX}/cmd/self-test`, JSON.stringify({ requestId: `r${before}`, args: {} }), { qos: 1 });
    await waitFor(() => replies.length > before, 60_000, 'the self-test reply');
    const reply = replies.at(-1)!;
    expect(reply.ok, JSON.stringify(reply)).toBe(true);
    return (reply as { result: SelfTestReport }).result;
  }
  const selfTestAlert = (): boolean => (alerts.at(-1)?.active ?? []).some((alert) => alert.ruleId === 'self-test');

  it('passes on the true model; altered weights on disk and a wrong expectation each raise the alert; results keep flowing', async () => {
    const dir = tempDir();
    // A private copy of the model, its manifest and its golden file: this test alters them.
    const manifest = JSON.parse(fs.readFileSync(path.join(projectRoot, 'models', 'manifests', 'yolox-nano-int8.json'), 'utf8')) as Record<string, unknown>;
    const modelFile = path.join(dir, 'model.onnx');
    const goldenFile = path.join(dir, 'golden.json');
    fs.copyFileSync(assetPath('yolox-nano-int8.onnx'), modelFile);
    fs.copyFileSync(path.join(projectRoot, 'models', 'golden', 'yolox-nano-int8.golden.json'), goldenFile);
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ ...manifest, file: 'model.onnx', golden: { file: 'golden.json' } }));
    const config = path.join(dir, 'config.yaml');
    fs.writeFileSync(
      config,
      [
        'deviceId: selftest-dev',
        `dataDir: ${path.join(dir, 'data')}`,
        'cameras:',
        // Every frame, as fast as decoded: a camera that keeps both lanes of the model busy
        // must not starve the self-test (it once waited forever for a free lane).
        `  - { id: highway, url: "${assetPath('highway-cctv-320x240.mp4')}", sampleFps: null, realtime: false, loop: true }`,
        `mqtt: { url: "${broker.url}" }`,
        `model: { manifest: "${path.join(dir, 'manifest.json')}", assetsDir: "${path.dirname(assetPath('bus-and-cars.jpg'))}" }`,
        'monitor: { drift: { enabled: false } }',
        '',
      ].join('\n'),
    );
    agent = spawnAgent(['run', '--config', config]);
    const started = await agent.waitForLog((line) => line.msg === 'self-test passed' || String(line.msg).startsWith('self-test failed'), 60_000);
    expect(started.msg).toBe('self-test passed');
    expect(started['images']).toBe(2);

    const clean = await selfTest();
    expect(clean).toMatchObject({ passed: true, code: null, trigger: 'command', golden: { images: 2, mismatches: [] }, file: { changed: false } });

    // Weights altered on disk under the running agent (the live session still has the old ones).
    const original = fs.readFileSync(modelFile);
    const altered = Buffer.from(original);
    for (let i = altered.length / 2; i < altered.length / 2 + 4096; i++) altered[i] = altered[i]! ^ 0x5a;
    fs.writeFileSync(modelFile, altered);
    const changed = await selfTest();
    expect(changed).toMatchObject({ passed: false, code: 'SELF_TEST_FILE_CHANGED', file: { changed: true } });
    await waitFor(selfTestAlert, 10_000, 'the self-test alert');
    expect(events.some((event) => event.kind === 'self-test-failed' && event.code === 'SELF_TEST_FILE_CHANGED')).toBe(true);

    fs.writeFileSync(modelFile, original);
    expect((await selfTest()).passed).toBe(true);
    await waitFor(() => !selfTestAlert(), 10_000, 'the self-test alert cleared');

    // A wrong expectation: the golden file says the bus on the first image is a truck.
    const golden = JSON.parse(fs.readFileSync(goldenFile, 'utf8')) as { samples: Array<{ vehicles: Array<{ type: string }> }> };
    golden.samples[0]!.vehicles[0]!.type = 'truck';
    fs.writeFileSync(goldenFile, JSON.stringify(golden));
    const wrong = await selfTest();
    expect(wrong).toMatchObject({ passed: false, code: 'SELF_TEST_MISMATCH' });
    expect(wrong.golden!.mismatches.map((m) => `${m.problem}:${m.vehicle.type}`).sort()).toEqual(['missing:truck', 'unexpected:bus']);
    await waitFor(selfTestAlert, 10_000, 'the self-test alert, again');

    const before = results;
    try {
      await waitFor(() => results > before + 5, 20_000, 'results still flowing');
    } catch (error) {
      console.log(
        agent
          .stdout()
          .split('\n')
          .filter((line) => !line.includes('"level":30'))
          .slice(-40)
          .join('\n'),
      );
      throw error;
    }
    agent.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
  }, 180_000);
});
