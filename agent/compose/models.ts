import path from 'node:path';
import type { AgentConfig } from '../config/schema.js';
import type { ResolvedModel } from '../inference/model-files.js';
import type { Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import { modelCommandHandlers, pullCommandHandlers, pushCommandHandlers } from '../models/model-commands.js';
import { ModelPuller } from '../models/puller.js';
import { PushReceiver } from '../models/push-receiver.js';
import { ModelUpdateService } from '../models/model-update-service.js';
import type { ActivationTrigger } from '../models/registry.js';
import { trustPolicy } from '../models/trust.js';
import type { CommandRouter, CommandTransport } from '../mqtt/commands.js';
import { type DeviceTopics, type FleetTopics, modelPushTopics } from '../mqtt/topics.js';
import type { StoragePart } from './storage.js';

/** Model updates: the registry, its commands, push over MQTT and pull over HTTP. */
export interface ModelsPart {
  service: ModelUpdateService;
  services: Service[];
}

export function buildModels(
  config: AgentConfig,
  topics: DeviceTopics,
  fleet: FleetTopics,
  store: StoragePart,
  models: {
    configModel: ResolvedModel;
    running: () => ResolvedModel;
    swap: (resolved: ResolvedModel, trigger: ActivationTrigger) => Promise<{ from: string; to: string }>;
    /** The monitor's seam: a retrain request is pending for the model now serving. */
    pendingRetrain: () => boolean;
  },
  link: { commands: CommandRouter | undefined; transport: CommandTransport; wake: () => void } | undefined,
  log: Logger,
): ModelsPart | undefined {
  const settings = config.modelUpdates;
  if (!settings.enabled) return undefined;
  const modelLog = log.child({ module: 'models' });
  const policy = trustPolicy(settings);
  if (settings.allowUnsigned) modelLog.warn('modelUpdates.allowUnsigned is true: UNSIGNED model bundles will be accepted (a lab setting, never a fleet one)');
  const service = new ModelUpdateService({
    db: () => store.storage.db,
    deviceId: config.deviceId,
    root: path.join(path.dirname(store.databaseFile), 'models'),
    policy,
    maxBundleBytes: Math.round(settings.maxBundleMB * 1024 * 1024),
    keepVersions: settings.keepVersions,
    configModel: models.configModel,
    running: models.running,
    swap: models.swap,
    stateTopic: topics.modelState,
    publishing: link !== undefined,
    ...(link ? { onCommitted: link.wake } : {}),
    recordEvent: (event) => store.events.record(event),
    log: modelLog,
  });
  if (link?.commands) {
    for (const [name, handler] of Object.entries(modelCommandHandlers(service))) link.commands.register(name, handler);
    const receiver = new PushReceiver({
      db: () => store.storage.db,
      registry: service.registry,
      transport: link.transport,
      topics: modelPushTopics(topics),
      limits: {
        maxBundleBytes: Math.round(settings.maxBundleMB * 1024 * 1024),
        maxChunkBytes: settings.push.maxChunkBytes,
        maxChunks: settings.push.maxChunks,
        idleTimeoutMs: settings.push.idleTimeoutSeconds * 1000,
      },
      onProgress: () => service.schedulePublish(),
      log: modelLog.child({ part: 'push' }),
    });
    service.addChannel(receiver);
    for (const [name, handler] of Object.entries(pushCommandHandlers(receiver))) link.commands.register(name, handler);
  }
  const puller = new ModelPuller({
    db: () => store.storage.db,
    registry: service.registry,
    limits: {
      maxBundleBytes: Math.round(settings.maxBundleMB * 1024 * 1024),
      idleTimeoutMs: settings.pull.timeoutSeconds * 1000,
      maxAttempts: settings.pull.maxAttempts,
    },
    announcements: settings.pull.announcements,
    ...(link ? { fleet: { transport: link.transport, filter: fleet.modelFilter } } : {}),
    pendingRetrain: models.pendingRetrain,
    running: () => ({ id: models.running().manifest.id, version: models.running().manifest.version }),
    onProgress: () => service.schedulePublish(),
    log: modelLog.child({ part: 'pull' }),
  });
  service.addChannel(puller);
  if (link?.commands) for (const [name, handler] of Object.entries(pullCommandHandlers(puller))) link.commands.register(name, handler);
  return { service, services: [service] };
}
