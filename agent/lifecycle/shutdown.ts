import type { Logger } from '../log/logger.js';
import { ExitCode, type ExitCodeValue } from './exit-codes.js';

export type ShutdownReason = 'SIGTERM' | 'SIGINT' | 'uncaughtException' | 'unhandledRejection' | 'startup-failed' | 'finished';

export interface ShutdownOptions {
  log: Logger;
  timeoutMs: number;
  /** Runs once; resolves to the exit code of an orderly shutdown. */
  cleanup: (reason: ShutdownReason) => Promise<ExitCodeValue>;
  exit?: (code: number) => void;
  processLike?: NodeJS.EventEmitter;
  /**
   * Awaited (at most beforeExitMs) before every exit, the forced ones included: what must be
   * quiet when the process ends (a worker thread inside a native call aborts the process).
   */
  beforeExit?: () => Promise<void>;
  beforeExitMs?: number;
}

/**
 * One shutdown path for signals, uncaught errors and unhandled rejections (close-with-grace's
 * shape): the first trigger runs `cleanup` under one deadline, a second signal exits at once.
 */
export class ShutdownController {
  private running: Promise<void> | undefined;
  private exiting = false;
  private readonly exit: (code: number) => void;
  private readonly target: NodeJS.EventEmitter;
  private readonly handlers: Array<[string, (...args: unknown[]) => void]>;

  constructor(private readonly options: ShutdownOptions) {
    this.exit = options.exit ?? ((code) => process.exit(code));
    this.target = options.processLike ?? process;
    this.handlers = [
      ['SIGTERM', () => this.onSignal('SIGTERM')],
      ['SIGINT', () => this.onSignal('SIGINT')],
      ['uncaughtException', (error) => this.onFatal('uncaughtException', error)],
      ['unhandledRejection', (reason) => this.onFatal('unhandledRejection', reason)],
    ];
  }

  install(): this {
    for (const [event, handler] of this.handlers) this.target.on(event, handler);
    return this;
  }

  get inProgress(): boolean {
    return this.running !== undefined;
  }

  /** Starts the shutdown (once); later calls return the same promise. */
  trigger(reason: ShutdownReason, fatal = false): Promise<void> {
    this.running ??= this.run(reason, fatal);
    return this.running;
  }

  private onSignal(signal: 'SIGTERM' | 'SIGINT'): void {
    if (this.exiting) return;
    if (this.running) {
      this.options.log.warn({ signal }, 'second signal: exiting now without cleanup');
      this.finish(ExitCode.FORCED);
      return;
    }
    this.options.log.info({ signal }, 'shutdown requested');
    void this.trigger(signal);
  }

  private onFatal(reason: 'uncaughtException' | 'unhandledRejection', error: unknown): void {
    this.options.log.fatal({ err: error, reason }, 'fatal error: shutting down');
    void this.trigger(reason, true);
  }

  private async run(reason: ShutdownReason, fatal: boolean): Promise<void> {
    const deadline = setTimeout(() => {
      this.options.log.error({ timeoutMs: this.options.timeoutMs }, 'shutdown deadline passed: exiting with subsystems still stopping');
      this.finish(ExitCode.SHUTDOWN_INCOMPLETE);
    }, this.options.timeoutMs);
    let code: ExitCodeValue;
    try {
      code = await this.options.cleanup(reason);
    } catch (error) {
      this.options.log.error({ err: error }, 'shutdown failed');
      code = ExitCode.SHUTDOWN_INCOMPLETE;
    }
    clearTimeout(deadline);
    this.finish(fatal && code === ExitCode.OK ? ExitCode.FATAL : code);
  }

  private finish(code: number): void {
    if (this.exiting) return;
    this.exiting = true;
    const { beforeExit, beforeExitMs = 2000 } = this.options;
    const quiet = beforeExit ? beforeExit() : Promise.resolve();
    let bound: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => {
      bound = setTimeout(resolve, beforeExitMs);
    });
    void Promise.race([quiet.catch((error: unknown) => this.options.log.error({ err: error }, 'before exit: failed')), waited]).then(() => {
      clearTimeout(bound);
      for (const [event, handler] of this.handlers) this.target.off(event, handler);
      this.options.log.flush();
      this.exit(code);
    });
  }
}
