import type { AgentConfig } from '../config/schema.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import { CameraSupervisor, type CameraState } from './camera-supervisor.js';
import { bundledFfmpegPath, probeFfmpeg, type FfmpegCapabilities } from './ffmpeg-binary.js';
import type { Spawner } from './ffmpeg-process.js';
import type { FrameGeometry } from './frame-geometry.js';
import type { LatestFrameSlot } from './frame-slot.js';

export interface IngestDeps {
  config: Pick<AgentConfig, 'cameras' | 'ffmpeg'>;
  geometry: FrameGeometry;
  log: Logger;
  spawner?: Spawner;
}

/** All cameras of this device: probes ffmpeg once, then one supervisor per enabled camera. */
export class IngestService implements Service {
  readonly name = 'ingest';
  private supervisors: CameraSupervisor[] = [];
  private capabilities: FfmpegCapabilities | undefined;

  constructor(private readonly deps: IngestDeps) {}

  async start(signal: AbortSignal): Promise<void> {
    const { config, log } = this.deps;
    const path = config.ffmpeg.path ?? bundledFfmpegPath();
    this.capabilities = await probeFfmpeg(path);
    log.info({ ffmpeg: path, version: this.capabilities.version, rtspTimeout: this.capabilities.rtspTimeoutOption, hwaccels: this.capabilities.hwaccels }, 'ffmpeg probed');
    if (signal.aborted) return;
    const settings = {
      capabilities: this.capabilities,
      geometry: this.deps.geometry,
      hwaccel: config.ffmpeg.hwaccel,
      socketTimeoutSeconds: config.ffmpeg.socketTimeoutSeconds,
      stallTimeoutMs: config.ffmpeg.stallTimeoutSeconds * 1000,
      backoff: config.ffmpeg.restartBackoffMs,
    };
    this.supervisors = config.cameras
      .filter((camera) => camera.enabled)
      .map((camera) => new CameraSupervisor(camera, settings, { log, ...(this.deps.spawner ? { spawner: this.deps.spawner } : {}) }));
    for (const supervisor of this.supervisors) supervisor.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.supervisors.map((supervisor) => supervisor.stop()));
  }

  get slots(): LatestFrameSlot[] {
    return this.supervisors.map((supervisor) => supervisor.slot);
  }

  cameras(): CameraState[] {
    return this.supervisors.map((supervisor) => supervisor.snapshot());
  }

  health(): Health {
    const cameras = this.cameras();
    const live = cameras.filter((camera) => camera.state === 'streaming').length;
    return {
      ok: cameras.length > 0 && cameras.every((camera) => camera.state === 'streaming' || camera.state === 'backoff' || camera.state === 'starting'),
      state: `${live}/${cameras.length} streaming`,
      detail: { ffmpeg: this.capabilities?.version, cameras },
    };
  }
}
