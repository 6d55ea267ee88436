import type { AgentConfig } from '../config/schema.js';
import type { InferenceService } from '../inference/inference-service.js';
import { geometryOf } from '../inference/loaded-model.js';
import type { ResolvedModel } from '../inference/model-files.js';
import { chooseFfmpeg, type FfmpegCapabilities, probeFfmpeg } from '../ingest/ffmpeg-binary.js';
import { readStillFrame } from '../ingest/still-frame.js';
import type { Logger } from '../log/logger.js';
import type { CommandRouter } from '../mqtt/commands.js';
import { defaultAssetsDir } from '../paths.js';
import { selfTestCommandHandler } from '../self-test/self-test-command.js';
import { type SelfTestReport, SelfTestService } from '../self-test/self-test-service.js';
import type { AgentEvent } from '../storage/event-schema.js';
import { manifestExtra } from './drift.js';

/** The golden-sample self-test: golden images read as a camera's frames and run through the live session. */
export function buildSelfTest(
  config: AgentConfig,
  model: ResolvedModel,
  inference: InferenceService,
  recordEvent: (event: AgentEvent) => void,
  onReport: (report: SelfTestReport) => void,
  commands: CommandRouter | undefined,
  log: Logger,
): SelfTestService | undefined {
  if (!config.monitor.enabled || !config.monitor.selfTest.enabled) return undefined;
  const geometry = geometryOf(model.manifest);
  let ffmpeg: Promise<FfmpegCapabilities> | undefined;
  const selfTest = new SelfTestService({
    config: config.monitor,
    model: () => {
      const files = inference.currentFiles;
      return files
        ? {
            id: files.manifest.id,
            version: files.manifest.version,
            modelPath: files.modelPath,
            sha256: files.manifest.sha256,
            goldenFile: manifestExtra(files, files.manifest.golden, config.model.assetsDir ?? defaultAssetsDir()),
          }
        : undefined;
    },
    runImage: async (file) => {
      ffmpeg ??= probeFfmpeg(chooseFfmpeg(config.ffmpeg.path).path);
      const frame = await readStillFrame(file, geometry, await ffmpeg, 'self-test');
      const result = await inference.runStill(frame);
      return result.vehicles.map((vehicle) => ({ type: vehicle.type, score: vehicle.score, box: vehicle.box }));
    },
    assetsDir: config.model.assetsDir ?? defaultAssetsDir(),
    recordEvent,
    onReport,
    log: log.child({ module: 'self-test' }),
  });
  commands?.register('self-test', selfTestCommandHandler(selfTest));
  return selfTest;
}
