import path from 'node:path';
import type { AgentConfig } from '../config/schema.js';
import { evidenceGetCommandHandler, evidenceListCommandHandler } from '../evidence/evidence-commands.js';
import { EvidenceService } from '../evidence/evidence-service.js';
import type { Logger } from '../log/logger.js';
import type { CommandRouter } from '../mqtt/commands.js';
import type { StoragePart } from './storage.js';

/** Evidence samples for retraining (docs/evidence.md); undefined when monitor.evidence.enabled is false. */
export interface EvidencePart {
  evidence: EvidenceService;
  /** A new camera list (a reload): the crop recorded with each sample follows the cameras' ROI. */
  setCameras: (cameras: AgentConfig['cameras']) => void;
}

/** The evidence directory: monitor.evidence.dir, relative to dataDir, default <dataDir>/evidence. */
export const evidenceDirOf = (config: AgentConfig): string => path.resolve(config.dataDir, config.monitor.evidence.dir ?? 'evidence');

export function buildEvidence(config: AgentConfig, store: StoragePart, commands: CommandRouter | undefined, log: Logger): EvidencePart | undefined {
  const settings = config.monitor.evidence;
  if (!settings.enabled) return undefined;
  let crops = new Map<string, [number, number, number, number]>();
  const setCameras = (cameras: AgentConfig['cameras']): void => {
    crops = new Map(cameras.flatMap((camera) => (camera.roi ? [[camera.id, [camera.roi.x, camera.roi.y, camera.roi.width, camera.roi.height]] as const] : [])));
  };
  setCameras(config.cameras);
  const evidence = new EvidenceService({
    db: () => store.storage.db,
    dir: evidenceDirOf(config),
    config: settings,
    cropOf: (cameraId) => crops.get(cameraId) ?? null,
    recordEvent: (event) => store.events.record(event),
    log: log.child({ module: 'evidence' }),
  });
  commands
    ?.register('evidence-list', evidenceListCommandHandler(evidence))
    .register('evidence-get', evidenceGetCommandHandler(evidence, settings.maxChunkBytes));
  return { evidence, setCameras };
}
