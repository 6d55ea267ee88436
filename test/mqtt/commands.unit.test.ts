import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { pingCommandHandler, statusCommandHandler } from '../../agent/mqtt/builtin-commands.js';
import { commandReplySchema } from '../../agent/mqtt/command-schemas.js';
import { CommandRouter, defineCommand, type CommandTransport } from '../../agent/mqtt/commands.js';
import { classifyConnectFailure } from '../../agent/mqtt/connect-failure.js';
import type { IncomingMessage } from '../../agent/mqtt/mqtt-link.js';
import { deviceTopics, isAllowedResponseTopic, topicMatches } from '../../agent/mqtt/topics.js';
import { captureLogger } from '../support/capture-log.js';

const topics = deviceTopics('cctv', 'dev1');

function router(extra: (r: CommandRouter) => void = () => undefined): { router: CommandRouter; lines: () => string[] } {
  const { log, lines } = captureLogger();
  const r = new CommandRouter({ topics, maxPayloadBytes: 256, log, handlerTimeoutMs: 200 });
  r.register(
    'ping',
    pingCommandHandler(() => new Date('2026-01-02T03:04:05.000Z')),
  ).register(
    'status',
    statusCommandHandler(() => ({ mqtt: { ok: true, state: 'connected' } })),
  );
  extra(r);
  return { router: r, lines };
}

const send = (r: CommandRouter, name: string, payload: string | Buffer, retain = false) =>
  r.handle(name, { payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload), retain });

describe('command router (no broker)', () => {
  it('answers ping and status, echoing the request id', async () => {
    const { router: r } = router();
    expect(await send(r, 'ping', '{"requestId":"r1"}')).toEqual({
      requestId: 'r1',
      command: 'ping',
      ok: true,
      result: { pong: true, at: '2026-01-02T03:04:05.000Z' },
    });
    expect(await send(r, 'status', '{"args":{}}')).toEqual({
      requestId: null,
      command: 'status',
      ok: true,
      result: { mqtt: { ok: true, state: 'connected' } },
    });
  });

  it.each([
    ['oversized, checked before decoding', 'ping', Buffer.alloc(257, 0xff), 'COMMAND_TOO_LARGE', /257 bytes.*256/],
    ['empty payload', 'ping', '', 'COMMAND_INVALID_JSON', /empty/],
    ['not UTF-8', 'ping', Buffer.from([0x7b, 0xc3, 0x28, 0x7d]), 'COMMAND_INVALID_JSON', /UTF-8/],
    ['not JSON', 'ping', '{requestId: 1', 'COMMAND_INVALID_JSON', /not JSON/],
    ['an array', 'ping', '[]', 'COMMAND_INVALID_JSON', /an array/],
    ['null', 'ping', 'null', 'COMMAND_INVALID_JSON', /null/],
    ['a string', 'ping', '"ping"', 'COMMAND_INVALID_JSON', /a string/],
    ['unknown envelope field', 'ping', '{"requestId":"a","cmd":"x"}', 'COMMAND_INVALID', /unknown field "cmd"/],
    ['wrong requestId type', 'ping', '{"requestId":7}', 'COMMAND_INVALID', /requestId/],
    ['requestId too long', 'ping', JSON.stringify({ requestId: 'x'.repeat(129) }), 'COMMAND_INVALID', /requestId/],
    ['args not an object', 'ping', '{"args":[1]}', 'COMMAND_INVALID', /args/],
    ['unknown argument', 'ping', '{"args":{"verbose":true}}', 'COMMAND_INVALID', /unknown field "args.verbose"/],
    ['__proto__ key', 'ping', '{"__proto__":{"x":1}}', 'COMMAND_INVALID', /__proto__/],
    ['unknown command', 'reboot', '{}', 'COMMAND_UNKNOWN', /known: ping, status/],
  ])('%s -> %s', async (_label, name, payload, code, message) => {
    const { router: r } = router();
    const reply = await send(r, name, payload);
    expect(commandReplySchema.parse(reply)).toMatchObject({ command: name, ok: false, code });
    expect(reply.message).toMatch(message);
  });

  it('keeps a valid request id in error replies, refuses retained commands, and reports handler failures', async () => {
    const { router: r } = router((r) => {
      r.register(
        'explode',
        defineCommand({
          description: '',
          args: z.strictObject({}),
          run: async () => {
            throw new Error('boom');
          },
        }),
      );
      r.register('hang', defineCommand({ description: '', args: z.strictObject({}), run: () => new Promise(() => undefined) }));
      r.register('bigint', defineCommand({ description: '', args: z.strictObject({}), run: async () => 1n }));
      r.register('echo', defineCommand({ description: '', args: z.strictObject({ n: z.number().int() }), run: async ({ n }) => ({ n }) }));
    });
    expect(await send(r, 'ping', '{"requestId":"keep","x":1}')).toMatchObject({ requestId: 'keep', code: 'COMMAND_INVALID' });
    expect(await send(r, 'ping', '{}', true)).toMatchObject({ code: 'COMMAND_INVALID', message: expect.stringMatching(/retained/) });
    expect(await send(r, 'explode', '{}')).toMatchObject({ ok: false, code: 'COMMAND_FAILED', message: 'boom' });
    expect(await send(r, 'hang', '{}')).toMatchObject({ ok: false, code: 'COMMAND_FAILED', message: expect.stringMatching(/within 200 ms/) });
    expect(await send(r, 'bigint', '{}')).toMatchObject({ ok: false, code: 'COMMAND_FAILED' });
    expect(await send(r, 'echo', '{"args":{"n":"1"}}')).toMatchObject({ ok: false, code: 'COMMAND_INVALID', message: expect.stringMatching(/^args\.n: /) });
    expect(await send(r, 'echo', '{"args":{"n":3}}')).toMatchObject({ ok: true, result: { n: 3 } });
    expect(r.health().detail).toMatchObject({ received: 7, answered: 7, rejected: { COMMAND_INVALID: 3, COMMAND_FAILED: 3 } });
  });

  it('logs rejections at most once a minute, whatever the flood', async () => {
    const { router: r, lines } = router();
    for (let i = 0; i < 100; i++) await send(r, 'ping', 'garbage');
    expect(lines().filter((line) => line.includes('command rejected'))).toHaveLength(1);
    expect(r.health().detail).toMatchObject({ rejected: { COMMAND_INVALID_JSON: 100 } });
  });

  it('refuses handlers registered after start, and bad names', async () => {
    const { router: r } = router();
    expect(() => r.register('Bad Name', pingCommandHandler())).toThrow();
    const transport: CommandTransport = { subscribe: () => undefined, reply: async () => undefined };
    const started = new CommandRouter({ topics, maxPayloadBytes: 64, log: captureLogger().log, transport });
    await started.start();
    expect(() => started.register('late', pingCommandHandler())).toThrow(/after start/);
  });

  it('replies on the default topic, or on an MQTT 5 response topic inside the namespace only', async () => {
    const replies: Array<{ topic: string; payload: unknown; correlationData: string | undefined }> = [];
    let deliver: (message: IncomingMessage) => void = () => undefined;
    const transport: CommandTransport = {
      subscribe: (filter, listener) => {
        expect(filter).toBe('cctv/dev1/cmd/+');
        deliver = listener;
      },
      reply: async (topic, payload, correlationData) => {
        replies.push({ topic, payload: JSON.parse(payload.toString()), correlationData: correlationData?.toString() });
      },
    };
    const r = new CommandRouter({ topics, maxPayloadBytes: 256, log: captureLogger().log, transport }).register('ping', pingCommandHandler());
    await r.start();
    const request = (responseTopic?: string): void =>
      deliver({
        topic: 'cctv/dev1/cmd/ping',
        payload: Buffer.from('{}'),
        retain: false,
        ...(responseTopic ? { responseTopic } : {}),
        correlationData: Buffer.from('c1'),
      });
    request();
    request('cctv/dev1/replies/app-7');
    request('cctv/dev2/replies/app-7');
    request('cctv/dev1/cmd/ping');
    request('cctv/dev1/results');
    deliver({ topic: 'cctv/dev1/cmd/ping/extra', payload: Buffer.from('{}'), retain: false });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(replies.map((reply) => reply.topic)).toEqual([
      'cctv/dev1/cmd/ping/reply',
      'cctv/dev1/replies/app-7',
      'cctv/dev1/cmd/ping/reply',
      'cctv/dev1/cmd/ping/reply',
      'cctv/dev1/cmd/ping/reply',
    ]);
    expect(replies.every((reply) => reply.correlationData === 'c1')).toBe(true);
  });
});

