/**
 * Every topic of one device, namespaced <prefix>/<deviceId>/... so a fleet can share a broker.
 * docs/mqtt.md documents each; this is the only place that spells them.
 */
export interface DeviceTopics {
  base: string;
  availability: string;
  results: string;
  telemetry: string;
  events: string;
  alerts: string;
  quality: string;
  drift: string;
  retrain: string;
  modelState: string;
  /** Interval counts and count comparisons (issue #18). */
  counts: string;
  /** The subscription for incoming commands: <base>/cmd/+ */
  commandFilter: string;
  command(name: string): string;
  commandReply(name: string): string;
}

export function deviceTopics(prefix: string, deviceId: string): DeviceTopics {
  const base = `${prefix}/${deviceId}`;
  return {
    base,
    availability: `${base}/availability`,
    results: `${base}/results`,
    telemetry: `${base}/telemetry`,
    events: `${base}/events`,
    alerts: `${base}/alerts`,
    quality: `${base}/quality`,
    drift: `${base}/drift`,
    retrain: `${base}/retrain`,
    modelState: `${base}/model/state`,
    counts: `${base}/counts`,
    commandFilter: `${base}/cmd/+`,
    command: (name) => `${base}/cmd/${name}`,
    commandReply: (name) => `${base}/cmd/${name}/reply`,
  };
}

/**
 * The fleet's shared topics, <prefix>/fleet/...: a request every device may act on (feedback
 * whose results it holds, a model announcement), and where every device's retrain request is
 * repeated for a training pipeline that watches the whole fleet.
 */
export interface FleetTopics {
  base: string;
  retrain: string;
  /** The subscription for fleet-wide commands: <prefix>/fleet/cmd/+ */
  commandFilter: string;
  command(name: string): string;
  /** A retained model announcement per model id: <prefix>/fleet/models/<modelId>. */
  model(modelId: string): string;
  modelFilter: string;
}

export function fleetTopics(prefix: string): FleetTopics {
  const base = `${prefix}/fleet`;
  return {
    base,
    retrain: `${base}/retrain`,
    commandFilter: `${base}/cmd/+`,
    command: (name) => `${base}/cmd/${name}`,
    model: (modelId) => `${base}/models/${modelId}`,
    modelFilter: `${base}/models/+`,
  };
}

/** MQTT topic filter matching (`+` one level, `#` the rest), for dispatching received messages. */
export function topicMatches(filter: string, topic: string): boolean {
  const filterLevels = filter.split('/');
  const topicLevels = topic.split('/');
  for (let i = 0; i < filterLevels.length; i++) {
    const level = filterLevels[i]!;
    if (level === '#') return true;
    if (i >= topicLevels.length) return false;
    if (level !== '+' && level !== topicLevels[i]) return false;
  }
  return filterLevels.length === topicLevels.length;
}

/** The name of the command a message on <base>/cmd/<name> asks for, or undefined for any other topic. */
export function commandName(topics: DeviceTopics, topic: string): string | undefined {
  const prefix = `${topics.base}/cmd/`;
  if (!topic.startsWith(prefix)) return undefined;
  const name = topic.slice(prefix.length);
  return name.includes('/') ? undefined : name;
}

/**
 * May a command's MQTT 5 response topic be used for the reply? Only inside the device's own
 * namespace (a sender must not make the device publish on another device's or the fleet's
 * topics, and a broker ACL that grants the device its namespace only would refuse it, or
 * disconnect the device, as some clustered brokers do); never the command subscription itself
 * (the device would answer its own reply, forever); never a topic the device publishes data
 * on (consumers parse those); never a wildcard (not a valid topic to publish on).
 */
export function isAllowedResponseTopic(topics: DeviceTopics, topic: string): boolean {
  if (!topic.startsWith(`${topics.base}/`) || topic.length > 1024) return false;
  if (topic.includes('+') || topic.includes('#') || topic.includes('\u0000')) return false;
  if (topicMatches(topics.commandFilter, topic)) return false;
  return ![
    topics.availability,
    topics.results,
    topics.telemetry,
    topics.events,
    topics.alerts,
    topics.quality,
    topics.drift,
    topics.retrain,
    topics.modelState,
    topics.counts,
  ].includes(topic);
}

// Model updates (agent/models/): a push's chunks, acknowledgements and outcome, under the device's namespace.
export interface ModelPushTopics {
  /** The device's subscription for every push's chunks: <base>/model/push/+/chunk/+ */
  chunkFilter: string;
  chunk(transferId: string, index: number): string;
  ack(transferId: string): string;
  result(transferId: string): string;
}

export function modelPushTopics(topics: DeviceTopics): ModelPushTopics {
  const push = `${topics.base}/model/push`;
  return {
    chunkFilter: `${push}/+/chunk/+`,
    chunk: (transferId, index) => `${push}/${transferId}/chunk/${index}`,
    ack: (transferId) => `${push}/${transferId}/ack`,
    result: (transferId) => `${push}/${transferId}/result`,
  };
}
