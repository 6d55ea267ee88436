import type { CameraConfig } from '../config/schema.js';
import { errorFixes, type ErrorCode } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { chooseDecodeSkip, keyframeRate, type DecodeSkipChoice, type DecodeSkipMode, type StreamProfile } from './decode-skip.js';
import type { FfmpegCapabilities } from './ffmpeg-binary.js';
import type { Spawner } from './ffmpeg-process.js';
import { buildProbeArgs, probeWindowSeconds, runStreamProbe, type ProbeOutcome } from './stream-probe.js';

/** What status and telemetry show of a camera's decoding (cameras[].decode). */
export interface DecodeState {
  setting: CameraConfig['decodeSkip'];
  mode: DecodeSkipMode;
  reason: string;
  /** DECODE_SKIP_TOO_SPARSE or DECODE_PROBE_FAILED when the setting could not be followed. */
  code: ErrorCode | undefined;
  streamFps: number | undefined;
  refFps: number | undefined;
  keyframeIntervalSeconds: number | undefined;
}

export interface DecodePlannerSettings {
  capabilities: FfmpegCapabilities;
  socketTimeoutSeconds: number;
  wrapper: string[];
}

/** Wall time a probe may take beyond its stream window: connecting, stream analysis, slow decoding. */
const PROBE_SLACK_MS = 8000;

/**
 * Chooses one camera's decoder skipping (agent/ingest/decode-skip.ts) from a probe of its
 * stream. The probe runs before the first start, and again before a start that follows a run
 * which delivered frames when the last probe failed (the camera was unreachable then); a
 * learned profile is kept for the supervisor's life (a config change or reload makes a new
 * supervisor, and so a new probe). No probe when nothing could be skipped (decodeSkip none,
 * or sampleFps null).
 */
export class DecodePlanner {
  private profile: StreamProfile | undefined;
  private probed = false;
  private current: DecodeState | undefined;
  private stopProbe: (() => Promise<void>) | undefined;

  constructor(
    private readonly camera: CameraConfig,
    private readonly settings: DecodePlannerSettings,
    private readonly log: Logger,
    private readonly spawner?: Spawner,
  ) {}

  get state(): DecodeState | undefined {
    return this.current;
  }

  /** The mode for the next ffmpeg start. `fresh`: the previous run delivered frames (or there was none). */
  async plan(url: string, fresh: boolean): Promise<DecodeSkipMode> {
    const { decodeSkip, sampleFps } = this.camera;
    const wanted = decodeSkip !== 'none' && sampleFps !== null;
    if (wanted && this.profile === undefined && (!this.probed || fresh)) {
      const outcome = await this.probe(url, sampleFps);
      this.probed = true;
      if (outcome?.profile) this.profile = outcome.profile;
      else if (outcome?.failure) this.log.info({ ...outcome.failure, elapsedMs: outcome.elapsedMs }, 'stream probe found no profile');
    }
    this.apply(chooseDecodeSkip(decodeSkip, sampleFps, this.profile));
    return this.current!.mode;
  }

  /** Ends a probe in progress (the supervisor is stopping). */
  async stop(): Promise<void> {
    await this.stopProbe?.();
  }

  private async probe(url: string, sampleFps: number): Promise<ProbeOutcome | undefined> {
    const windowSeconds = probeWindowSeconds(sampleFps);
    const args = buildProbeArgs({
      camera: this.camera,
      url,
      capabilities: this.settings.capabilities,
      socketTimeoutSeconds: this.settings.socketTimeoutSeconds,
      windowSeconds,
    });
    const [command, ...prefix] = [...this.settings.wrapper, this.settings.capabilities.path];
    const run = runStreamProbe({
      command: command!,
      prefix,
      args,
      timeoutMs: windowSeconds * 1000 + this.settings.socketTimeoutSeconds * 1000 + PROBE_SLACK_MS,
      ...(this.spawner ? { spawner: this.spawner } : {}),
    });
    this.stopProbe = run.stop;
    try {
      const outcome = await run.outcome;
      if (outcome.profile) {
        const { fps, refFps, keyframeIntervalSeconds, windowSeconds: seen } = outcome.profile;
        this.log.info({ fps, refFps: round(refFps), keyframeIntervalSeconds, windowSeconds: round(seen), elapsedMs: outcome.elapsedMs }, 'stream probed');
      }
      return outcome;
    } finally {
      this.stopProbe = undefined;
    }
  }

  private apply(choice: DecodeSkipChoice): void {
    const profile = this.profile;
    const next: DecodeState = {
      setting: this.camera.decodeSkip,
      mode: choice.mode,
      reason: choice.reason,
      code: choice.code,
      streamFps: profile?.fps,
      refFps: profile ? round(profile.refFps) : undefined,
      keyframeIntervalSeconds: profile?.keyframeIntervalSeconds,
    };
    const changed = this.current?.mode !== next.mode || this.current?.code !== next.code;
    this.current = next;
    if (!changed) return;
    const detail = {
      setting: next.setting,
      mode: next.mode,
      reason: next.reason,
      keyframesPerSecond: profile ? keyframeRate(profile) : undefined,
    };
    if (next.code) this.log.warn({ ...detail, code: next.code, fix: errorFixes[next.code] }, 'decode skipping falls back');
    else this.log.info(detail, 'decode skipping');
  }
}

const round = (value: number): number => Math.round(value * 100) / 100;
