import type { AgentConfig } from '../config/schema.js';
import { sourceKind } from '../config/source-url.js';
import { referenceCountsCommandHandler } from '../counting/counting-commands.js';
import { type CountedCamera, CountingService } from '../counting/counting-service.js';
import type { Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import type { CommandRouter } from '../mqtt/commands.js';
import type { DeviceTopics } from '../mqtt/topics.js';
import type { StoragePart } from './storage.js';

/** Tracking and counting (issue #18): the service every result passes through, and its command. */
export interface CountingPart {
  counting: CountingService;
  services: Service[];
}

export const countedCameras = (cameras: AgentConfig['cameras']): CountedCamera[] =>
  cameras
    .filter((camera) => camera.enabled)
    .map((camera) => ({
      id: camera.id,
      lines: camera.lines,
      // Only a file source honours realtime: false (it is then read as fast as the model goes).
      ...(!camera.realtime && camera.sampleFps !== null && sourceKind(camera.url) === 'file' ? { frameIntervalMs: 1000 / camera.sampleFps } : {}),
    }));

export function buildCounting(
  config: AgentConfig,
  topics: DeviceTopics,
  store: StoragePart,
  link: { commands: CommandRouter | undefined; wake: () => void } | undefined,
  onCountError: (cameraId: string) => void,
  log: Logger,
): CountingPart | undefined {
  if (!config.counting.enabled) return undefined;
  const counting = new CountingService({
    db: () => store.storage.db,
    deviceId: config.deviceId,
    config: config.counting,
    cameras: countedCameras(config.cameras),
    topic: link ? topics.counts : undefined,
    ...(link ? { onCommitted: link.wake } : {}),
    onCountError,
    log: log.child({ module: 'counting' }),
  });
  link?.commands?.register('reference-counts', referenceCountsCommandHandler(counting));
  return { counting, services: [counting] };
}
