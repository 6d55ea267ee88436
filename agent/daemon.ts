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
import { pingCommand, statusCommand } from './mqtt/builtin-commands.js';
import { CommandRouter } from './mqtt/commands.js';
import { EmbeddedBroker } from './mqtt/embedded-broker.js';
import { MqttLink } from './mqtt/mqtt-link.js';
import { OutboxDrain } from './mqtt/outbox-drain.js';
import { deviceTopics } from './mqtt/topics.js';
import { DiskReserve } from './storage/disk-reserve.js';
import { EventLog } from './storage/event-log.js';
import { ResultWriter } from './storage/result-writer.js';
import { RetentionService } from './storage/retention.js';
import { StorageCondition } from './storage/storage-condition.js';
import { StorageService } from './storage/storage-service.js';
import { PipelineStats, type StatsReader } from './telemetry/pipeline-stats.js';
import { STATUS_FILE_NAME, StatusFile } from './telemetry/status-file.js';
import { SystemSampler } from './telemetry/system-sampler.js';
import { telemetryCommand } from './telemetry/telemetry-command.js';
import { TelemetryService } from './telemetry/telemetry-service.js';
import { errorMessage, isAgentError } from './errors.js';
import type { StatusInputs } from './telemetry/status-line.js';

export interface Agent {
  runner: ServiceRunner;
  model: ResolvedModel;
  databaseFile: string;
  /** The status line's windows over the pipeline counts. */
  stats: StatsReader;
  /** Inputs of the terminal status line, minus the stats window. */
  status(): Omit<StatusInputs, 'window'>;
  /** For the systemd watchdog: results are flowing, or no camera is (supposedly) streaming. */
  isAlive(maxSilenceMs: number): boolean;
  /** Hot-swaps the model between two frames; a model that fails its checks is refused. */
  swapModel(resolved: ResolvedModel): ReturnType<InferenceService['swapTo']>;
  /** Before an exit without the orderly stop: no new inference run, and the ones in flight back. */
  haltInference(): Promise<void>;
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
  // Commands on <prefix>/<deviceId>/cmd/<name>: register more handlers here, before start.
  let commands: CommandRouter | undefined;
  if (config.mqtt.enabled) {
    let brokerUrl: () => string = () => config.mqtt.url!;
    if (config.mqtt.url === undefined) {
      const broker = new EmbeddedBroker(config.mqtt.embeddedBroker.host, config.mqtt.embeddedBroker.port, log.child({ module: 'broker' }));
      services.push(broker);
      brokerUrl = () => broker.url;
    }
    link = new MqttLink({
      url: brokerUrl,
      // aedes speaks 3.1.1 only: no need to be refused first.
      config: config.mqtt.url === undefined && config.mqtt.protocol === 'auto' ? { ...config.mqtt, protocol: '3.1.1' } : config.mqtt,
      clientId: config.mqtt.clientId ?? `cctv-${config.deviceId}`,
      availabilityTopic: topics.availability,
      log: log.child({ module: 'mqtt' }),
    });
    drain = new OutboxDrain({ outbox: () => storage.outbox, publisher: link, batchSize: config.mqtt.publishBatch, log: log.child({ module: 'outbox' }) });
    if (config.mqtt.commands.enabled) {
      commands = new CommandRouter({ topics, maxPayloadBytes: config.mqtt.commands.maxPayloadBytes, transport: link, log: log.child({ module: 'commands' }) });
      commands.register('ping', pingCommand()).register('status', statusCommand(() => runner.health()));
    }
  }

