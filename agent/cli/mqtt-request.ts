import crypto from 'node:crypto';
import fs from 'node:fs';
import mqtt, { type IClientOptions } from 'mqtt';
import type { AgentConfig } from '../config/schema.js';
import { AgentError, errorMessage } from '../errors.js';
import type { CommandReply } from '../mqtt/command-schemas.js';
import { deviceTopics } from '../mqtt/topics.js';

export interface CommandTarget {
  /** The broker: --broker, else the config's mqtt.url, else its embedded broker's address. */
  url: string;
  /** The device namespace, or 'fleet' for <prefix>/fleet/cmd/... */
  deviceId: string;
  prefix: string;
  options: IClientOptions;
}

/** The broker and credentials a CLI command uses to reach a device, from its config and the command line. */
export function commandTarget(config: AgentConfig, overrides: { broker?: string | undefined; device?: string | undefined; fleet?: boolean }): CommandTarget {
  const { mqtt: settings } = config;
  const url = overrides.broker ?? settings.url ?? `mqtt://${settings.embeddedBroker.host}:${settings.embeddedBroker.port}`;
  const options: IClientOptions = {
    clientId: `cctv-cli-${crypto.randomUUID().slice(0, 8)}`,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    protocolVersion: 4,
  };
  if (settings.username !== undefined) options.username = settings.username;
  if (settings.password !== undefined) options.password = settings.password;
  if (settings.tls) {
    const read = (file: string | undefined): Buffer | undefined => (file === undefined ? undefined : fs.readFileSync(file));
    const ca = read(settings.tls.caFile);
    const cert = read(settings.tls.certFile);
    const key = read(settings.tls.keyFile);
    if (ca) options.ca = ca;
    if (cert) options.cert = cert;
    if (key) options.key = key;
    options.rejectUnauthorized = settings.tls.rejectUnauthorized;
  }
  return { url, deviceId: overrides.fleet ? 'fleet' : (overrides.device ?? config.deviceId), prefix: settings.topicPrefix, options };
}

/**
 * Sends one command request and waits for its reply (paired by requestId) on
 * <prefix>/<device>/cmd/<name>/reply. Fleet commands are answered by every device: `replies`
 * collects for `collectMs` instead of returning at the first.
 */
export async function sendCommand(
  target: CommandTarget,
  name: string,
  args: unknown,
  options: { timeoutMs?: number; collectMs?: number } = {},
): Promise<CommandReply[]> {
  const topics = deviceTopics(target.prefix, target.deviceId);
  let client: mqtt.MqttClient;
  try {
    client = await mqtt.connectAsync(target.url, target.options);
  } catch (error) {
    throw new AgentError('MQTT_CONNECT_FAILED', `cannot reach the broker ${target.url}: ${errorMessage(error)}`, { cause: error });
  }
  try {
    const requestId = crypto.randomUUID();
    const replies: CommandReply[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          replies.length > 0
            ? resolve()
            : reject(
                new AgentError(
                  'COMMAND_FAILED',
                  `no reply to ${name} from ${target.deviceId} within ${options.timeoutMs ?? 15_000} ms: is the agent running and connected to ${target.url}?`,
                ),
              ),
        options.timeoutMs ?? 15_000,
      );
      client.on('message', (_topic, payload) => {
        const reply = JSON.parse(payload.toString()) as CommandReply;
        if (reply.requestId !== requestId) return;
        replies.push(reply);
        if (options.collectMs === undefined) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await client.subscribeAsync(topics.commandReply(name), { qos: 1 });
    await client.publishAsync(topics.command(name), JSON.stringify({ requestId, args }), { qos: 1 });
    if (options.collectMs !== undefined) {
      await Promise.race([done.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, options.collectMs))]);
      if (replies.length === 0) await done;
    } else {
      await done;
    }
    return replies;
  } finally {
    await client.endAsync(true);
  }
}
