import path from 'node:path';
import { buildCounting, countedCameras } from './compose/counting.js';
import { buildDrift } from './compose/drift.js';
import { buildEvidence } from './compose/evidence.js';
import { buildLink } from './compose/link.js';
import { buildModels } from './compose/models.js';
import { buildSelfTest } from './compose/self-test.js';
import { buildMonitor } from './compose/monitor.js';
import { buildPipeline } from './compose/pipeline.js';
import { buildStorage, expiryMsOf } from './compose/storage.js';
import type { AgentConfig } from './config/schema.js';
import type { DriftService } from './drift/drift-service.js';
import { errorMessage, isAgentError } from './errors.js';
import type { ResolvedModel } from './inference/model-files.js';
import type { IngestService } from './ingest/ingest-service.js';
import { ServiceRunner } from './lifecycle/runner.js';
import type { Service } from './lifecycle/service.js';
import type { Logger } from './log/logger.js';
import type { SelfTestService } from './self-test/self-test-service.js';
import { pingCommandHandler, statusCommandHandler } from './mqtt/builtin-commands.js';
import { bootModel } from './models/boot-model.js';
import { deviceTopics, fleetTopics } from './mqtt/topics.js';
import { PipelineStats } from './telemetry/pipeline-stats.js';
import { STATUS_FILE_NAME, StatusFile } from './telemetry/status-file.js';
import { StatusLineService } from './telemetry/status-line.js';
import { SystemSampler } from './telemetry/system-sampler.js';
import { telemetryCommandHandler } from './telemetry/telemetry-command-handler.js';
import { TelemetryService } from './telemetry/telemetry-service.js';

/** Who asked for a model swap; it is recorded with the swap's event. */
export type SwapTrigger = 'sighup' | 'mqtt' | 'cli' | 'rollback' | 'update' | 'restart';

export interface Agent {
  runner: ServiceRunner;
  model: ResolvedModel;
  databaseFile: string;
  /** For the systemd watchdog: results are flowing, or no camera is (supposedly) streaming. */
  isAlive(maxSilenceMs: number): boolean;
  /** Hot-swaps the model between two frames; a model that fails its checks is refused. Every swap, whoever asked, goes through here. */
  swapModel(resolved: ResolvedModel, trigger: SwapTrigger): Promise<{ from: string; to: string }>;
  /** Before an exit without the orderly stop: no new inference run, and the ones in flight back. */
  haltInference(): Promise<void>;
  /** Applies a new camera list; only the cameras that changed are restarted. */
  reconfigureCameras(cameras: AgentConfig['cameras']): ReturnType<IngestService['reconfigure']>;
}

export interface BuildOptions {
  /** A terminal for the status line (the agent's stderr when it is a TTY). */
  terminal?: NodeJS.WritableStream;
}

/**
 * The one composition root: builds every service with the narrow dependencies it needs
 * (agent/compose/ has the storage, link and pipeline parts) and fixes the start order (stop
 * runs in reverse): storage before its writers, the link before the drain, the model and its
 * scheduler before the cameras that feed them, the status file first and last.
 */
