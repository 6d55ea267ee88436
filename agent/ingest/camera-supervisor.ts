import { redactUrl } from '../config/redact.js';
import type { CameraConfig } from '../config/schema.js';
import type { ErrorCode } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { backoffDelay } from './backoff.js';
import { buildFfmpegArgs, sourceKind, sourceUrlWithCredentials } from './ffmpeg-args.js';
import type { FfmpegCapabilities } from './ffmpeg-binary.js';
import { FfmpegProcess, type Spawner } from './ffmpeg-process.js';
import { bytesPerFrame, type FrameGeometry } from './frame-geometry.js';
import { FrameReader } from './frame-reader.js';
import { LatestFrameSlot } from './frame-slot.js';
import { classifyStderrLine, parseInputVideoSize } from './stderr-classifier.js';

export type CameraStateName = 'starting' | 'streaming' | 'stalled' | 'backoff' | 'ended' | 'stopped';

export interface CameraState {
  id: string;
  state: CameraStateName;
  since: number;
  /** The URL with credentials removed. */
  source: string;
  reconnects: number;
  lastError: ErrorCode | undefined;
  framesIn: number;
  dropped: number;
  pid: number | undefined;
}

export interface SupervisorSettings {
  capabilities: FfmpegCapabilities;
  geometry: FrameGeometry;
  hwaccel: string;
  socketTimeoutSeconds: number;
  stallTimeoutMs: number;
  backoff: { initial: number; max: number };
}

export interface SupervisorDeps {
  log: Logger;
  spawner?: Spawner;
  random?: () => number;
}

const STDERR_LINES_LOGGED_PER_RUN = 12;
const STDERR_ERRORS_PER_MINUTE = 5;

/**
 * Keeps one camera's ffmpeg running: spawn, read frames, watch for stalls, classify failures,
 * back off with jitter, restart. The child is always stopped in stages and reaped.
 */
export class CameraSupervisor {
  readonly slot: LatestFrameSlot;
  private readonly reader: FrameReader;
  private readonly log: Logger;
  private process: FfmpegProcess | undefined;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private wakeBackoff: (() => void) | undefined;
  private state: CameraStateName = 'stopped';
  private since = Date.now();
  private reconnects = 0;
  private lastError: ErrorCode | undefined;
  private errorLinesThisMinute = 0;
  private errorMinute = 0;

  constructor(private readonly camera: CameraConfig, private readonly settings: SupervisorSettings, private readonly deps: SupervisorDeps) {
    const frameBytes = bytesPerFrame(settings.geometry);
    this.slot = new LatestFrameSlot(camera.id, settings.geometry.width, settings.geometry.height, frameBytes);
    this.reader = new FrameReader(this.slot, frameBytes);
    this.log = deps.log.child({ camera: camera.id });
  }

  start(): void {
    this.stopping = false;
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeBackoff?.();
    await this.process?.stop();
    await this.loop;
    this.loop = undefined;
    this.setState('stopped');
  }

  snapshot(): CameraState {
    return {
      id: this.camera.id,
      state: this.state,
      since: this.since,
      source: redactUrl(this.camera.url),
      reconnects: this.reconnects,
      lastError: this.lastError,
      framesIn: this.slot.framesIn,
      dropped: this.slot.dropped,
      pid: this.process?.running ? this.process.pid : undefined,
    };
  }

  private setState(state: CameraStateName, detail?: Record<string, unknown>): void {
    if (state === this.state) return;
    this.log.info({ from: this.state, to: state, ...detail }, 'camera state');
    this.state = state;
    this.since = Date.now();
  }

