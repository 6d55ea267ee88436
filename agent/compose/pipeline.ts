import type { AgentConfig } from '../config/schema.js';
import { FrameScheduler } from '../inference/frame-scheduler.js';
import { InferenceService } from '../inference/inference-service.js';
import { geometryOf } from '../inference/loaded-model.js';
import type { ResolvedModel } from '../inference/model-files.js';
import type { Picture } from '../inference/picture.js';
import type { InferenceResult } from '../inference/result.js';
import type { Frame } from '../ingest/frame.js';
import { IngestService } from '../ingest/ingest-service.js';
import type { Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import type { AgentEvent } from '../storage/event-schema.js';

/** The frame path: cameras (ffmpeg) -> scheduler -> model -> every result to `onResult`. */
export interface PipelinePart {
  inference: InferenceService;
  scheduler: FrameScheduler;
  ingest: IngestService;
  /** In start order: the model and its scheduler before the cameras that feed them. */
  services: Service[];
}

export function buildPipeline(
  config: AgentConfig,
  model: ResolvedModel,
  onResult: (result: InferenceResult, picture: () => Picture) => void,
  recordEvent: (event: AgentEvent) => void,
  log: Logger,
  onFrame?: (frame: Frame) => void,
): PipelinePart {
  let scheduler: FrameScheduler | undefined;
  const inference = new InferenceService(model, config.inference, log.child({ module: 'inference' }), undefined, () => scheduler?.nudge());
  const ingest = new IngestService({
    config,
    geometry: geometryOf(model.manifest),
    log: log.child({ module: 'ingest' }),
    onSlotsChanged: () => scheduler?.refreshSlots(),
    onCameraStateChange: (change) =>
      recordEvent({ kind: 'camera-state', subject: change.cameraId, code: change.code, detail: { from: change.from, to: change.to } }),
  });
  scheduler = new FrameScheduler({
    slots: () => ingest.slots,
    models: inference,
    onResult,
    ...(onFrame ? { onFrame } : {}),
    log: log.child({ module: 'scheduler' }),
  });
  // The scheduler starts before the cameras and so stops after them: it drains their last frames.
  return { inference, scheduler, ingest, services: [inference, scheduler, ingest] };
}
