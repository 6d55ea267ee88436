import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { mqttSchema, type MqttConfig } from '../../agent/config/schema.js';
import type { Logger } from '../../agent/log/logger.js';
import { MqttLink } from '../../agent/mqtt/mqtt-link.js';
import { deviceTopics } from '../../agent/mqtt/topics.js';
import { captureLogger } from '../support/capture-log.js';

export const topics = deviceTopics('cctv', 'dev1');

export interface LinkUnderTest {
  link: MqttLink;
  config: MqttConfig;
  /** Parsed JSON log lines. */
  logs: () => Array<Record<string, unknown>>;
  log: Logger;
}

/** An MqttLink as agent/daemon.ts builds it, for device "dev1", with its log captured. */
export function makeLink(url: string, mqttKeys: Record<string, unknown> = {}, random?: () => number): LinkUnderTest {
  const { log, lines } = captureLogger();
  const config = mqttSchema.parse({ url, ...mqttKeys });
  const link = new MqttLink({
    url: () => url,
    config,
    clientId: `cctv-dev1-${process.pid}`,
    availabilityTopic: topics.availability,
    log,
    ...(random ? { random } : {}),
  });
  return { link, config, log, logs: () => lines().map((line) => JSON.parse(line) as Record<string, unknown>) };
}

export interface Received {
  topic: string;
  payload: Buffer;
  packet: IPublishPacket;
  at: number;
}

/** A watching client that records everything it receives. */
export async function watcher(url: string, filters: string[], options: IClientOptions = {}): Promise<{ client: MqttClient; received: Received[] }> {
  const client = await mqtt.connectAsync(url, { clientId: `watcher-${Math.random().toString(36).slice(2)}`, reconnectPeriod: 200, ...options });
  const received: Received[] = [];
  client.on('message', (topic, payload, packet) => received.push({ topic, payload, packet, at: Date.now() }));
  await client.subscribeAsync(filters, { qos: 1 });
  return { client, received };
}

export { sleep, waitFor } from '../support/wait.js';