  private async run(): Promise<void> {
    let attempt = 0;
    const kind = sourceKind(this.camera.url);
    while (!this.stopping) {
      const framesBefore = this.slot.framesIn;
      const { exit, errorCode, stalled } = await this.runOnce();
      if (this.stopping) break;
      const producedFrames = this.slot.framesIn > framesBefore;
      if (kind === 'file' && !this.camera.loop && exit.code === 0 && !stalled) {
        this.lastError = 'SOURCE_ENDED';
        this.setState('ended');
        return;
      }
      this.lastError = stalled ? 'SOURCE_TIMEOUT' : errorCode ?? 'SOURCE_FAILED';
      attempt = producedFrames ? 0 : attempt + 1;
      const delay = backoffDelay(attempt, this.settings.backoff.initial, this.settings.backoff.max, this.deps.random);
      this.setState('backoff', { error: this.lastError, exitCode: exit.code, signal: exit.signal, retryInMs: delay });
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

  private async runOnce(): Promise<{ exit: { code: number | null; signal: NodeJS.Signals | null }; errorCode: ErrorCode | undefined; stalled: boolean }> {
    const args = buildFfmpegArgs({
      camera: this.camera,
      url: sourceUrlWithCredentials(this.camera),
      capabilities: this.settings.capabilities,
      geometry: this.settings.geometry,
      hwaccel: this.settings.hwaccel,
      socketTimeoutSeconds: this.settings.socketTimeoutSeconds,
    });
    this.setState('starting');
    this.reader.reset();
    this.reader.sourceWidth = 0;
    this.reader.sourceHeight = 0;
    const startedAt = Date.now();
    this.reader.lastFrameAt = 0;
    const process = new FfmpegProcess(this.settings.capabilities.path, args, this.deps.spawner);
    this.process = process;
    this.log.debug({ pid: process.pid, argv: args.map(redactUrl) }, 'ffmpeg started');
    let errorCode: ErrorCode | undefined;
    let stalled = false;
    let linesLogged = 0;
    let pendingStderr = '';

    process.child.stdout.on('data', (chunk: Buffer) => {
      this.reader.push(chunk);
      if (this.state !== 'streaming') this.setState('streaming');
    });
    process.child.stderr.setEncoding('utf8');
    process.child.stderr.on('data', (text: string) => {
      pendingStderr += text;
      let newline = pendingStderr.indexOf('\n');
      while (newline >= 0) {
        const line = pendingStderr.slice(0, newline).trimEnd();
        pendingStderr = pendingStderr.slice(newline + 1);
        newline = pendingStderr.indexOf('\n');
        if (line === '') continue;
        if (this.reader.sourceWidth === 0) {
          const size = parseInputVideoSize(line);
          if (size) {
            this.reader.sourceWidth = size.width;
            this.reader.sourceHeight = size.height;
          }
        }
        const code = classifyStderrLine(line);
        if (code) errorCode ??= code;
        if (code && this.allowErrorLine()) this.log.warn({ ffmpeg: line, code }, 'ffmpeg error');
        else if (linesLogged++ < STDERR_LINES_LOGGED_PER_RUN) this.log.debug({ ffmpeg: line }, 'ffmpeg');
      }
    });

    const stallCheck = setInterval(() => {
      const lastActivity = Math.max(this.reader.lastFrameAt, startedAt);
      if (Date.now() - lastActivity > this.settings.stallTimeoutMs && process.running && !this.stopping) {
        stalled = true;
        this.setState('stalled', { noFrameForMs: Date.now() - lastActivity });
        void process.stop();
      }
    }, Math.min(1000, this.settings.stallTimeoutMs / 2));

    const exit = await process.exited;
    clearInterval(stallCheck);
    if (process.child.pid === undefined) errorCode = 'FFMPEG_NOT_FOUND';
    return { exit, errorCode, stalled };
  }

  private allowErrorLine(): boolean {
    const minute = Math.floor(Date.now() / 60_000);
    if (minute !== this.errorMinute) {
      this.errorMinute = minute;
      this.errorLinesThisMinute = 0;
    }
    return this.errorLinesThisMinute++ < STDERR_ERRORS_PER_MINUTE;
  }
}
