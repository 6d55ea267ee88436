import crypto from 'node:crypto';
import fs from 'node:fs';
import mqtt, { type IClientOptions } from 'mqtt';
import { sha256File } from '../common/checksum.js';
import { AgentError, type ErrorCode, errorFixes, errorMessage } from '../errors.js';
import type { CommandReply } from '../mqtt/command-schemas.js';
import { deviceTopics, modelPushTopics } from '../mqtt/topics.js';
import { encodeChunk, type PushAck, type PushResult, transferIdOf } from './push-protocol.js';

export interface PushTarget {
  url: string;
  prefix: string;
  deviceId: string;
  options: IClientOptions;
}

export interface PushOptions {
  chunkSize?: number;
  activate?: boolean;
  /** A chunk not acknowledged within this is sent again. */
  ackTimeoutMs?: number;
  /** How long to wait for verification and activation after the last chunk. */
  resultTimeoutMs?: number;
  onProgress?: (progress: { deviceId: string; ackedBytes: number; size: number; chunksSent: number }) => void;
}

export interface PushOutcome {
  deviceId: string;
  transferId: string;
  size: number;
  sha256: string;
  chunks: number;
  /** Chunks sent this time (fewer than `chunks` when resuming, more when some were sent again). */
  chunksSent: number;
  resent: number;
  transferMs: number;
  totalMs: number;
  result: PushResult;
}

const MAX_RETRIES_PER_CHUNK = 5;
const MAX_ROUNDS = 3;

function codeOf(reply: CommandReply): ErrorCode {
  const code = reply.code ?? 'COMMAND_FAILED';
  return (code in errorFixes ? code : 'COMMAND_FAILED') as ErrorCode;
}

/**
 * Pushes a bundle to one device over MQTT: announces it, sends the chunks the device says it
 * lacks with at most `window` unacknowledged (the acks pace it; an unacknowledged or refused
 * chunk is sent again), ends the push and waits for the device's verdict.
 */
