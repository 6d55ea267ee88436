import type { AgentConfig } from '../config/schema.js';
import type { InferenceService } from '../inference/inference-service.js';
import type { Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import { feedbackCommandHandler, retrainAckCommandHandler, retrainCommandHandler } from '../monitor/monitor-commands.js';
import { type MonitorDeps, MonitorService } from '../monitor/monitor-service.js';
import { CommandRouter, type CommandTransport } from '../mqtt/commands.js';
import { type DeviceTopics, deviceTopics, fleetTopics } from '../mqtt/topics.js';
import type { StoragePart } from './storage.js';

/** Measured quality, alerts and retrain requests; its commands on the device and fleet topics. */
export interface MonitorPart {
  monitor: MonitorService;
  /** The router of <prefix>/fleet/cmd/+ (fleet feedback); undefined without a broker. */
  fleetCommands: CommandRouter | undefined;
  services: Service[];
}

export function buildMonitor(
  config: AgentConfig,
  topics: DeviceTopics,
  store: StoragePart,
  inference: InferenceService,
  link: { commands: CommandRouter | undefined; transport: CommandTransport; wake: () => void } | undefined,
  log: Logger,
  metricSources?: MonitorDeps['metricSources'],
  sourceFigures?: MonitorDeps['sourceFigures'],
): MonitorPart | undefined {
  if (!config.monitor.enabled) return undefined;
  const cameras = config.cameras.filter((camera) => camera.enabled).map((camera) => camera.id);
  const monitor = new MonitorService({
    db: () => store.storage.db,
    deviceId: config.deviceId,
    config: config.monitor,
    topics,
    fleet: fleetTopics(config.mqtt.topicPrefix),
    publishing: link !== undefined,
    ...(link ? { onCommitted: link.wake } : {}),
    recordEvent: (event) => store.events.record(event),
    activeKeys: () => {
      const model = inference.current;
      return model ? cameras.map((cameraId) => ({ cameraId, modelId: model.id, modelVersion: model.version })) : [];
    },
    ...(metricSources ? { metricSources } : {}),
    ...(sourceFigures ? { sourceFigures } : {}),
    log: log.child({ module: 'monitor' }),
  });
  const maxItems = config.monitor.maxFeedbackItems;
  link?.commands
    ?.register('feedback', feedbackCommandHandler(monitor, maxItems, 'device'))
    .register('retrain', retrainCommandHandler(monitor))
    .register('retrain-ack', retrainAckCommandHandler(monitor));
  // Fleet-wide commands share the command router's checks; their replies go to <prefix>/fleet/cmd/<name>/reply.
  const fleetCommands =
    link?.commands === undefined
      ? undefined
      : new CommandRouter({
          topics: deviceTopics(config.mqtt.topicPrefix, 'fleet'),
          maxPayloadBytes: config.mqtt.commands.maxPayloadBytes,
          transport: link.transport,
          log: log.child({ module: 'fleet-commands' }),
        }).register('feedback', feedbackCommandHandler(monitor, maxItems, 'fleet'));
  return { monitor, fleetCommands, services: [monitor, ...(fleetCommands ? [fleetCommands] : [])] };
}
