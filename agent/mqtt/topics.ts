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
  modelState: string;
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
    modelState: `${base}/model/state`,
    command: (name) => `${base}/cmd/${name}`,
    commandReply: (name) => `${base}/cmd/${name}/reply`,
  };
}