export async function pushBundle(bundle: string, target: PushTarget, options: PushOptions = {}): Promise<PushOutcome> {
  const started = Date.now();
  const size = fs.statSync(bundle).size;
  const sha256 = await sha256File(bundle);
  const chunkSize = options.chunkSize ?? 256 * 1024;
  const chunks = Math.ceil(size / chunkSize);
  const transferId = transferIdOf(sha256);
  const device = deviceTopics(target.prefix, target.deviceId);
  const push = modelPushTopics(device);
  let client: mqtt.MqttClient;
  try {
    client = await mqtt.connectAsync(target.url, { ...target.options, clientId: `cctv-push-${crypto.randomUUID().slice(0, 8)}` });
  } catch (error) {
    throw new AgentError('MQTT_CONNECT_FAILED', `cannot reach the broker ${target.url}: ${errorMessage(error)}`, { cause: error });
  }
  const fd = fs.openSync(bundle, 'r');
  const pending = new Map<string, (reply: CommandReply) => void>();
  let onAck: (ack: PushAck) => void = () => undefined;
  let onResult: (result: PushResult) => void = () => undefined;
  client.on('message', (topic, payload) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload.toString());
    } catch {
      return; // not one of ours
    }
    if (topic === push.ack(transferId)) onAck(parsed as PushAck);
    else if (topic === push.result(transferId)) onResult(parsed as PushResult);
    else {
      const reply = parsed as CommandReply;
      if (reply.requestId) pending.get(reply.requestId)?.(reply);
    }
  });
  const request = (name: string, args: unknown): Promise<CommandReply> =>
    new Promise((resolve, reject) => {
      const requestId = crypto.randomUUID();
      const timer = setTimeout(() => {
        pending.delete(requestId);
        reject(new AgentError('COMMAND_FAILED', `no reply to ${name} from ${target.deviceId} within 30 s: is the agent running and connected?`));
      }, 30_000);
      pending.set(requestId, (reply) => {
        clearTimeout(timer);
        pending.delete(requestId);
        resolve(reply);
      });
      client.publish(device.command(name), JSON.stringify({ requestId, args }), { qos: 1 });
    });
  try {
    await client.subscribeAsync(
      [device.commandReply('model-push-begin'), device.commandReply('model-push-end'), push.ack(transferId), push.result(transferId)],
      { qos: 1 },
    );
    const result = new Promise<PushResult>((resolve) => {
      onResult = resolve;
    });
    let chunksSent = 0;
    let resent = 0;
    const transferStarted = Date.now();
    for (let round = 0; ; round++) {
      const begin = await request('model-push-begin', { transferId, size, sha256, chunkSize, chunks, activate: options.activate ?? true });
      if (!begin.ok) throw new AgentError(codeOf(begin), `${target.deviceId}: ${begin.message ?? 'push refused'}`);
      const { missing, window } = begin.result as { missing: number[]; window: number };
      const sent = await sendChunks(missing, window);
      chunksSent += sent.sent;
      resent += sent.resent;
      const end = await request('model-push-end', { transferId });
      if (end.ok) break;
      if (end.code !== 'MODEL_PUSH_CHUNK_MISSING' || round + 1 >= MAX_ROUNDS)
        throw new AgentError(codeOf(end), `${target.deviceId}: ${end.message ?? 'push refused'}`);
    }
    const transferMs = Date.now() - transferStarted;
    const resultTimeout = options.resultTimeoutMs ?? 120_000;
    const verdict = await Promise.race([
      result,
      new Promise<never>((_, reject) =>
        setTimeout(
          () => reject(new AgentError('COMMAND_FAILED', `${target.deviceId}: no push result within ${resultTimeout} ms (see the retained model state)`)),
          resultTimeout,
        ).unref(),
      ),
    ]);
    return { deviceId: target.deviceId, transferId, size, sha256, chunks, chunksSent, resent, transferMs, totalMs: Date.now() - started, result: verdict };
  } finally {
    fs.closeSync(fd);
    await client.endAsync(true);
  }

  function readChunk(index: number): Buffer {
    const length = Math.min(chunkSize, size - index * chunkSize);
    const data = Buffer.alloc(length);
    fs.readSync(fd, data, 0, length, index * chunkSize);
    return data;
  }

  function sendChunks(indexes: number[], window: number): Promise<{ sent: number; resent: number }> {
    const queue = [...indexes];
    const inFlight = new Map<number, number>();
    const retries = new Map<number, number>();
    const ackTimeout = options.ackTimeoutMs ?? 10_000;
    let sent = 0;
    let again = 0;
    let acked = (chunks - indexes.length) * chunkSize;
    let failed = false;
    return new Promise((resolve, reject) => {
      const fail = (error: AgentError): void => {
        failed = true;
        clearInterval(watchdog);
        reject(error);
      };
      const pump = (): void => {
        if (failed) return;
        while (inFlight.size < window && queue.length > 0) {
          const index = queue.shift()!;
          inFlight.set(index, Date.now());
          sent++;
          client.publish(push.chunk(transferId, index), encodeChunk(readChunk(index)), { qos: 1 });
        }
        if (inFlight.size === 0 && queue.length === 0) {
          clearInterval(watchdog);
          resolve({ sent, resent: again });
        }
      };
      const retry = (index: number): void => {
        const count = (retries.get(index) ?? 0) + 1;
        if (count > MAX_RETRIES_PER_CHUNK) {
          fail(new AgentError('MODEL_PUSH_CHUNK_INVALID', `${target.deviceId}: chunk ${index} refused ${count - 1} times`));
          return;
        }
        retries.set(index, count);
        again++;
        queue.unshift(index);
      };
      onAck = (ack) => {
        if (!inFlight.has(ack.index)) return; // a late ack of a chunk already sent again
        inFlight.delete(ack.index);
        if (ack.ok) {
          acked += Math.min(chunkSize, size - ack.index * chunkSize);
          options.onProgress?.({ deviceId: target.deviceId, ackedBytes: Math.min(acked, size), size, chunksSent: sent });
        } else retry(ack.index);
        pump();
      };
      const watchdog = setInterval(() => {
        const now = Date.now();
        for (const [index, at] of inFlight)
          if (now - at > ackTimeout) {
            inFlight.delete(index);
            retry(index);
          }
        pump();
      }, 500);
      pump();
    });
  }
}
