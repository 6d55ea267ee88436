import type { AgentConfig } from '../config/schema.js';
import type { Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import { CommandRouter } from '../mqtt/commands.js';
import { EmbeddedBroker } from '../mqtt/embedded-broker.js';
import { MqttLink } from '../mqtt/mqtt-link.js';
import { OutboxDrain } from '../mqtt/outbox-drain.js';
import type { DeviceTopics } from '../mqtt/topics.js';
import type { OutboxReader } from '../storage/outbox.js';

/** The broker side: the embedded broker when none is configured, the link, the outbox drain, the command router. */
export interface LinkPart {
  link: MqttLink;
  drain: OutboxDrain;
  /** Register command handlers here before start. Undefined when mqtt.commands.enabled is false. */
  commands: CommandRouter | undefined;
  /** In start order: [broker,] and then the rest (started after storage by the root). */
  broker: Service | undefined;
  services: Service[];
}

/** Undefined when MQTT is off (mqtt.enabled: false): results are then only stored. */
export function buildLink(config: AgentConfig, topics: DeviceTopics, outbox: () => OutboxReader, log: Logger): LinkPart | undefined {
  if (!config.mqtt.enabled) return undefined;
  let brokerUrl: () => string = () => config.mqtt.url!;
  let broker: EmbeddedBroker | undefined;
  if (config.mqtt.url === undefined) {
    const embedded = new EmbeddedBroker(config.mqtt.embeddedBroker.host, config.mqtt.embeddedBroker.port, log.child({ module: 'broker' }));
    broker = embedded;
    brokerUrl = () => embedded.url;
  }
  const link = new MqttLink({
    url: brokerUrl,
    // aedes speaks 3.1.1 only: no need to be refused first.
    config: config.mqtt.url === undefined && config.mqtt.protocol === 'auto' ? { ...config.mqtt, protocol: '3.1.1' } : config.mqtt,
    clientId: config.mqtt.clientId ?? `cctv-${config.deviceId}`,
    availabilityTopic: topics.availability,
    log: log.child({ module: 'mqtt' }),
  });
  const drain = new OutboxDrain({ outbox, publisher: link, batchSize: config.mqtt.publishBatch, log: log.child({ module: 'outbox' }) });
  const commands = config.mqtt.commands.enabled
    ? new CommandRouter({ topics, maxPayloadBytes: config.mqtt.commands.maxPayloadBytes, transport: link, log: log.child({ module: 'commands' }) })
    : undefined;
  return { link, drain, commands, broker, services: [link, drain, ...(commands ? [commands] : [])] };
}
