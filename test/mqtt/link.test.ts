import { afterEach, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { EmbeddedBroker } from '../../agent/mqtt/embedded-broker.js';
import type { MqttLink } from '../../agent/mqtt/mqtt-link.js';
import { freePort } from '../support/free-port.js';
import { startMosquitto, type MosquittoHandle } from '../support/mosquitto.js';
import { captureLogger } from '../support/capture-log.js';
import { makeLink, sleep, topics, waitFor, watcher } from './harness.js';

// Everything started by a test is stopped after it, whatever the outcome.
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});
const track = <T extends MosquittoHandle | MqttLink | MqttClient | EmbeddedBroker>(thing: T): T => {
  cleanups.push(() => ('endAsync' in thing ? thing.endAsync(true) : thing.stop()));
  return thing;
};

const signal = new AbortController().signal;
const text = (payload: Buffer): string => payload.toString();

describe('MqttLink against a real mosquitto 2', () => {
  it('TLS with a client certificate and a password: connects over MQTT 5, publishes, keeps availability retained', async () => {
    const broker = track(await startMosquitto({ variant: 'tls-password', requireClientCert: true }));
    const { client, received } = await watcher(broker.url, [`${topics.base}/#`], {
      ...(await broker.clientOptions({ withClientCert: true })),
      protocolVersion: 5,
    });
    track(client);
    const { link, logs } = makeLink(broker.url, {
      username: broker.username,
      password: broker.password,
      tls: { caFile: broker.caFile, certFile: broker.certFile, keyFile: broker.keyFile },
    });
    track(link);
    await link.start(signal);
    expect(link.health()).toMatchObject({ ok: true, state: 'connected', detail: { protocol: '5', connects: 1 } });
    await link.publish(topics.results, Buffer.from('{"hello":1}'), 1, false);
    await waitFor(() => received.some((m) => m.topic === topics.results), 5000, 'the result');
    expect(received.find((m) => m.topic === topics.availability)).toMatchObject({ payload: Buffer.from('online') });
    expect(text(received.find((m) => m.topic === topics.results)!.payload)).toBe('{"hello":1}');
    // mosquitto logs the protocol of each client: p5 is MQTT 5.
    expect(broker.logs()).toMatch(new RegExp(`as cctv-dev1-${process.pid} \\(p5,`));
    await link.stop();
    await waitFor(
      () =>
        received
          .filter((m) => m.topic === topics.availability)
          .map((m) => text(m.payload))
          .includes('offline'),
      5000,
      'offline',
    );
    expect(logs().filter((line) => line['msg'] === 'mqtt connected')).toHaveLength(1);
  });

  it('a CA that did not sign the broker certificate is tls-failed (MQTT_TLS_FAILED)', async () => {
    const broker = track(await startMosquitto({ variant: 'tls' }));
    const { link } = makeLink(broker.url, { reconnectMs: 5000 });
    track(link);
    await link.start(signal);
    expect(link.health()).toMatchObject({ ok: false, state: 'tls-failed', detail: { lastErrorCode: 'MQTT_TLS_FAILED' } });
  });

  it('a wrong password is auth-failed (MQTT_AUTH_FAILED), retried with growing delays, logged once', async () => {
    const broker = track(await startMosquitto({ variant: 'password' }));
    // random 1: the top of the jitter range, so each delay is the exponential ceiling itself.
    const { link, logs } = makeLink(broker.url, { username: broker.username, password: 'wrong-password', reconnectMs: 200, reconnectMaxMs: 1600 }, () => 1);
    track(link);
    const started = Date.now();
    await link.start(signal);
    expect(Date.now() - started).toBeLessThan(1000); // the refusal is known at once: no 3 s wait
    const attemptTimes: number[] = [];
    let seen = 0;
    const delays: unknown[] = [];
    while (attemptTimes.length < 6 && Date.now() - started < 15_000) {
      const detail = link.health().detail!;
      if ((detail['attempts'] as number) > seen) {
        seen = detail['attempts'] as number;
        attemptTimes.push(Date.now());
      }
      if (delays.at(-1) !== detail['retryDelayMs']) delays.push(detail['retryDelayMs']);
      await sleep(5);
    }
    const health = link.health();
    expect(health).toMatchObject({ ok: false, state: 'auth-failed', detail: { lastErrorCode: 'MQTT_AUTH_FAILED', reasonCode: 135 } });
    expect(health.detail!['nextRetryInMs']).toBeGreaterThanOrEqual(0);
    const gaps = attemptTimes.slice(1).map((time, i) => time - attemptTimes[i]!);
    // Bases 200, 400, 800, 1600 (the cap), 1600; each gap is the delay plus one refused attempt.
    const expected = [200, 400, 800, 1600, 1600];
    gaps.forEach((gap, i) => {
      expect(gap).toBeGreaterThanOrEqual(expected[i]! - 10);
      expect(gap).toBeLessThan(expected[i]! + 1000); // generous: the 2 cores may be busy
    });
    expect([...new Set(delays.filter((delay) => delay !== undefined))]).toEqual([200, 400, 800, 1600]);
    // The broker saw every attempt; the log has one line for the state, not one per retry.
    expect(broker.logs().match(/not authorised/g)?.length).toBeGreaterThanOrEqual(attemptTimes.length);
    expect(logs().filter((line) => line['state'] === 'auth-failed')).toHaveLength(1);
    console.log(`auth-failed retries: gaps ${gaps.join(', ')} ms`);
  });

  it('reconnects after the broker restarts and says "online" again', async () => {
    const broker = track(await startMosquitto());
    const { link, logs } = makeLink(broker.url, { reconnectMs: 200, reconnectMaxMs: 1000 });
    track(link);
    await link.start(signal);
    await broker.kill();
    await waitFor(() => link.state !== 'connected', 5000, 'the link to notice');
    await sleep(1500); // a few refused attempts while the broker is down
    expect(link.health()).toMatchObject({ state: 'unreachable', detail: { lastErrorCode: 'MQTT_CONNECT_FAILED' } });
    await broker.restart();
    const { client, received } = await watcher(broker.url, [topics.availability]);
    track(client);
    await waitFor(() => link.state === 'connected', 5000, 'the reconnect');
    await waitFor(() => received.some((m) => text(m.payload) === 'online'), 5000, 'online after the reconnect');
    const states = logs().filter(
      (line) =>
        ['mqtt connected', 'mqtt connection lost: retrying; results are kept in the outbox'].includes(line['msg'] as string) || line['state'] === 'unreachable',
    );
    expect(states.map((line) => line['state'] ?? line['msg'])).toEqual([
      'mqtt connected',
      'mqtt connection lost: retrying; results are kept in the outbox',
      'unreachable',
      'mqtt connected',
    ]);
  });

  it('protocol "3.1.1" is used when forced: no properties on what it publishes', async () => {
    const broker = track(await startMosquitto());
    const { client, received } = await watcher(broker.url, [topics.results], { protocolVersion: 5 });
    track(client);
    const { link } = makeLink(broker.url, { protocol: '3.1.1' });
    track(link);
    await link.start(signal);
    expect(link.health().detail).toMatchObject({ protocol: '3.1.1' });
    // mosquitto's own numbering: p2 is MQTT 3.1.1 (p1 would be 3.1).
    expect(broker.logs()).toMatch(new RegExp(`as cctv-dev1-${process.pid} \\(p2,`));
    await link.publish(topics.results, Buffer.from('x'), 1, false, Date.now() + 60_000);
    await waitFor(() => received.length === 1, 5000, 'the message');
    expect(received[0]!.packet.properties?.messageExpiryInterval).toBeUndefined();
  });
});