export function buildAgent(config: AgentConfig, configModel: ResolvedModel, log: Logger, options: BuildOptions = {}): Agent {
  const topics = deviceTopics(config.mqtt.topicPrefix, config.deviceId);
  // The link reads the outbox through `store`, built next: the getter runs only once started.
  let store: ReturnType<typeof buildStorage> | undefined;
  const linkPart = buildLink(config, topics, () => store!.storage.outbox, log);
  store = buildStorage(config, { topics, publishing: linkPart !== undefined, onCommitted: linkPart ? () => linkPart.drain.wake() : undefined }, log);
  const { storage, events, condition, writer, databaseFile } = store;
  // Model updates: a version an update made active outlives restarts, so it is the one to start with.
  const model = config.modelUpdates.enabled ? bootModel(databaseFile, configModel, log.child({ module: 'models' })) : configModel;
  let runningModel = model;

  const stats = new PipelineStats();
  // counting (issue #18): tracks and counts each result before it is stored, so results carry track ids.
  let evaluateCountError: (cameraId: string) => void = () => {};
  const countingPart = buildCounting(
    config,
    topics,
    store,
    linkPart ? { commands: linkPart.commands, wake: () => linkPart.drain.wake() } : undefined,
    (cameraId) => evaluateCountError(cameraId),
    log,
  );
  const counting = countingPart?.counting;
  // Drift is built after the pipeline it watches; the frame and result hooks reach it late.
  let drift: DriftService | undefined;
  let selfTest: SelfTestService | undefined;
  const watchesDrift = config.monitor.enabled && config.monitor.drift.enabled;
  // Evidence samples (#15): offered every result with its message id; disputes come from the monitor.
  const evidencePart = buildEvidence(config, store, linkPart?.commands, log);
  const evidence = evidencePart?.evidence;
  const pipeline = buildPipeline(
    config,
    model,
    (result, picture) => {
      counting?.observe(result);
      const resultId = writer.enqueue(result);
      stats.record(result);
      drift?.onResult(result);
      evidence?.offer(result, picture, resultId);
    },
    (event) => events.record(event),
    log,
    watchesDrift ? (frame) => drift?.onFrame(frame) : undefined,
  );
  const { inference, scheduler, ingest } = pipeline;
  const commandLink = linkPart ? { commands: linkPart.commands, transport: linkPart.link, wake: () => linkPart.drain.wake() } : undefined;
  const monitorPart = buildMonitor(
    config,
    topics,
    store,
    inference,
    commandLink,
    log,
    {
      drift: (key) => drift?.observation('drift', key) ?? null,
      estimatedPrecision: (key) => drift?.observation('estimatedPrecision', key) ?? null,
      selfTest: (key) => selfTest?.observation(key) ?? null,
      // counting (issue #18)
      countError: (key, rule) => {
        const figure = counting?.countError(key.cameraId, rule.vehicleType);
        return figure ? { value: figure.value, low: figure.value, high: figure.value, n: figure.n } : null;
      },
    },
    {
      drift: (key) => drift?.figures(key) ?? null,
      estimatedPrecision: (key) => drift?.figures(key) ?? null,
    },
    evidence ? (resultIds) => evidence.markDisputed(resultIds) : undefined,
  );
  evaluateCountError = (cameraId) => {
    const active = inference.current;
    if (active) monitorPart?.monitor.evaluateKey({ cameraId, modelId: active.id, modelVersion: active.version });
  };
  drift = buildDrift(config, model, topics, store, inference, monitorPart?.monitor, commandLink, log);
  selfTest = buildSelfTest(
    config,
    model,
    inference,
    (event) => events.record(event),
    () => monitorPart?.monitor.evaluateActive(),
    linkPart?.commands,
    log,
  );

  const swapModel: Agent['swapModel'] = async (resolved, trigger) => {
    try {
      const outcome = await inference.swapTo(resolved);
      runningModel = resolved;
      events.record({ kind: 'model-swapped', subject: resolved.manifest.id, detail: { ...outcome, trigger } });
      // A newer model answers the retrain requests pending for the one it replaced.
      const active = inference.current;
      if (active) monitorPart?.monitor.modelActivated(active);
      if (trigger === 'sighup' || trigger === 'mqtt') modelsPart?.service.followSwap(trigger);
      return outcome;
    } catch (error) {
      events.record({
        kind: 'model-rejected',
        subject: resolved.manifest.id,
        code: isAgentError(error) ? error.code : 'MODEL_LOAD_FAILED',
        detail: { message: errorMessage(error), trigger },
      });
      throw error;
    }
  };
  const modelsPart = buildModels(
    config,
    topics,
    fleetTopics(config.mqtt.topicPrefix),
    store,
    {
      configModel,
      running: () => runningModel,
      swap: (resolved, trigger) => swapModel(resolved, trigger),
      pendingRetrain: () => {
        const active = inference.current;
        return (
          active !== undefined &&
          (monitorPart?.monitor
            .snapshot()
            .retrain.some((request) => request.state === 'pending' && request.modelId === active.id && request.modelVersion === active.version) ??
            false)
        );
      },
    },
    linkPart ? { commands: linkPart.commands, transport: linkPart.link, wake: () => linkPart.drain.wake() } : undefined,
    log,
  );

  const telemetry = new TelemetryService({
    db: () => storage.db,
    deviceId: config.deviceId,
    intervalMs: config.telemetry.intervalSeconds * 1000,
    topic: linkPart && config.telemetry.publish ? topics.telemetry : undefined,
    expiryMs: expiryMsOf(config.mqtt.expirySeconds.telemetry),
    system: new SystemSampler(path.dirname(databaseFile), log.child({ module: 'system' }), config.telemetry.sysfsRoot),
    stats,
    cameras: () => ingest.cameras(),
    model: () => inference.current,
    pendingWrites: () => writer.pendingCount,
    outbox: () => ({ depth: linkPart ? storage.outbox.depth() : 0, dropped: linkPart ? storage.outbox.counter('outbox_dropped') : 0 }),
    databaseBytes: () => storage.sizeBytes(),
    condition,
    ...(linkPart ? { onCommitted: () => linkPart.drain.wake() } : {}),
    log: log.child({ module: 'telemetry' }),
  });
  linkPart?.commands
    ?.register('ping', pingCommandHandler())
    .register(
      'status',
      statusCommandHandler(() => runner.health()),
    )
    .register(
      'telemetry',
      telemetryCommandHandler(
        () => telemetry.latest,
        () => telemetry.takeSample(),
      ),
    );

  // Started first and stopped last: its final write shows every service stopped.
  const statusFile = new StatusFile({
    file: path.join(path.dirname(databaseFile), STATUS_FILE_NAME),
    intervalMs: 2000,
    deviceId: config.deviceId,
    services: () => runner.health(),
    model: () => inference.current,
    log: log.child({ module: 'status' }),
  });
  const statusWindow = stats.reader();
  const terminal = options.terminal
    ? [
        new StatusLineService({
          out: options.terminal,
          intervalMs: config.status.intervalSeconds * 1000,
          window: () => statusWindow.takeWindow(),
          inputs: () => ({
            cameras: ingest.cameras().map((camera) => ({ id: camera.id, state: camera.state })),
            mqtt: linkPart ? linkPart.link.state : 'off',
            outboxDepth: linkPart ? ((linkPart.drain.health().detail?.['depth'] as number | null) ?? 0) : 0,
          }),
        }),
      ]
    : [];
  const services: Service[] = [
    statusFile,
    store.storageService,
    ...(linkPart?.broker ? [linkPart.broker] : []),
    ...store.writers,
    ...(linkPart?.services ?? []),
    ...(monitorPart?.services ?? []),
    ...(drift ? [drift] : []),
    ...(countingPart?.services ?? []),
    // Before the pipeline, so it stops after it: the last sample offered is still written.
    ...(evidence ? [evidence] : []),
    ...pipeline.services,
    // After the pipeline: its first run uses the live session.
    ...(selfTest ? [selfTest] : []),
    ...(modelsPart?.services ?? []),
    telemetry,
    ...terminal,
  ];
  const runner = new ServiceRunner(services, log.child({ module: 'lifecycle' }));

  return {
    runner,
    model,
    databaseFile,
    reconfigureCameras: (cameras) => {
      counting?.reconfigure(countedCameras(cameras));
      evidencePart?.setCameras(cameras);
      return ingest.reconfigure(cameras);
    },
    haltInference: () => inference.halt(),
    swapModel,
    isAlive: (maxSilenceMs) =>
      Date.now() - scheduler.lastResultAt < maxSilenceMs ||
      // No result lately is fine while every camera is in a state that ends by itself or needs a
      // person (connecting, waiting to retry, finished, misconfigured): restarting would not help.
      ingest.cameras().every((camera) => camera.state !== 'streaming' && camera.state !== 'stalled'),
  };
}
