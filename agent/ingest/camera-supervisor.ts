import { redactUrl } from '../config/redact.js';
import type { CameraConfig } from '../config/schema.js';
import { errorFixes, isAgentError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { backoffDelay } from '../common/backoff.js';
import { sourceKind, sourceUrlWithCredentials } from '../config/source-url.js';
import { resolveSourceHost, systemLookup, type HostLookup } from './camera-host.js';
import { DecodePlanner, type DecodeState } from './decode-planner.js';
import type { DecodeSkipMode } from './decode-skip.js';
import { buildFfmpegArgs } from './ffmpeg-args.js';
import type { FfmpegCapabilities } from './ffmpeg-binary.js';
import { FfmpegProcess, type Spawner } from './ffmpeg-process.js';
import { ErrorLineBudget, FfmpegStderr } from './ffmpeg-stderr.js';
import { bytesPerFrame, type FrameGeometry } from './frame-geometry.js';
import { FrameReader } from './frame-reader.js';
import { LatestFrameSlot } from './frame-slot.js';

export type CameraStateName = 'starting' | 'streaming' | 'stalled' | 'backoff' | 'ended' | 'failed-config' | 'stopped';

/** What telemetry and `status` see of a camera; never holds credentials. */
export interface CameraState {
  id: string;
  state: CameraStateName;
  since: number;
  /** The URL with credentials removed. */
  source: string;
  reconnects: number;
  lastError: ErrorCode | undefined;
  /** The ffmpeg line behind lastError, redacted. */
  lastErrorLine: string | undefined;
  lastErrorAt: number | undefined;
  /** ms streaming without a break, 0 when not streaming. */
  uptimeMs: number;
  framesIn: number;
  dropped: number;
  /** Frames per second delivered by ffmpeg over the last few seconds. */
  decodeFps: number;
  pid: number | undefined;
  /** Decoder skipping in use and why (undefined before the first start). */
  decode: DecodeState | undefined;
}

export interface SupervisorSettings {
  capabilities: FfmpegCapabilities;
  geometry: FrameGeometry;
  hwaccel: string;
  socketTimeoutSeconds: number;
  decodeThreads: number;
  stallTimeoutMs: number;
  backoff: { initial: number; max: number; maxWhenRejected: number };
  /** Prefix to every ffmpeg command, e.g. setpriv --pdeathsig KILL. */
  wrapper: string[];
}

export interface SupervisorDeps {
  log: Logger;
  spawner?: Spawner;
  random?: () => number;
  /** Continues a replaced supervisor's frame numbering. */
  firstSeq?: number;
  /** Told of every state change (for the events table); must not throw. */
  onStateChange?: (change: CameraStateChange) => void;
  /** Name lookup of camera hosts (tests inject one). */
  lookup?: HostLookup;
}

export interface CameraStateChange {
  cameraId: string;
  from: CameraStateName;
  to: CameraStateName;
  /** The error code behind a move to backoff or failed-config. */
  code: string | undefined;
}

/**
 * Failures that retrying fast cannot cure: the camera refused us (retrying only fills its logs
 * and may lock the account), its name does not resolve, or ffmpeg crashes on it.
 */
const PERSISTENT: ReadonlySet<ErrorCode> = new Set([
  'SOURCE_UNAUTHORIZED',
  'SOURCE_NOT_FOUND',
  'SOURCE_INVALID_DATA',
  'CAMERA_HOST_UNRESOLVED',
  'FFMPEG_CRASHED',
]);

/** Signals by which a process dies of its own fault (not a stop we asked for). */
const CRASH_SIGNALS: ReadonlySet<string> = new Set(['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGABRT', 'SIGTRAP', 'SIGSYS']);
const FPS_WINDOW_MS = 5000;
const DRAIN_AFTER_EXIT_MS = 5000;

/** Why ffmpeg ended when its stderr named no cause. */
function exitFailureCode(exitCode: number | null, signal: NodeJS.Signals | null): ErrorCode {
  if (exitCode === null && signal === null) return 'FFMPEG_NOT_FOUND'; // never started
  if (signal !== null && CRASH_SIGNALS.has(signal)) return 'FFMPEG_CRASHED';
  return 'SOURCE_FAILED';
}

/**
 * Keeps one camera's ffmpeg running: spawn, read frames, watch for stalls, classify failures,
 * back off with jitter, restart. Every child is stopped in stages and reaped.
 */
export class CameraSupervisor {
  readonly slot: LatestFrameSlot;
  private readonly reader: FrameReader;
  private readonly log: Logger;
  private readonly errorBudget = new ErrorLineBudget();
  private readonly planner: DecodePlanner;
  private process: FfmpegProcess | undefined;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private wakeBackoff: (() => void) | undefined;
  private state: CameraStateName = 'stopped';
  private since = Date.now();
  private streamingSince = 0;
  private reconnects = 0;
  private lastError: ErrorCode | undefined;
  private lastErrorLine: string | undefined;
  private lastErrorAt: number | undefined;
  private fpsWindowStart = Date.now();
  private fpsWindowFrames = 0;
  private decodeFps = 0;

  constructor(
    readonly camera: CameraConfig,
    private readonly settings: SupervisorSettings,
    private readonly deps: SupervisorDeps,
  ) {
    const frameBytes = bytesPerFrame(settings.geometry);
    this.slot = new LatestFrameSlot(camera.id, settings.geometry.width, settings.geometry.height, frameBytes, camera.roi);
    this.reader = new FrameReader(this.slot, frameBytes, deps.firstSeq ?? 0);
    this.log = deps.log.child({ camera: camera.id });
    this.planner = new DecodePlanner(camera, settings, this.log, deps.spawner);
  }

  get nextSeq(): number {
    return this.reader.nextSeq;
  }

  start(): void {
    this.stopping = false;
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeBackoff?.();
    await this.planner.stop();
    await this.process?.stop(this.reader.lastFrameAt !== 0);
    await this.loop;
    this.loop = undefined;
    this.setState('stopped', { framesIn: this.slot.framesIn, dropped: this.slot.dropped, reconnects: this.reconnects });
  }

  snapshot(): CameraState {
    const now = Date.now();
    if (now - this.fpsWindowStart >= FPS_WINDOW_MS) {
      this.decodeFps = Math.round((((this.slot.framesIn - this.fpsWindowFrames) * 1000) / (now - this.fpsWindowStart)) * 10) / 10;
      this.fpsWindowStart = now;
      this.fpsWindowFrames = this.slot.framesIn;
    }
    return {
      id: this.camera.id,
      state: this.state,
      since: this.since,
      source: redactUrl(this.camera.url),
      reconnects: this.reconnects,
      lastError: this.lastError,
      lastErrorLine: this.lastErrorLine,
      lastErrorAt: this.lastErrorAt,
      uptimeMs: this.state === 'streaming' ? now - this.streamingSince : 0,
      framesIn: this.slot.framesIn,
      dropped: this.slot.dropped,
      decodeFps: this.decodeFps,
      pid: this.process?.running ? this.process.pid : undefined,
      decode: this.planner.state,
    };
  }

  private setState(state: CameraStateName, detail?: Record<string, unknown>): void {
    if (state === this.state) return;
    this.log.info({ from: this.state, to: state, ...detail }, 'camera state');
    const from = this.state;
    this.state = state;
    const code = detail?.['error'];
    this.deps.onStateChange?.({ cameraId: this.camera.id, from, to: state, code: typeof code === 'string' ? code : undefined });
    this.since = Date.now();
    if (state === 'streaming') this.streamingSince = this.since;
  }

  private recordError(code: ErrorCode, line: string | undefined): void {
    this.lastError = code;
    this.lastErrorLine = line;
    this.lastErrorAt = Date.now();
  }

  /** A camera this ffmpeg cannot serve at all: say so once instead of retrying forever. */
  private configProblem(): string | undefined {
    const { capabilities, hwaccel } = this.settings;
    if (hwaccel !== 'none' && hwaccel !== 'auto' && !capabilities.hwaccels.includes(hwaccel)) {
      return `ffmpeg.hwaccel: ${hwaccel} is not supported by ${capabilities.path} (it has: ${capabilities.hwaccels.join(', ') || 'none'})`;
    }
    const kind = sourceKind(this.camera.url);
    if (kind === 'rtsp' && !capabilities.demuxers.rtsp) return `cameras.${this.camera.id}.url: ${capabilities.path} cannot read RTSP`;
    return undefined;
  }

  private async run(): Promise<void> {
    const problem = this.configProblem();
    if (problem) {
      this.recordError('CAMERA_CONFIG_REJECTED', problem);
      this.setState('failed-config', { error: 'CAMERA_CONFIG_REJECTED', problem });
      return;
    }
    let attempt = 0;
    const kind = sourceKind(this.camera.url);
    let lastAddress: string | undefined;
    while (!this.stopping) {
      const framesBefore = this.slot.framesIn;
      let code: ErrorCode;
      let line: string | undefined;
      let exit: Record<string, unknown> = {};
      try {
        const target = await resolveSourceHost(
          this.camera.id,
          sourceUrlWithCredentials(this.camera),
          this.settings.capabilities.resolvesHostNames,
          this.deps.lookup ?? systemLookup,
        );
        if (target.address !== undefined && target.address !== lastAddress) {
          this.log.info({ address: target.address, passedToFfmpeg: !this.settings.capabilities.resolvesHostNames }, 'camera host resolved');
          lastAddress = target.address;
        }
        if (this.stopping) break;
        this.setState('starting');
        // Probed before the first start, and after a reconnection when the last probe failed.
        const decodeSkip = await this.planner.plan(target.url, attempt === 0);
        if (this.stopping) break;
        const { exitCode, signal, stderr, stalled } = await this.runOnce(target.url, decodeSkip);
        if (this.stopping) break;
        if (kind === 'file' && !this.camera.loop && exitCode === 0 && !stalled) {
          this.recordError('SOURCE_ENDED', undefined);
          this.setState('ended');
          return;
        }
        code = stalled ? 'SOURCE_STALLED' : (stderr.errorCode ?? exitFailureCode(exitCode, signal));
        line =
          code === 'FFMPEG_CRASHED'
            ? `ffmpeg ${this.settings.capabilities.path} was killed by ${signal}${stderr.errorLine ? ` after: ${stderr.errorLine}` : ' without a word'}`
            : stderr.errorLine;
        exit = { exitCode, signal };
      } catch (error) {
        if (!isAgentError(error) || error.code !== 'CAMERA_HOST_UNRESOLVED') throw error;
        code = error.code;
        line = error.message;
      }
      this.recordError(code, line);
      if (code === 'CAMERA_CONFIG_REJECTED') {
        this.setState('failed-config', { error: code, ffmpeg: line });
        return;
      }
      attempt = this.slot.framesIn > framesBefore ? 0 : attempt + 1;
      const cap = PERSISTENT.has(code) ? this.settings.backoff.maxWhenRejected : this.settings.backoff.max;
      const delay = backoffDelay(attempt, this.settings.backoff.initial, cap, this.deps.random);
      if (code === 'CAMERA_HOST_UNRESOLVED' || code === 'FFMPEG_CRASHED')
        this.log.warn({ error: code, problem: line, fix: errorFixes[code], retryInMs: delay }, 'camera cannot be opened');
      this.setState('backoff', { error: code, ...exit, retryInMs: delay });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wakeBackoff = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeBackoff = undefined;
      if (!this.stopping) this.reconnects++;
    }
  }

  private async runOnce(
    url: string,
    decodeSkip: DecodeSkipMode,
  ): Promise<{ exitCode: number | null; signal: NodeJS.Signals | null; stderr: FfmpegStderr; stalled: boolean }> {
    const args = buildFfmpegArgs({
      camera: this.camera,
      url,
      capabilities: this.settings.capabilities,
      geometry: this.settings.geometry,
      hwaccel: this.settings.hwaccel,
      socketTimeoutSeconds: this.settings.socketTimeoutSeconds,
      decodeThreads: this.settings.decodeThreads,
      decodeSkip,
    });
    this.setState('starting');
    this.reader.reset();
    const [command, ...prefix] = [...this.settings.wrapper, this.settings.capabilities.path];
    const process = new FfmpegProcess(command!, [...prefix, ...args], this.deps.spawner);
    this.process = process;
    this.log.debug({ pid: process.pid, argv: args.map(redactUrl) }, 'ffmpeg started');
    const stderr = new FfmpegStderr(this.log, this.errorBudget);
    const startedAt = Date.now();
    this.reader.lastFrameAt = 0;
    this.reader.sourceWidth = 0;
    this.reader.sourceHeight = 0;
    let stalled = false;

    // A live camera is read as it comes (the newest frame wins). A file read faster than real
    // time waits for the model instead: stdout pauses while a frame is waiting, ffmpeg blocks on
    // the full pipe, and no CPU goes into decoding frames that would be dropped.
    const { stdout } = process.child;
    const backpressure = sourceKind(this.camera.url) === 'file' && !this.camera.realtime;
    let resumedAt = 0;
    this.reader.waitForModel = backpressure;
    if (backpressure) {
      this.slot.setTakenListener(() => {
        resumedAt = Date.now();
        this.reader.resume();
        if (!this.reader.holding) stdout.resume();
      });
    }
    stdout.on('data', (chunk: Buffer) => {
      if (this.reader.sourceWidth === 0 && stderr.sourceSize) {
        this.reader.sourceWidth = stderr.sourceSize.width;
        this.reader.sourceHeight = stderr.sourceSize.height;
      }
      this.reader.push(chunk);
      if (backpressure && (this.slot.hasReady || this.reader.holding)) stdout.pause();
      if (this.state !== 'streaming' && this.reader.lastFrameAt !== 0) this.setState('streaming');
    });
    process.child.stderr.setEncoding('utf8');
    process.child.stderr.on('data', (text: string) => stderr.push(text));

    // Stdout freshness, not ffmpeg's own timeouts: a camera can stay connected and send nothing.
    const stallCheck = setInterval(
      () => {
        if (stdout.isPaused()) return; // waiting for the model, not for the camera
        const lastActivity = Math.max(this.reader.lastFrameAt, startedAt, resumedAt);
        const silentMs = Date.now() - lastActivity;
        if (silentMs > this.settings.stallTimeoutMs && process.running && !this.stopping && !stalled) {
          stalled = true;
          this.setState('stalled', { noFrameForMs: silentMs });
          void process.stop(false);
        }
      },
      Math.min(250, this.settings.stallTimeoutMs / 4),
    );

    let closed = false;
    stdout.once('close', () => {
      closed = true;
    });
    const exit = await process.exited;
    clearInterval(stallCheck);
    // The last frames may still sit in a paused stdout or the reader: let the model take them.
    const drainUntil = Date.now() + DRAIN_AFTER_EXIT_MS;
    while (backpressure && !this.stopping && (!closed || this.reader.holding) && Date.now() < drainUntil) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (backpressure) this.slot.setTakenListener(undefined);
    return { exitCode: exit.code, signal: exit.signal, stderr, stalled };
  }
}