  const expiryMs = (seconds: number | null): number | null => (seconds === null ? null : seconds * 1000);
  const wakeDrain = drain ? { onCommitted: () => drain.wake() } : {};
  const storageLog = log.child({ module: 'storage' });
  const events = new EventLog({
    db: () => storage.openDb,
    deviceId: config.deviceId,
    topic: link ? topics.events : undefined,
    expiryMs: expiryMs(config.mqtt.expirySeconds.events),
    ...wakeDrain,
    log: log.child({ module: 'events' }),
  });
  const condition = new StorageCondition((change) => {
    if (change.degraded) {
      storageLog.error({ reason: change.reason, code: change.code }, 'storage degraded: classifying goes on, the newest results wait in memory, the oldest on disk are pruned');
      events.record({ kind: 'storage-degraded', subject: 'database', code: change.reason === 'write-failed' ? 'STORAGE_WRITE_FAILED' : 'STORAGE_DISK_FULL', detail: { reason: change.reason, cause: change.code } });
    } else {
      storageLog.warn('storage recovered');
      events.record({ kind: 'storage-recovered', subject: 'database' });
    }
  });
  const retention = new RetentionService({
    db: () => storage.db,
    databaseFile,
    dataDir: path.dirname(databaseFile),
    config: config.storage.retention,
    condition,
    reserve: new DiskReserve(path.dirname(databaseFile), storageLog),
    recordEvent: (event) => events.record(event),
    log: storageLog,
  });
  const outboxOverflow = { dropped: 0, reportedAt: 0 };
  const writer = new ResultWriter({
    db: () => storage.db,
    deviceId: config.deviceId,
    resultsTopic: link ? topics.results : undefined,
    expiryMs: expiryMs(config.mqtt.expirySeconds.results),
    flushIntervalMs: config.storage.flushIntervalMs,
    maxBatchRows: config.storage.maxBatchRows,
    condition,
    onDiskFull: () => retention.emergency(),
    afterCommit: () => {
      if (events.pending > 0) events.retry();
      if (!link) return;
      outboxOverflow.dropped += storage.outbox.enforceCap(config.storage.outboxMaxMessages);
      // One event a minute at most while the broker stays away, with the count since the last.
      if (outboxOverflow.dropped > 0 && Date.now() - outboxOverflow.reportedAt >= 60_000) {
        storageLog.warn({ dropped: outboxOverflow.dropped, cap: config.storage.outboxMaxMessages }, 'outbox full: oldest messages dropped');
        events.record({ kind: 'outbox-overflow', subject: 'outbox', detail: { dropped: outboxOverflow.dropped, cap: config.storage.outboxMaxMessages } });
        outboxOverflow.dropped = 0;
        outboxOverflow.reportedAt = Date.now();
      }
    },
    ...wakeDrain,
    log: log.child({ module: 'results' }),
  });
  services.push(events, retention, writer);
  if (link && drain) services.push(link, drain, ...(commands ? [commands] : []));

  const inference = new InferenceService(model, config.inference, log.child({ module: 'inference' }));
  let scheduler: FrameScheduler | undefined;
  const ingest = new IngestService({
    config,
    geometry: geometryOf(model.manifest),
    log: log.child({ module: 'ingest' }),
    onSlotsChanged: () => scheduler?.refreshSlots(),
    onCameraStateChange: (change) =>
      events.record({ kind: 'camera-state', subject: change.cameraId, code: change.code, detail: { from: change.from, to: change.to } }),
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

  const telemetry = new TelemetryService({
    db: () => storage.db,
    deviceId: config.deviceId,
    intervalMs: config.telemetry.intervalSeconds * 1000,
    topic: link && config.telemetry.publish ? topics.telemetry : undefined,
    expiryMs: expiryMs(config.mqtt.expirySeconds.telemetry),
    system: new SystemSampler(path.dirname(databaseFile), log.child({ module: 'system' })),
    stats,
    cameras: () => ingest.cameras(),
    model: () => inference.current,
    pendingWrites: () => writer.pendingCount,
    outbox: () => ({ depth: link ? storage.outbox.depth() : 0, dropped: link ? storage.outbox.counter('outbox_dropped') : 0 }),
    databaseBytes: () => storage.sizeBytes(),
    condition,
    ...wakeDrain,
    log: log.child({ module: 'telemetry' }),
  });
  services.push(telemetry);
  commands?.register('telemetry', telemetryCommand(() => telemetry.latest, () => telemetry.takeSample()));

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
    stats: stats.reader(),
    status: () => ({
      cameras: ingest.cameras().map((camera) => ({ id: camera.id, state: camera.state })),
      mqtt: link ? link.state : 'off',
      outboxDepth: drain ? (drain.health().detail?.['depth'] as number) : 0,
    }),
    reconfigureCameras: (cameras) => ingest.reconfigure(cameras),
    haltInference: () => inference.halt(),
    swapModel: async (resolved) => {
      try {
        const outcome = await inference.swapTo(resolved);
        events.record({ kind: 'model-swapped', subject: resolved.manifest.id, detail: { ...outcome } });
        return outcome;
      } catch (error) {
        events.record({ kind: 'model-rejected', subject: resolved.manifest.id, code: isAgentError(error) ? error.code : 'MODEL_LOAD_FAILED', detail: { message: errorMessage(error) } });
        throw error;
      }
    },
    isAlive: (maxSilenceMs) =>
      Date.now() - scheduler!.lastResultAt < maxSilenceMs ||
      // No result lately is fine while every camera is in a state that ends by itself or needs a
      // person (connecting, waiting to retry, finished, misconfigured): restarting would not help.
      ingest.cameras().every((camera) => camera.state !== 'streaming' && camera.state !== 'stalled'),
  };
}