describe('MqttLink against a 3.1.1-only broker (the embedded aedes)', () => {
  it('falls back from MQTT 5 to 3.1.1 at once, and publishes', async () => {
    const port = await freePort();
    const broker = track(new EmbeddedBroker('127.0.0.1', port, captureLogger().log));
    await broker.start();
    const { client, received } = await watcher(broker.url, [topics.results], { protocolVersion: 4 });
    track(client);
    const { link, logs } = makeLink(broker.url);
    track(link);
    const started = Date.now();
    await link.start(signal);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(link.health()).toMatchObject({ ok: true, state: 'connected', detail: { protocol: '3.1.1', connects: 1, attempts: 2 } });
    expect(logs().filter((line) => (line['msg'] as string).includes('refuses MQTT 5'))).toEqual([expect.objectContaining({ reasonCode: 1 })]);
    await link.publish(topics.results, Buffer.from('via 3.1.1'), 1, false, Date.now() + 60_000);
    await waitFor(() => received.length === 1, 5000, 'the message');
    expect(text(received[0]!.payload)).toBe('via 3.1.1');
  });

  it('protocol "5" forced against it is refused (MQTT_CONNECT_FAILED, reason 1), not fallen back', async () => {
    const port = await freePort();
    const broker = track(new EmbeddedBroker('127.0.0.1', port, captureLogger().log));
    await broker.start();
    const { link } = makeLink(broker.url, { protocol: '5', reconnectMs: 5000 });
    track(link);
    await link.start(signal);
    expect(link.health()).toMatchObject({ ok: false, state: 'refused', detail: { protocol: '5', lastErrorCode: 'MQTT_CONNECT_FAILED', reasonCode: 1 } });
  });
});
