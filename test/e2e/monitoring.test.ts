import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FeedbackItem } from '../../agent/monitor/feedback-schema.js';
import type { AlertsPayload, QualityPayload, RetrainPayload } from '../../agent/monitor/quality-schema.js';
import type { CommandReply } from '../../agent/mqtt/command-schemas.js';
import { killIfRunning, spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { assetPath, projectRoot } from '../support/assets.js';
import { startMosquitto, type MosquittoHandle } from '../support/mosquitto.js';
import { startRtspServer, type RtspServerHandle } from '../support/rtsp-server.js';
import { useTempDir } from '../support/temp-dir.js';
import { waitFor } from '../support/wait.js';

const tempDir = useTempDir('cctv-e2e-monitor-');
const PREFIX = 'cctv/mon-dev';

interface Detection {
  resultId: string;
  index: number;
}

/**
 * Issue #15 on real parts: the RTSP clip, the real model, mosquitto, a SQLite file. Reviewers'
 * verdicts over MQTT drive precision, the alert and the retrain request.
 */
describe('monitoring end to end', () => {
  let rtsp: RtspServerHandle;
  let broker: MosquittoHandle;
  let agent: AgentProcess | undefined;
  let watcher: mqtt.MqttClient;
  const received = new Map<string, Array<{ payload: string; retain: boolean }>>();
  const detections: Detection[] = [];
  let results = 0;

  beforeAll(async () => {
    rtsp = await startRtspServer({ file: assetPath('highway-cctv-320x240.mp4') });
    broker = await startMosquitto();
    watcher = await mqtt.connectAsync(broker.url, { clientId: 'monitor-watcher' });
    watcher.on('message', (topic, payload, packet) => {
      if (topic === `${PREFIX}/results`) {
        const result = JSON.parse(payload.toString()) as { id: string; vehicles: unknown[] };
        results++;
        for (let index = 0; index < result.vehicles.length; index++) detections.push({ resultId: result.id, index });
        return;
      }
      const list = received.get(topic) ?? [];
      list.push({ payload: payload.toString(), retain: packet.retain });
      received.set(topic, list);
    });
    await watcher.subscribeAsync([`${PREFIX}/#`, 'cctv/fleet/retrain'], { qos: 1 });
  });

  afterAll(async () => {
    await killIfRunning(agent);
    await watcher?.endAsync();
    await rtsp?.stop();
    await broker?.stop();
  });

  const messages = (suffix: string): string[] => (received.get(`${PREFIX}/${suffix}`) ?? []).map((entry) => entry.payload);
  const replies = (name: string): CommandReply[] => messages(`cmd/${name}/reply`).map((text) => JSON.parse(text) as CommandReply);

  async function command(name: string, payload: string | Buffer, requestId?: string): Promise<CommandReply> {
    const before = replies(name).length;
    await watcher.publishAsync(`${PREFIX}/cmd/${name}`, payload, { qos: 1 });
    await waitFor(
      () =>
        replies(name)
          .slice(before)
          .find((reply) => requestId === undefined || reply.requestId === requestId || reply.requestId === null),
      10_000,
      `the ${name} reply`,
    );
    return replies(name)
      .slice(before)
      .find((reply) => requestId === undefined || reply.requestId === requestId || reply.requestId === null)!;
  }
  const feedback = (items: unknown[], requestId = crypto.randomUUID()): Promise<CommandReply> =>
    command('feedback', JSON.stringify({ requestId, args: { items } }), requestId);
  const verdicts = (from: number, count: number, bad: number, tag: string): FeedbackItem[] =>
    detections.slice(from, from + count).map((detection, i) => ({
      id: `${tag}-${i}`,
      resultId: detection.resultId,
      detection: detection.index,
      verdict: i < bad ? 'false-positive' : 'correct',
    }));

  it('60 % false positives: one alert and one retrain request with evidence; no second while pending; bad feedback refused with codes and nothing stored; correct feedback clears it', async () => {
    const dir = tempDir();
    const config = path.join(dir, 'config.yaml');
    fs.writeFileSync(
      config,
      [
        'deviceId: mon-dev',
        `dataDir: ${path.join(dir, 'data')}`,
        'cameras:',
        `  - { id: highway, url: "${rtsp.url}", sampleFps: 5 }`,
        // The int8 model by name: these tests are about its updates and results, not about "auto".
        `model: { manifest: "${path.join(projectRoot, 'models', 'manifests', 'yolox-nano-int8.json')}" }`,
        'mqtt:',
        `  url: ${broker.url}`,
        'storage: { flushIntervalMs: 100 }',
        'monitor:',
        '  windows: { labels: 50, minutes: 60 }',
        '  publishIntervalSeconds: 2',
        '  maxFeedbackItems: 100',
        '',
      ].join('\n'),
    );
    // A feedback command left retained on the broker before the agent came: never executed (the
    // agent subscribes with retain handling 2; under MQTT 3.1.1 the router refuses retained requests).
    const stale = { id: 'stale-retained', resultId: crypto.randomUUID(), detection: 0, verdict: 'correct' };
    await watcher.publishAsync(`${PREFIX}/cmd/feedback`, JSON.stringify({ args: { items: [stale] } }), { qos: 1, retain: true });
    agent = spawnAgent(['run', '--config', config]);
    await agent.waitForLog((line) => line.msg === 'cctv-agent running', 30_000);
    await watcher.publishAsync(`${PREFIX}/cmd/feedback`, '', { qos: 1, retain: true }); // cleared (its live delivery is refused: empty)
    await waitFor(() => detections.length >= 250, 90_000, '250 detections');
    const database = new Database(path.join(dir, 'data', 'agent.db'), { readonly: true });
    const feedbackRows = (): number => (database.prepare('SELECT count(*) AS n FROM feedback').get() as { n: number }).n;

    // 50 verdicts, 30 of them false positives: precision 0.40 over 50 labels.
    const first = await feedback(verdicts(0, 50, 30, 'a'));
    expect(first, JSON.stringify(first)).toMatchObject({ ok: true, result: { stored: 50, duplicates: 0 } });
    await waitFor(() => messages('retrain').length > 0, 10_000, 'the retrain request');
    const request = JSON.parse(messages('retrain')[0]!) as RetrainPayload;
    expect(request).toMatchObject({ state: 'pending', cameraId: 'highway', trigger: 'rule:low-precision', model: { id: 'yolox-nano-int8' } });
    expect(request.evidence.alert).toMatchObject({ ruleId: 'low-precision', value: 0.4, labels: 50 });
    expect(request.evidence.windows.labels.overall).toMatchObject({ labelled: 50, falsePositive: 30, correct: 20 });
    expect(request.evidence.windows.labels.overall.precision!.n).toBe(50);
    expect(request.evidence.windows.labels.overall.precision!.low).toBeLessThan(0.4);
    expect(request.evidence.timeRange.from).not.toBeNull();
    expect(Object.keys(request.evidence.windows.labels.confusion).length).toBeGreaterThan(0);
    await waitFor(() => (received.get('cctv/fleet/retrain') ?? []).length > 0, 5000, 'the fleet retrain request');
    const alerts = JSON.parse(messages('alerts').at(-1)!) as AlertsPayload;
    expect(alerts.active).toHaveLength(1);
    const quality = JSON.parse(messages('quality').at(-1)!) as QualityPayload;
    expect(quality.windows.labels.overall.precision).toMatchObject({ value: 0.4, n: 50 });

    // Further bad feedback while the request is pending: no second request, no second alert.
    expect(await feedback(verdicts(50, 40, 30, 'b'))).toMatchObject({ ok: true });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(messages('retrain').map((text) => (JSON.parse(text) as RetrainPayload).state)).toEqual(['pending']);
    expect(messages('events').filter((text) => text.includes('"alert-raised"'))).toHaveLength(1);

    // Bad feedback: each refused with its code, nothing stored, results keep coming.
    const storedBefore = feedbackRows();
    const resultsBefore = results;
    const good = verdicts(200, 1, 0, 'z')[0]! as { id: string; resultId: string; detection: number; verdict: 'correct' };
    const refusals: Array<[string, () => Promise<CommandReply>]> = [
      ['FEEDBACK_UNKNOWN_RESULT', () => feedback([good, { ...good, id: 'u1', resultId: crypto.randomUUID() }])],
      ['FEEDBACK_DETECTION_OUT_OF_RANGE', () => feedback([good, { ...good, id: 'r1', detection: 999 }])],
      [
        'COMMAND_INVALID',
        () => feedback([good, { id: 't1', resultId: good.resultId, detection: good.detection, verdict: 'wrong-type', trueType: 'spaceship' }]),
      ],
      ['COMMAND_INVALID_JSON', () => command('feedback', '{"args": {"items": [')],
      ['COMMAND_INVALID', () => feedback([{ ...good, id: 7 }])],
      ['COMMAND_TOO_LARGE', () => feedback([{ ...good, id: 'x'.repeat(20_000) }])],
      ['COMMAND_INVALID', () => feedback(Array.from({ length: 101 }, (_, i) => ({ ...good, id: `many-${i}` })))],
    ];
    for (const [code, send] of refusals) {
      const reply = await send();
      expect(reply, code).toMatchObject({ ok: false, code });
    }
    expect(feedbackRows()).toBe(storedBefore);
    expect(database.prepare("SELECT count(*) AS n FROM feedback WHERE feedback_id = 'stale-retained'").get()).toEqual({ n: 0 });
    await waitFor(() => results > resultsBefore + 5, 10_000, 'results during the refusals');

    // Correct verdicts through the CLI (a reviewer's CSV): the window's precision rises, the alert clears.
    const csv = path.join(dir, 'review.csv');
    fs.writeFileSync(
      csv,
      ['id,resultId,detection,verdict', ...detections.slice(100, 160).map((detection, i) => `c-${i},${detection.resultId},${detection.index},correct`)].join(
        '\n',
      ),
    );
    const send = spawnAgent(['feedback', 'send', csv, '--config', config]);
    expect((await send.exited).code, send.stderr()).toBe(0);
    expect(send.stdout()).toMatch(/60 items: 60 stored/);
    await waitFor(() => messages('events').some((text) => text.includes('"alert-cleared"')), 10_000, 'the alert cleared');
    expect((JSON.parse(messages('alerts').at(-1)!) as AlertsPayload).active).toEqual([]);
    // Sending the same file again changes nothing.
    const again = spawnAgent(['feedback', 'send', csv, '--config', config]);
    expect((await again.exited).code).toBe(0);
    expect(again.stdout()).toMatch(/60 items: 0 stored, 0 replaced, 60 already there/);

    // The pipeline acknowledges the request; `monitor` shows all of it.
    expect(await command('retrain-ack', JSON.stringify({ args: { requestId: request.requestId, by: 'trainer' } }))).toMatchObject({
      ok: true,
      result: { state: 'acknowledged' },
    });
    expect(await command('retrain-ack', JSON.stringify({ args: { requestId: 'nope' } }))).toMatchObject({ ok: false, code: 'RETRAIN_NOT_FOUND' });
    const monitor = spawnAgent(['monitor', '--config', config]);
    expect((await monitor.exited).code, monitor.stderr()).toBe(0);
    console.log(monitor.stdout());
    expect(monitor.stdout()).toMatch(/highway {2}yolox-nano-int8@1\.0\.0/);
    expect(monitor.stdout()).toMatch(/acknowledged/);
    expect(monitor.stdout()).toMatch(/pending -> acknowledged {2}by mqtt:trainer/);
    database.close();
    agent.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
  }, 240_000);
});
