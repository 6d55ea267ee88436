import path from 'node:path';
import type { AgentConfig } from '../config/schema.js';
import { type DriftKey, type DriftModel, DriftService } from '../drift/drift-service.js';
import type { InferenceService } from '../inference/inference-service.js';
import { geometryOf } from '../inference/loaded-model.js';
import { locateManifestFile, type ResolvedModel } from '../inference/model-files.js';
import { defaultAssetsDir } from '../paths.js';
import type { Logger } from '../log/logger.js';
import type { MonitorService } from '../monitor/monitor-service.js';
import type { CommandRouter } from '../mqtt/commands.js';
import type { DeviceTopics } from '../mqtt/topics.js';
import { driftReferenceResetCommandHandler } from '../drift/drift-commands.js';
import type { StoragePart } from './storage.js';

/** A file a manifest names, relative to the manifest's own directory. */
export function manifestExtra(model: ResolvedModel, extra: { file: string } | undefined, assetsDir: string): string | undefined {
  return extra ? (locateManifestFile(extra.file, model.manifestPath, assetsDir) ?? path.resolve(path.dirname(model.manifestPath), extra.file)) : undefined;
}

/**
 * Drift without labels: fed by the scheduler (frames, results), read by the monitor's rules
 * (`drift`, `estimatedPrecision`), told the measured precision for the published gap.
 */
export function buildDrift(
  config: AgentConfig,
  model: ResolvedModel,
  topics: DeviceTopics,
  store: StoragePart,
  inference: InferenceService,
  monitor: MonitorService | undefined,
  link: { commands: CommandRouter | undefined; wake: () => void } | undefined,
  log: Logger,
): DriftService | undefined {
  if (!config.monitor.enabled || !config.monitor.drift.enabled) return undefined;
  const assetsDir = config.model.assetsDir ?? defaultAssetsDir();
  let lastFiles: ResolvedModel | undefined;
  let active: DriftModel | undefined;
  const drift = new DriftService({
    db: () => store.storage.db,
    deviceId: config.deviceId,
    topics,
    publishing: link !== undefined,
    ...(link ? { onCommitted: link.wake } : {}),
    config: config.monitor,
    geometry: geometryOf(model.manifest),
    // Asked on every frame: the answer is built once per serving model, not per call.
    activeModel: () => {
      const files = inference.currentFiles;
      if (files !== lastFiles) {
        lastFiles = files;
        active = files && {
          id: files.manifest.id,
          version: files.manifest.version,
          referenceFile: manifestExtra(files, files.manifest.referenceStatistics, assetsDir),
          calibrationFile: manifestExtra(files, files.manifest.calibration, assetsDir),
        };
      }
      return active;
    },
    measuredPrecision: (key: DriftKey) => {
      const quality = monitor
        ?.snapshot()
        .quality.find((q) => q.cameraId === key.cameraId && q.model.id === key.modelId && q.model.version === key.modelVersion);
      return quality?.windows.labels.overall.precision ?? null;
    },
    ...(monitor ? { onWindow: (key: DriftKey) => monitor.evaluateKey(key) } : {}),
    log: log.child({ module: 'drift' }),
  });
  link?.commands?.register('drift-reference-reset', driftReferenceResetCommandHandler(drift));
  return drift;
}
