import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import type { MqttLink } from '../../agent/mqtt/mqtt-link.js';
import { OutboxDrain } from '../../agent/mqtt/outbox-drain.js';
import { openDatabase, type Db } from '../../agent/storage/database.js';
import { SqliteOutbox } from '../../agent/storage/outbox.js';
import { startMosquitto, type MosquittoHandle } from '../support/mosquitto.js';
import { captureLogger } from '../support/capture-log.js';
import { useTempDir } from '../support/temp-dir.js';
import { makeLink, sleep, topics, waitFor, watcher } from './harness.js';

const tempDir = useTempDir('cctv-drain-');
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});
const track = <T extends MosquittoHandle | MqttLink | MqttClient | OutboxDrain>(thing: T): T => {
  cleanups.push(() => ('endAsync' in thing ? thing.endAsync(true) : thing.stop()));
  return thing;
};
const signal = new AbortController().signal;

function freshOutbox(): { db: Db; outbox: SqliteOutbox; insert: (messageId: string, expiresAt: number | null) => void } {
  const db = openDatabase(path.join(tempDir(), 'agent.db'));
  cleanups.push(async () => db.close());
  const statement = db.prepare('INSERT INTO outbox (message_id, topic, payload, qos, retain, created_at, expires_at) VALUES (?, ?, ?, 1, 0, ?, ?)');
  const insert = (messageId: string, expiresAt: number | null): void => {
    statement.run(messageId, topics.results, Buffer.from(JSON.stringify({ id: messageId })), Date.now(), expiresAt);
  };
  return { db, outbox: new SqliteOutbox(db), insert };
}

const idOf = (payload: Buffer): string => (JSON.parse(payload.toString()) as { id: string }).id;

describe('OutboxDrain + MqttLink against a real mosquitto', () => {
  it('drops expired rows (counted, never sent) and sends the rest with their remaining MQTT 5 expiry', async () => {
    const broker = track(await startMosquitto());
    const { db, outbox, insert } = freshOutbox();
    const now = Date.now();
    for (let i = 0; i < 30; i++) {
      // Every third row expired a second ago; the others expire in 60 s, or never.
      insert(`m${i}`, i % 3 === 0 ? now - 1000 : i % 3 === 1 ? now + 60_000 : null);
    }
    const { client, received } = await watcher(broker.url, [topics.results], { protocolVersion: 5 });
    track(client);
    const { link } = makeLink(broker.url);
    track(link);
    await link.start(signal);
    const { log, lines } = captureLogger();
    const drain = track(new OutboxDrain({ outbox: () => outbox, publisher: link, batchSize: 7, log }));
    await drain.start();
    await waitFor(() => received.length === 20 && outbox.depth() === 0, 10_000, '20 messages');
    await sleep(200);
    expect(received.map((m) => idOf(m.payload))).toEqual(Array.from({ length: 30 }, (_, i) => `m${i}`).filter((_, i) => i % 3 !== 0));
    for (const message of received) {
      const id = Number(idOf(message.payload).slice(1));
      const expiry = message.packet.properties?.messageExpiryInterval;
      if (id % 3 === 1) {
        expect(expiry).toBeGreaterThanOrEqual(55);
        expect(expiry).toBeLessThanOrEqual(60);
      } else {
        expect(expiry).toBeUndefined();
      }
    }
    expect(outbox.counter('outbox_expired')).toBe(10);
    expect(db.prepare("SELECT value FROM counters WHERE name = 'outbox_expired'").get()).toEqual({ value: 10 });
    expect(drain.health().detail).toMatchObject({ published: 20, expired: 10, depth: 0, inFlight: 0 });
    expect(lines().filter((line) => line.includes('expired'))).toHaveLength(1);
  });

  it('drains a backlog in order across a broker restart: every message arrives, in order once deduplicated', async () => {
    // A persistent broker and a persistent watcher session, so what the watcher misses while the
    // broker restarts is queued for it: every loss would then be the drain's.
    const { outbox, insert } = freshOutbox();
    const broker = track(await startMosquitto({ extraConfig: ['persistence true', `persistence_location ${tempDir()}/`] }));
    const total = 5000;
    for (let i = 0; i < total; i++) insert(`m${String(i).padStart(5, '0')}`, null);
    const { client, received } = await watcher(broker.url, [topics.results], {
      protocolVersion: 4,
      reconnectPeriod: 100,
      clean: false,
      clientId: 'drain-watcher',
    });
    track(client);
    const { link } = makeLink(broker.url, { reconnectMs: 100, reconnectMaxMs: 400 });
    track(link);
    await link.start(signal);
    const drain = track(new OutboxDrain({ outbox: () => outbox, publisher: link, batchSize: 100, log: captureLogger().log }));
    await drain.start();
    // Restart the broker in the middle of the backlog: in-flight publishes fail and are resent.
    await waitFor(() => received.length >= 1000, 20_000, 'the first thousand');
    await broker.restart();
    await waitFor(() => outbox.depth() === 0, 30_000, 'the outbox to empty');
    await waitFor(() => new Set(received.map((m) => idOf(m.payload))).size === total, 10_000, 'every message at the watcher');
    const firstSeen: string[] = [];
    const seen = new Set<string>();
    for (const message of received) {
      const id = idOf(message.payload);
      if (!seen.has(id)) firstSeen.push(id);
      seen.add(id);
    }
    expect(firstSeen).toEqual(Array.from({ length: total }, (_, i) => `m${String(i).padStart(5, '0')}`));
    expect(drain.health().detail).toMatchObject({ depth: 0, inFlight: 0 });
    expect(drain.health().detail!['published']).toBeGreaterThanOrEqual(total);
    console.log(
      `backlog across a restart: ${received.length} received, ${seen.size} distinct of ${total}, published ${String(drain.health().detail!['published'])}`,
    );
  });
});
