import { redactUrl } from '../config/redact.js';
import type { ErrorCode } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { classifyStderrLine, parseInputVideoSize } from './stderr-classifier.js';

const LINES_LOGGED_PER_RUN = 12;
const ERROR_LINES_PER_MINUTE = 5;

/**
 * Reads one ffmpeg run's stderr: splits lines, picks up the input picture size, keeps the
 * first failure it recognises, and logs the first lines and then failures at a bounded rate.
 * Lines are redacted before they are kept or logged (ffmpeg echoes the URL it was given).
 */
export class FfmpegStderr {
  private pending = '';
  private linesLogged = 0;
  errorCode: ErrorCode | undefined;
  errorLine: string | undefined;
  sourceSize: { width: number; height: number } | undefined;

  constructor(
    private readonly log: Logger,
    private readonly errorBudget: ErrorLineBudget,
  ) {}

  push(text: string): void {
    this.pending += text;
    let newline = this.pending.indexOf('\n');
    while (newline >= 0) {
      const line = this.pending.slice(0, newline).trimEnd();
      this.pending = this.pending.slice(newline + 1);
      newline = this.pending.indexOf('\n');
      if (line !== '') this.onLine(line);
    }
  }

  private onLine(raw: string): void {
    const line = redactUrl(raw);
    this.sourceSize ??= parseInputVideoSize(line);
    const code = classifyStderrLine(line);
    if (code && this.errorCode === undefined) {
      this.errorCode = code;
      this.errorLine = line.slice(0, 300);
    }
    if (code && this.errorBudget.take()) this.log.warn({ ffmpeg: line, code }, 'ffmpeg error');
    else if (this.linesLogged++ < LINES_LOGGED_PER_RUN) this.log.debug({ ffmpeg: line }, 'ffmpeg');
  }
}

/** Failure lines logged per camera and minute, across ffmpeg restarts. */
export class ErrorLineBudget {
  private minute = 0;
  private used = 0;

  constructor(
    private readonly perMinute = ERROR_LINES_PER_MINUTE,
    private readonly now: () => number = Date.now,
  ) {}

  take(): boolean {
    const minute = Math.floor(this.now() / 60_000);
    if (minute !== this.minute) {
      this.minute = minute;
      this.used = 0;
    }
    return this.used++ < this.perMinute;
  }
}
