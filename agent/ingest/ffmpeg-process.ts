import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

export interface StopTimeouts {
  /** After "q" on stdin (lets ffmpeg send RTSP TEARDOWN). */
  quitMs: number;
  /** After SIGTERM. */
  termMs: number;
  /** After SIGKILL: only a process stuck in the kernel survives it. */
  killMs: number;
}

export const DEFAULT_STOP_TIMEOUTS: StopTimeouts = { quitMs: 1500, termMs: 1500, killMs: 2000 };

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export type Spawner = (command: string, args: string[]) => ChildProcessByStdio<Writable, Readable, Readable>;

export const spawnProcess: Spawner = (command, args) => spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });

/**
 * One ffmpeg child: started once, stopped in stages (q, SIGTERM, SIGKILL, each wait bounded),
 * and always reaped: `exited` settles only when the OS reported the exit.
 */
export class FfmpegProcess {
  readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | undefined;

  constructor(command: string, args: string[], spawner: Spawner = spawnProcess) {
    this.child = spawner(command, args);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
      // A failed spawn (ENOENT, EACCES) emits 'error' and no 'exit'.
      this.child.once('error', () => {
        if (this.child.pid === undefined && this.exitInfo === undefined) {
          this.exitInfo = { code: null, signal: null };
          resolve(this.exitInfo);
        }
      });
    });
    // stdin errors (EPIPE once ffmpeg is gone) are expected while stopping.
    this.child.stdin.on('error', () => undefined);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /**
   * `graceful`: ask with "q" first. Worth it once streaming (ffmpeg then sends RTSP TEARDOWN);
   * while still connecting ffmpeg does not read stdin, so the wait would only delay the stop.
   */
  async stop(graceful = true, timeouts: StopTimeouts = DEFAULT_STOP_TIMEOUTS): Promise<ExitInfo> {
    if (this.exitInfo) return this.exitInfo;
    if (graceful && this.child.stdin.writable) {
      this.child.stdin.end('q\n');
      if (await this.waitExit(timeouts.quitMs)) return this.exitInfo!;
    }
    this.child.kill('SIGTERM');
    if (await this.waitExit(timeouts.termMs)) return this.exitInfo!;
    this.child.kill('SIGKILL');
    if (await this.waitExit(timeouts.killMs)) return this.exitInfo!;
    // Still not reaped: wait for it anyway, or a zombie would outlive us.
    return this.exited;
  }

  private waitExit(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      void this.exited.then(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}
