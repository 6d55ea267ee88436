import fs from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import type { AgentConfig, CameraConfig } from '../config/schema.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import { CameraSupervisor, type CameraState, type CameraStateChange, type SupervisorSettings } from './camera-supervisor.js';
import { chooseFfmpeg, probeFfmpeg, type FfmpegCapabilities } from './ffmpeg-binary.js';
import type { Spawner } from './ffmpeg-process.js';
import type { FrameGeometry } from './frame-geometry.js';
import type { LatestFrameSlot } from './frame-slot.js';

export interface IngestDeps {
  config: Pick<AgentConfig, 'cameras' | 'ffmpeg'>;
  geometry: FrameGeometry;
  log: Logger;
  spawner?: Spawner;
  /** Told when cameras come and go, so the scheduler reads the new slot list. */
  onSlotsChanged?: () => void;
  onCameraStateChange?: (change: CameraStateChange) => void;
}

/**
 * util-linux's setpriv asks the kernel to SIGKILL ffmpeg when the agent dies, even by
 * SIGKILL: no orphaned ffmpeg keeps holding a camera session. Debian ships it in an
 * essential package; without it the agent still works and says so.
 */
export const SETPRIV = '/usr/bin/setpriv';

/** All cameras of this device: probes ffmpeg once, then one supervisor per enabled camera. */
export class IngestService implements Service {
  readonly name = 'ingest';
  private readonly supervisors = new Map<string, CameraSupervisor>();
  private capabilities: FfmpegCapabilities | undefined;
  private settings: SupervisorSettings | undefined;

  constructor(private readonly deps: IngestDeps) {}

  async start(signal: AbortSignal): Promise<void> {
    const { config, log } = this.deps;
    const { path, origin } = chooseFfmpeg(config.ffmpeg.path);
    this.capabilities = await probeFfmpeg(path);
    const wrapper = fs.existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL', '--'] : [];
    if (wrapper.length === 0) log.warn({ missing: SETPRIV }, 'ffmpeg children will not be killed if the agent is SIGKILLed');
    log.info(
      {
        ffmpeg: path,
        origin,
        version: this.capabilities.version,
        rtspTimeout: this.capabilities.rtspTimeoutOption,
        resolvesHostNames: this.capabilities.resolvesHostNames,
        hwaccels: this.capabilities.hwaccels,
      },
      'ffmpeg probed',
    );
    if (origin === 'bundled')
      log.info({ fix: 'apt install ffmpeg (Debian 12: 5.1)' }, "using the bundled static ffmpeg 4.1 (2018): Debian's ffmpeg is preferred when installed");
    if (signal.aborted) return;
    this.settings = {
      capabilities: this.capabilities,
      geometry: this.deps.geometry,
      hwaccel: config.ffmpeg.hwaccel,
      socketTimeoutSeconds: config.ffmpeg.socketTimeoutSeconds,
      decodeThreads: config.ffmpeg.decodeThreads,
      stallTimeoutMs: config.ffmpeg.stallTimeoutSeconds * 1000,
      backoff: config.ffmpeg.restartBackoffMs,
      wrapper,
    };
    for (const camera of config.cameras) if (camera.enabled) this.add(camera);
    this.deps.onSlotsChanged?.();
  }

  private add(camera: CameraConfig, firstSeq?: number): void {
    const supervisor = new CameraSupervisor(camera, this.settings!, {
      log: this.deps.log,
      ...(this.deps.spawner ? { spawner: this.deps.spawner } : {}),
      ...(firstSeq !== undefined ? { firstSeq } : {}),
      ...(this.deps.onCameraStateChange ? { onStateChange: this.deps.onCameraStateChange } : {}),
    });
    this.supervisors.set(camera.id, supervisor);
    supervisor.start();
  }

  /**
   * Applies a new camera list: a camera whose settings changed is restarted, one removed is
   * stopped, one added is started; the others are not touched.
   */
  async reconfigure(cameras: readonly CameraConfig[]): Promise<{ added: string[]; removed: string[]; restarted: string[] }> {
    const wanted = new Map(cameras.filter((camera) => camera.enabled).map((camera) => [camera.id, camera]));
    const outcome = { added: [] as string[], removed: [] as string[], restarted: [] as string[] };
    for (const [id, supervisor] of [...this.supervisors]) {
      const next = wanted.get(id);
      if (next && isDeepStrictEqual(next, supervisor.camera)) continue;
      this.supervisors.delete(id);
      await supervisor.stop();
      if (next) {
        this.add(next, supervisor.nextSeq);
        outcome.restarted.push(id);
      } else {
        outcome.removed.push(id);
      }
    }
    for (const [id, camera] of wanted) {
      if (this.supervisors.has(id)) continue;
      this.add(camera);
      outcome.added.push(id);
    }
    if (outcome.added.length + outcome.removed.length + outcome.restarted.length > 0) {
      this.deps.log.info(outcome, 'cameras reconfigured');
      this.deps.onSlotsChanged?.();
    }
    return outcome;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.supervisors.values()].map((supervisor) => supervisor.stop()));
  }

  get slots(): LatestFrameSlot[] {
    return [...this.supervisors.values()].map((supervisor) => supervisor.slot);
  }

  cameras(): CameraState[] {
    return [...this.supervisors.values()].map((supervisor) => supervisor.snapshot());
  }

  health(): Health {
    const cameras = this.cameras();
    const live = cameras.filter((camera) => camera.state === 'streaming').length;
    return {
      ok: cameras.length > 0 && cameras.every((camera) => camera.state !== 'failed-config' && camera.state !== 'stalled'),
      state: `${live}/${cameras.length} streaming`,
      detail: { ffmpeg: this.capabilities?.version, cameras },
    };
  }
}
