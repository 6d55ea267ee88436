import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { pingCommandHandler, statusCommandHandler } from '../../agent/mqtt/builtin-commands.js';
import { commandReplySchema, type CommandErrorCode, type CommandReply } from '../../agent/mqtt/command-schemas.js';
import { CommandRouter } from '../../agent/mqtt/commands.js';
import type { MqttLink } from '../../agent/mqtt/mqtt-link.js';
import { startMosquitto, type MosquittoHandle } from '../support/mosquitto.js';
import { captureLogger } from '../support/capture-log.js';
import { makeLink, sleep, topics, waitFor, watcher, type Received } from './harness.js';

const MAX_PAYLOAD = 4096;

interface Case {
  label: string;
  command: string;
  payload: Buffer;
  code: CommandErrorCode;
}

/** A small deterministic generator (mulberry32), so a failing case can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function malformedCases(): Case[] {
  const rnd = random(5);
  const int = (n: number): number => Math.floor(rnd() * n);
  const cases: Case[] = [];
  const add = (label: string, payload: string | Buffer, code: CommandErrorCode, command = int(2) === 0 ? 'ping' : 'status'): void => {
    cases.push({ label, command, payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload), code });
  };
  const json = (value: unknown): string => JSON.stringify(value);
  for (let i = 0; i < 30; i++) {
    // Invalid JSON: truncated objects, bare words, trailing commas, single quotes.
    const broken = [
      '{',
      '{"requestId":',
      `{"requestId":"r${i}"`,
      "{'requestId':'x'}",
      '{"a":1,}',
      'ping',
      `{"args":{${i}}}`,
      '}{',
      'NaN',
      '{"requestId":"x"}}',
    ];
    add(`invalid JSON ${i}`, broken[i % broken.length]!, 'COMMAND_INVALID_JSON');
  }
  for (let i = 0; i < 25; i++) {
    // JSON that is not an object.
    const values = [[], [1, 2], null, 42, -1.5, true, false, '"a string"', [{ requestId: 'x' }], 0];
    const value = values[i % values.length];
    add(`not an object ${i}`, typeof value === 'string' ? value : json(value), 'COMMAND_INVALID_JSON');
  }
  for (let i = 0; i < 30; i++) {
    // Binary garbage: invalid UTF-8 guaranteed by a leading 0xff, then random bytes.
    const bytes = Buffer.alloc(1 + int(512));
    for (let b = 0; b < bytes.length; b++) bytes[b] = int(256);
    bytes[0] = 0xff;
    add(`binary garbage ${i}`, bytes, 'COMMAND_INVALID_JSON');
  }
  for (let i = 0; i < 5; i++) add(`empty payload ${i}`, Buffer.alloc(0), 'COMMAND_INVALID_JSON');
  for (let i = 0; i < 25; i++) {
    // Oversized: just over the limit up to far over, valid JSON or not.
    const size = MAX_PAYLOAD + 1 + int(i < 5 ? 4 : 60_000);
    const payload = i % 2 === 0 ? Buffer.alloc(size, 0x61) : Buffer.from(json({ requestId: 'big', args: { pad: 'x'.repeat(size) } }));
    add(`oversized ${size} bytes`, payload, 'COMMAND_TOO_LARGE');
  }
  for (let i = 0; i < 30; i++) {
    // Wrong types in the envelope.
    const values = [1, 0.5, true, null, {}, [], ['a'], { id: 1 }];
    const value = values[i % values.length];
    add(`wrong type requestId ${i}`, json({ requestId: value }), 'COMMAND_INVALID');
    if (i % 2 === 0) add(`wrong type args ${i}`, json({ requestId: `t${i}`, args: i % 4 === 0 ? 'text' : [1, 2] }), 'COMMAND_INVALID');
  }
  for (let i = 0; i < 20; i++) add(`requestId of ${129 + i} chars`, json({ requestId: 'r'.repeat(129 + i) }), 'COMMAND_INVALID');
  for (let i = 0; i < 25; i++) {
    // Unknown fields, in the envelope and in the (strict) arguments.
    add(
      `unknown field ${i}`,
      json(i % 2 === 0 ? { requestId: `u${i}`, [`field${i}`]: i } : { requestId: `u${i}`, args: { [`arg${i}`]: true } }),
      'COMMAND_INVALID',
    );
  }
  for (let i = 0; i < 20; i++) {
    // Deeply nested JSON, as args (an unknown field) or as the whole payload (an array).
    const depth = 200 + int(400); // under the size limit: depth is what is tested here
    if (i % 2 === 0) add(`nested ${depth} deep in args`, `{"args":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`, 'COMMAND_INVALID');
    else add(`nested ${depth} deep array`, `${'['.repeat(depth)}${']'.repeat(depth)}`, 'COMMAND_INVALID_JSON');
  }
  for (let i = 0; i < 25; i++) {
    // Unknown commands with a valid envelope; names with spaces, capitals, unicode, dots.
    const names = ['reboot', 'PING', 'ping ', 'Status', 'shell', 'rm -rf', 'ünïcode', 'a.b', 'x'.repeat(100), ''];
    add(`unknown command ${i}`, json({ requestId: `c${i}` }), 'COMMAND_UNKNOWN', names[i % names.length]!);
  }
  return cases;
}

describe('commands against a real mosquitto: a malformed flood', () => {
  let broker: MosquittoHandle;
  let link: MqttLink;
  let router: CommandRouter;
  let requester: MqttClient;
  let replies: Received[];

  beforeAll(async () => {
    broker = await startMosquitto();
    const made = makeLink(broker.url, { commands: { maxPayloadBytes: MAX_PAYLOAD } });
    link = made.link;
    router = new CommandRouter({ topics, maxPayloadBytes: made.config.commands.maxPayloadBytes, transport: link, log: captureLogger().log });
    router.register('ping', pingCommandHandler()).register(
      'status',
      statusCommandHandler(() => ({ mqtt: link.health(), commands: router.health() })),
    );
    await link.start(new AbortController().signal);
    await router.start();
    ({ client: requester, received: replies } = await watcher(broker.url, [`${topics.base}/cmd/+/reply`, `${topics.base}/replies/#`], { protocolVersion: 5 }));
    await sleep(200); // the link's SUBACK
  });

  afterAll(async () => {
    await requester?.endAsync(true);
    await router?.stop();
    await link?.stop();
    await broker?.stop();
  });

  const correlation = (reply: Received): string | undefined => reply.packet.properties?.correlationData?.toString();

  it('answers every malformed request exactly once with the right code, and keeps serving', async () => {
    const cases = malformedCases();
    expect(cases.length).toBeGreaterThanOrEqual(200);
    for (const [index, request] of cases.entries()) {
      await requester.publishAsync(topics.command(request.command), request.payload, { qos: 1, properties: { correlationData: Buffer.from(String(index)) } });
    }
    await waitFor(() => replies.length >= cases.length, 30_000, `${cases.length} replies (have ${replies.length})`);
    await sleep(500); // any extra reply would show up now
    expect(replies).toHaveLength(cases.length);
    const byIndex = new Map<number, { topic: string; reply: CommandReply }>();
    for (const reply of replies) {
      const index = Number(correlation(reply));
      expect(byIndex.has(index), `a second reply to case ${index}`).toBe(false);
      byIndex.set(index, { topic: reply.topic, reply: commandReplySchema.parse(JSON.parse(reply.payload.toString())) });
    }
    const wrong: string[] = [];
    cases.forEach((request, index) => {
      const got = byIndex.get(index);
      if (!got || got.reply.ok || got.reply.code !== request.code || got.topic !== topics.commandReply(request.command)) {
        wrong.push(`${index} ${request.label}: expected ${request.code}, got ${JSON.stringify(got?.reply)} on ${got?.topic}`);
      }
    });
    expect(wrong).toEqual([]);
    expect(link.health().detail).toMatchObject({ connects: 1 });
    expect(router.health().detail).toMatchObject({ received: cases.length, answered: cases.length, repliesLost: 0 });

    // Still serving: ping and status, on the default topic and on an MQTT 5 response topic.
    replies.length = 0;
    await requester.publishAsync(topics.command('ping'), Buffer.from('{"requestId":"after"}'), { qos: 1 });
    await requester.publishAsync(topics.command('status'), Buffer.from('{}'), {
      qos: 1,
      properties: { responseTopic: `${topics.base}/replies/app`, correlationData: Buffer.from('s1') },
    });
    await waitFor(() => replies.length === 2, 5000, 'ping and status replies');
    const ping = replies.find((reply) => reply.topic === topics.commandReply('ping'))!;
    expect(JSON.parse(ping.payload.toString())).toMatchObject({ requestId: 'after', command: 'ping', ok: true, result: { pong: true } });
    const status = replies.find((reply) => reply.topic === `${topics.base}/replies/app`)!;
    expect(correlation(status)).toBe('s1');
    expect(JSON.parse(status.payload.toString())).toMatchObject({
      command: 'status',
      ok: true,
      result: { mqtt: { state: 'connected' }, commands: { state: 'listening' } },
    });
    console.log(`${cases.length} malformed commands: one error reply each; rejected by code ${JSON.stringify(router.health().detail!['rejected'])}`);
  });

  it('a retained command is not run at subscribe time (MQTT 5 retain handling)', async () => {
    await requester.publishAsync(topics.command('ping'), Buffer.from('{"requestId":"stale"}'), { qos: 1, retain: true });
    replies.length = 0;
    // The live delivery of a retained publish is a normal request (retain flag cleared)...
    await waitFor(() => replies.length === 1, 5000, 'the live reply');
    // ...but after a reconnect the stale copy is not delivered again.
    await broker.restart();
    await waitFor(() => link.connected && requester.connected, 10_000, 'reconnects');
    await sleep(500);
    expect(replies.map((reply) => JSON.parse(reply.payload.toString()).requestId)).toEqual(['stale']);
    await requester.publishAsync(topics.command('ping'), Buffer.alloc(0), { qos: 1, retain: true }); // clears it
  });
});
