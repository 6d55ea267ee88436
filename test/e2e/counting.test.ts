import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CountErrorPayload, CountsPayload } from '../../agent/counting/counts-schema.js';
import { countErrorPayloadSchema, countsPayloadSchema } from '../../agent/counting/counts-schema.js';
import type { AlertsPayload } from '../../agent/monitor/quality-schema.js';
import type { CommandReply } from '../../agent/mqtt/command-schemas.js';
import { resultPayloadSchema } from '../../agent/storage/result-payload.js';
import { killIfRunning, spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { assetPath } from '../support/assets.js';
import { startMosquitto, type MosquittoHandle } from '../support/mosquitto.js';
import { startRtspServer, type RtspServerHandle } from '../support/rtsp-server.js';
import { useTempDir } from '../support/temp-dir.js';
import { waitFor } from '../support/wait.js';

const tempDir = useTempDir('cctv-e2e-counting-');
const PREFIX = 'cctv/count-dev';

/**
 * Issue #18 on real parts: the highway clip over RTSP, the real model, mosquitto, SQLite. The
 * agent publishes interval counts; a reference count 50 % off raises the countError alert, and
 * one that agrees clears it.
 */
describe('counting end to end', () => {
  let rtsp: RtspServerHandle;
  let broker: MosquittoHandle;
  let agent: AgentProcess | undefined;
  let watcher: mqtt.MqttClient;
  const received = new Map<string, string[]>();
  const trackIds = new Set<number>();

  beforeAll(async () => {
    rtsp = await startRtspServer({ file: assetPath('highway-cctv-320x240.mp4') });
    broker = await startMosquitto();
    watcher = await mqtt.connectAsync(broker.url, { clientId: 'counting-watcher' });
    watcher.on('message', (topic, payload) => {
      if (topic === `${PREFIX}/results`) {
        const result = resultPayloadSchema.parse(JSON.parse(payload.toString()));
        for (const vehicle of result.vehicles) if (vehicle.trackId !== undefined) trackIds.add(vehicle.trackId);
        return;
      }
      const list = received.get(topic) ?? [];
      list.push(payload.toString());
      received.set(topic, list);
    });
    await watcher.subscribeAsync(`${PREFIX}/#`, { qos: 1 });
  });

  afterAll(async () => {
    await killIfRunning(agent);
    await watcher?.endAsync();
    await rtsp?.stop();
    await broker?.stop();
  });

  const messages = (suffix: string): string[] => received.get(`${PREFIX}/${suffix}`) ?? [];
  const counts = (): CountsPayload[] =>
    messages('counts')
      .map((text) => JSON.parse(text) as CountsPayload | CountErrorPayload)
      .filter((message): message is CountsPayload => message.kind === 'counts');

  async function referenceCounts(args: unknown): Promise<CommandReply> {
    const requestId = crypto.randomUUID();
    await watcher.publishAsync(`${PREFIX}/cmd/reference-counts`, JSON.stringify({ requestId, args }), { qos: 1 });
    const reply = () =>
      messages('cmd/reference-counts/reply')
        .map((text) => JSON.parse(text) as CommandReply)
        .find((one) => one.requestId === requestId);
    await waitFor(reply, 10_000, 'the reference-counts reply');
    return reply()!;
  }
  const activeAlerts = (): AlertsPayload['active'] => {
    const last = messages('alerts').at(-1);
    return last ? (JSON.parse(last) as AlertsPayload).active : [];
  };

  it('publishes interval counts; a reference 50 % off raises the countError alert, an agreeing one clears it', async () => {
    const dir = tempDir();
    const config = path.join(dir, 'config.yaml');
    fs.writeFileSync(
      config,
      [
        'deviceId: count-dev',
        `dataDir: ${path.join(dir, 'data')}`,
        'cameras:',
        `  - id: highway`,
        `    url: "${rtsp.url}"`,
        '    sampleFps: 5',
        '    lines:',
        '      - { id: right, from: [0.42, 0.5], to: [0.92, 0.5], directions: { rightToLeft: away } }',
        'mqtt:',
        `  url: ${broker.url}`,
        'storage: { flushIntervalMs: 100 }',
        'counting: { intervalSeconds: 10, graceSeconds: 1 }',
        'monitor:',
        '  alerts:',
        '    - { id: count-error, metric: countError, above: 0.2, clearAt: 0.1, minLabels: 5, cooldownMinutes: 0, retrain: false }',
        '',
      ].join('\n'),
    );
    agent = spawnAgent(['run', '--config', config]);
    await agent.waitForLog((line) => line.msg === 'cctv-agent running', 30_000);
    // Whole intervals with vehicles in them: the first one is partial (the agent started within it).
    await waitFor(
      () =>
        counts().length >= 4 &&
        counts()
          .slice(1)
          .reduce((sum, one) => sum + one.lines[0]!.total, 0) >= 8,
      90_000,
      'three whole intervals with 8 vehicles',
    );
    const whole = counts().slice(1, 4);
    for (const one of whole) expect(countsPayloadSchema.parse(one)).toBeTruthy();
    expect(whole.map((one) => one.intervalSeconds)).toEqual([10, 10, 10]);
    expect(whole[0]!.lines).toEqual([expect.objectContaining({ lineId: 'right', direction: 'away' })]);
    expect(trackIds.size).toBeGreaterThan(5);
    // The agent's counts per type over the three intervals; the reference gives every type it counted.
    const agentBy: Record<string, number> = {};
    for (const one of whole) for (const [type, n] of Object.entries(one.lines[0]!.counts)) if (n > 0) agentBy[type] = (agentBy[type] ?? 0) + n;
    const agentTotal = Object.values(agentBy).reduce((sum, n) => sum + n, 0);
    const times = (k: number) => Object.fromEntries(Object.entries(agentBy).map(([type, n]) => [type, n * k]));
    const period = { cameraId: 'highway', from: whole[0]!.from, to: whole.at(-1)!.to, source: 'e2e' };
    console.log(
      `agent counted ${JSON.stringify(agentBy)} on line right over ${period.from} .. ${period.to}; frames ${whole.map((one) => one.frames).join(', ')}`,
    );

    // A reference that saw twice as many: the agent is 50 % under.
    const off = await referenceCounts({ ...period, counts: times(2) });
    expect(off, JSON.stringify(off)).toMatchObject({ ok: true });
    const comparison = countErrorPayloadSchema.parse(off.result);
    expect(comparison.total).toEqual({ reference: agentTotal * 2, agent: agentTotal, error: -0.5 });
    expect(comparison.intervals).toBe(3);
    await waitFor(() => activeAlerts().some((alert) => alert.ruleId === 'count-error'), 10_000, 'the count-error alert');
    expect(activeAlerts()[0]).toMatchObject({ metric: 'countError', cameraId: 'highway', value: 0.5, labels: agentTotal * 2, direction: 'above' });
    await waitFor(() => messages('counts').some((text) => text.includes('"count-error"')), 5000, 'the count-error message');

    // Refusals carry their codes.
    const refusals: Array<[string, Record<string, unknown>]> = [
      ['COUNTS_UNKNOWN_TARGET', { ...period, cameraId: 'nope' }],
      ['COUNTS_UNKNOWN_TARGET', { ...period, lineId: 'left' }],
      ['COUNTS_NO_INTERVALS', { ...period, from: '2001-01-01T00:00:00Z', to: '2001-01-01T00:10:00Z' }],
      ['COMMAND_INVALID', { ...period, counts: { spaceship: 3 } }],
    ];
    for (const [code, args] of refusals) {
      const reply = await referenceCounts({ counts: { car: 1 }, ...args });
      expect(reply, JSON.stringify(reply)).toMatchObject({ ok: false, code });
    }

    // The counter agrees: the alert clears.
    const agree = await referenceCounts({ ...period, counts: times(1) });
    expect(agree).toMatchObject({ ok: true, result: { total: { error: 0 } } });
    await waitFor(() => messages('events').some((text) => text.includes('"alert-cleared"')), 10_000, 'the alert cleared');
    expect(activeAlerts()).toEqual([]);

    // `counts` and `status` show the counts.
    const cli = spawnAgent(['counts', '--config', config, '--json']);
    expect((await cli.exited).code, cli.stderr()).toBe(0);
    const rows = JSON.parse(cli.stdout()) as Array<{ cameraId: string; lineId: string; direction: string; vehicleType: string; count: number }>;
    const carsListed = rows.filter((row) => row.lineId === 'right' && row.vehicleType === 'car').reduce((sum, row) => sum + row.count, 0);
    expect(carsListed).toBeGreaterThanOrEqual(agentBy['car'] ?? 0);

    const status = spawnAgent(['status', '--config', config]);
    expect((await status.exited).code, status.stderr()).toBe(0);
    expect(status.stdout()).toMatch(/counting: counting; intervals written \d+; highway \d+ counted on 1 lines/);

    // The installer's check: a full-resolution frame over RTSP with the line and its arrow drawn.
    const picture = path.join(dir, 'lines.jpg');
    const snapshot = spawnAgent(['camera', 'snapshot', 'highway', '--lines', picture, '--config', config]);
    expect((await snapshot.exited).code, snapshot.stderr()).toBe(0);
    expect(snapshot.stdout()).toMatch(/320x240, 1 line drawn/);
    expect(fs.readFileSync(picture).subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));

    agent.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
  }, 180_000);
});
