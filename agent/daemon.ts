import path from 'node:path';
import type { AgentConfig } from './config/schema.js';
import { FrameScheduler } from './inference/frame-scheduler.js';
import { InferenceService } from './inference/inference-service.js';
import { geometryOf } from './inference/loaded-model.js';
import type { ResolvedModel } from './inference/model-files.js';
import { IngestService } from './ingest/ingest-service.js';
import { ServiceRunner } from './lifecycle/runner.js';
import type { Service } from './lifecycle/service.js';
import type { Logger } from './log/logger.js';
import { EmbeddedBroker } from './mqtt/embedded-broker.js';
import { MqttLink } from './mqtt/mqtt-link.js';
import { OutboxDrain } from './mqtt/outbox-drain.js';
import { deviceTopics } from './mqtt/topics.js';
import { ResultWriter } from './storage/result-writer.js';
import { StorageService } from './storage/storage-service.js';
import { PipelineStats } from './telemetry/pipeline-stats.js';
import { STATUS_FILE_NAME, StatusFile } from './telemetry/status-file.js';
import type { StatusInputs } from './telemetry/status-line.js';

export interface Agent {
  runner: ServiceRunner;
  model: ResolvedModel;
  databaseFile: string;
  stats: PipelineStats;
  /** Inputs of the terminal status line, minus the stats window. */
  status(): Omit<StatusInputs, 'window'>;
  /** For the systemd watchdog: results are flowing, or no camera is (supposedly) streaming. */
  isAlive(maxSilenceMs: number): boolean;
  /** Hot-swaps the model between two frames; a model that fails its checks is refused. */
  swapModel(resolved: ResolvedModel): ReturnType<InferenceService['swapTo']>;
  /** Applies a new camera list; only the cameras that changed are restarted. */
  reconfigureCameras(cameras: AgentConfig['cameras']): ReturnType<IngestService['reconfigure']>;
}

/**
 * The one composition root: builds every service with the narrow dependencies it needs and
 * fixes the start order (stop runs in reverse): storage before its writers, the link before
 * the drain, the model and its scheduler before the cameras that feed them.
 */
export function buildAgent(config: AgentConfig, model: ResolvedModel, log: Logger): Agent {
  const topics = deviceTopics(config.mqtt.topicPrefix, config.deviceId);
  const databaseFile = path.resolve(config.dataDir, config.storage.fileName);
  const services: Service[] = [];

  const storage = new StorageService(databaseFile, log.child({ module: 'storage' }));
  services.push(storage);

  let drain: OutboxDrain | undefined;
  let link: MqttLink | undefined;
  if (config.mqtt.enabled) {
    let brokerUrl: () => string = () => config.mqtt.url!;
    if (config.mqtt.url === undefined) {
      const broker = new EmbeddedBroker(config.mqtt.embeddedBroker.host, config.mqtt.embeddedBroker.port, log.child({ module: 'broker' }));
      services.push(broker);
      brokerUrl = () => broker.url;
    }
    link = new MqttLink({
      url: brokerUrl,
      config: config.mqtt,
      clientId: config.mqtt.clientId ?? `cctv-${config.deviceId}`,
      availabilityTopic: topics.availability,
      log: log.child({ module: 'mqtt' }),
    });
    drain = new OutboxDrain({ outbox: () => storage.outbox, publisher: link, batchSize: config.mqtt.publishBatch, log: log.child({ module: 'outbox' }) });
  }

  const writer = new ResultWriter({
    db: () => storage.db,
    deviceId: config.deviceId,
    resultsTopic: link ? topics.results : undefined,
    flushIntervalMs: config.storage.flushIntervalMs,
    maxBatchRows: config.storage.maxBatchRows,
    ...(drain ? { onCommitted: () => drain.wake() } : {}),
    log: log.child({ module: 'results' }),
  });
  services.push(writer);
  if (link && drain) services.push(link, drain);

  const inference = new InferenceService(model, config.inference, log.child({ module: 'inference' }));
  let scheduler: FrameScheduler | undefined;
  const ingest = new IngestService({
    config,
    geometry: geometryOf(model.manifest),
    log: log.child({ module: 'ingest' }),
    onSlotsChanged: () => scheduler?.refreshSlots(),
  });
  const stats = new PipelineStats();
  scheduler = new FrameScheduler({
    slots: () => ingest.slots,
    models: inference,
    onResult: (result) => {
      writer.enqueue(result);
      stats.record(result);
    },
    log: log.child({ module: 'scheduler' }),
  });
  // The scheduler starts before the cameras and so stops after them: it drains their last frames.
  services.push(inference, scheduler, ingest);

  // Started first and stopped last: its final write shows every service stopped.
  const statusFile = new StatusFile({
    file: path.join(path.dirname(databaseFile), STATUS_FILE_NAME),
    intervalMs: 2000,
    deviceId: config.deviceId,
    services: () => runner.health(),
    model: () => inference.current,
    log: log.child({ module: 'status' }),
  });
  services.unshift(statusFile);
  const runner = new ServiceRunner(services, log.child({ module: 'lifecycle' }));

  return {
    runner,
    model,
    databaseFile,
    stats,
    status: () => ({
      cameras: ingest.cameras().map((camera) => ({ id: camera.id, state: camera.state })),
      mqtt: link ? (link.connected ? 'connected' : 'disconnected') : 'off',
      outboxDepth: drain ? (drain.health().detail?.['depth'] as number) : 0,
    }),
    reconfigureCameras: (cameras) => ingest.reconfigure(cameras),
    swapModel: (resolved) => inference.swapTo(resolved),
    isAlive: (maxSilenceMs) =>
      Date.now() - scheduler!.lastResultAt < maxSilenceMs ||
      // No result lately is fine while every camera is in a state that ends by itself or needs a
      // person (connecting, waiting to retry, finished, misconfigured): restarting would not help.
      ingest.cameras().every((camera) => camera.state !== 'streaming' && camera.state !== 'stalled'),
  };
}