describe('topics, backoff, failure classes', () => {
  it('matches filters and allows response topics only inside the namespace', () => {
    expect(topicMatches('a/+/c', 'a/b/c')).toBe(true);
    expect(topicMatches('a/+', 'a/b/c')).toBe(false);
    expect(topicMatches('a/#', 'a/b/c')).toBe(true);
    expect(topicMatches('a/+', 'a/')).toBe(true);
    expect(isAllowedResponseTopic(topics, 'cctv/dev1/cmd/ping/reply/x')).toBe(true);
    expect(isAllowedResponseTopic(topics, 'cctv/dev1/cmd/other')).toBe(false);
    expect(isAllowedResponseTopic(topics, 'cctv/dev1/a/+')).toBe(false);
    expect(isAllowedResponseTopic(topics, 'cctv/dev10/x')).toBe(false);
    expect(isAllowedResponseTopic(topics, 'cctv/dev1/availability')).toBe(false);
  });

  it('sorts connect failures by code, never by message', () => {
    const withCode = (code: unknown): Error => Object.assign(new Error('whatever'), { code });
    expect(classifyConnectFailure(withCode(135))).toMatchObject({ state: 'auth-failed', code: 'MQTT_AUTH_FAILED', reasonCode: 135 });
    expect(classifyConnectFailure(withCode(4))).toMatchObject({ state: 'auth-failed' });
    expect(classifyConnectFailure(withCode(1))).toMatchObject({ protocolRefused: true });
    expect(classifyConnectFailure(withCode(132))).toMatchObject({ protocolRefused: true });
    expect(classifyConnectFailure(withCode(138))).toMatchObject({ state: 'refused', code: 'MQTT_CONNECT_FAILED' });
    expect(classifyConnectFailure(withCode('SELF_SIGNED_CERT_IN_CHAIN'))).toMatchObject({ state: 'tls-failed', code: 'MQTT_TLS_FAILED' });
    expect(classifyConnectFailure(withCode('ERR_SSL_WRONG_VERSION_NUMBER'))).toMatchObject({ state: 'tls-failed' });
    expect(classifyConnectFailure(withCode('ECONNREFUSED'))).toMatchObject({ state: 'unreachable', code: 'MQTT_CONNECT_FAILED' });
    expect(classifyConnectFailure(new Error('connack timeout'))).toMatchObject({ state: 'unreachable' });
  });
});
