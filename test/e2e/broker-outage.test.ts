import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { assetPath } from '../support/assets.js';
import { startMosquitto, type MosquittoHandle } from '../support/mosquitto.js';
import { killIfRunning, spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-outage-');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const OUTAGE_MS = Number(process.env['CCTV_OUTAGE_MS'] ?? 60_000);

/**
 * Issue #5's store-and-forward acceptance: results flow at 5 fps, the broker is stopped for
 * 60 s, the agent is SIGKILLed once during the outage and restarted; when the broker is back
 * every stored result arrives exactly once, in order. Mosquitto keeps the watcher's session
 * across its restart (persistence on), so the watcher misses nothing the broker accepted.
 */
describe('broker outage with a SIGKILL in the middle', () => {
  let broker: MosquittoHandle | undefined;
  let agent: AgentProcess | undefined;

  afterAll(async () => {
    await killIfRunning(agent);
    await broker?.stop();
  });

  it('delivers every stored result exactly once by id, and in order, after the broker returns', async () => {
    const dir = tempDir();
    const persistence = path.join(dir, 'mosquitto');
    fs.mkdirSync(persistence);
    broker = await startMosquitto({ extraConfig: ['persistence true', `persistence_location ${persistence}/`, 'max_queued_messages 0'] });
    const dataDir = path.join(dir, 'data');
    const config = path.join(dir, 'config.yaml');
    fs.writeFileSync(
      config,
      [
        'deviceId: outage',
        `dataDir: ${dataDir}`,
        'cameras:',
        `  - { id: highway, url: "${assetPath('highway-cctv-320x240.mp4')}", sampleFps: 5, realtime: true, loop: true }`,
        'mqtt:',
        `  url: ${broker.url}`,
        '  reconnectMs: 500',
        '  reconnectMaxMs: 2000',
        'telemetry: { intervalSeconds: 5 }',
        '',
      ].join('\n'),
    );

    const received: string[] = [];
    const watcher = await mqtt.connectAsync(broker.url, { clientId: 'outage-watcher', clean: false, reconnectPeriod: 300 });
    watcher.on('message', (topic, payload) => {
      if (topic.endsWith('/results')) received.push((JSON.parse(payload.toString()) as { id: string }).id);
    });
    await watcher.subscribeAsync('cctv/outage/results', { qos: 1 });

    agent = spawnAgent(['run', '--config', config]);
    await agent.waitForLog((line) => line.msg === 'cctv-agent running', 30_000);
    await sleep(5000);
    const beforeOutage = received.length;

    await broker.pause();
    const outageStarted = Date.now();
    await sleep(OUTAGE_MS / 3);
    agent.kill('SIGKILL');
    await agent.exited;
    agent = spawnAgent(['run', '--config', config]);
    await agent.waitForLog((line) => line.msg === 'cctv-agent running', 30_000);
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - outageStarted)));
    const db = new Database(path.join(dataDir, 'agent.db'), { readonly: true });
    const backlog = (db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n;
    await broker.restart();
    const brokerBack = Date.now();

    // Drained when the outbox holds only what arrived in the last moments.
    let drainedAfterMs = -1;
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(250)) {
      const depth = (db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n;
      if (depth < 20) {
        drainedAfterMs = Date.now() - brokerBack;
        break;
      }
    }
    await sleep(3000);
    agent.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
    await sleep(1000);
    watcher.end();

    const stored = db.prepare('SELECT message_id FROM results ORDER BY id').pluck().all() as string[];
    const unsent = new Set(db.prepare("SELECT message_id FROM outbox WHERE topic = 'cctv/outage/results' ORDER BY id").pluck().all() as string[]);
    db.close();
    const duplicates = received.length - new Set(received).size;
    console.log(
      `outage ${OUTAGE_MS} ms: ${beforeOutage} results before it, outbox backlog ${backlog} messages, drained ${drainedAfterMs} ms after the broker returned; ` +
        `${stored.length} results stored, ${received.length} received, ${duplicates} duplicates, ${unsent.size} still in the outbox at the final stop`,
    );
    expect(beforeOutage).toBeGreaterThan(10);
    expect(backlog).toBeGreaterThan((OUTAGE_MS / 1000) * 5 * 0.6);
    expect(drainedAfterMs).toBeGreaterThanOrEqual(0);
    // QoS 1 is at-least-once: a message the broker took just as it was stopped, whose PUBACK
    // never came back, is sent again. Consumers deduplicate on the id, so "exactly once" is
    // counted by id; the duplicates are reported, and bounded by what can be in flight.
    expect(duplicates).toBeLessThanOrEqual(500);
    const firstArrivals = [...new Set(received)];
    // Everything stored was received in storage order, except a tail the final stop left in
    // the outbox (it goes at the next start).
    expect(firstArrivals).toEqual(stored.filter((id) => !unsent.has(id)));
    expect(stored.slice(stored.length - unsent.size).every((id) => unsent.has(id))).toBe(true);
  }, 240_000);
});
