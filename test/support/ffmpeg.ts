/**
 * Running the bundled ffmpeg (@ffmpeg-installer, ffmpeg 4.1) from tests.
 * ffmpeg 4.1 notes: the RTSP socket timeout is `-stimeout <microseconds>`
 * (`-timeout` means "listen" for RTSP in that version).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from './assets.js';

export const ffmpegPath = path.join(projectRoot, 'node_modules', '@ffmpeg-installer', 'linux-x64', 'ffmpeg');

export interface FfmpegResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when ffmpeg was killed because it ran longer than timeoutMs. */
  timedOut: boolean;
  elapsedMs: number;
}

export interface FfmpegRun {
  pid: number;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Settles when ffmpeg has exited. */
  done: Promise<FfmpegResult>;
  /** SIGTERM (ffmpeg finishes its outputs), SIGKILL after graceMs (default 3000). Resolves with the result. */
  stop(graceMs?: number): Promise<FfmpegResult>;
}

/**
 * Starts ffmpeg with `args` (-hide_banner -nostdin are prepended). It is
 * SIGKILLed after timeoutMs (default 30 s) so a hung ffmpeg cannot outlive
 * a test.
 */
export function startFfmpeg(args: string[], opts: { timeoutMs?: number } = {}): FfmpegRun {
  if (!existsSync(ffmpegPath)) throw new Error(`bundled ffmpeg not found at ${ffmpegPath}`);
  const started = Date.now();
  const child = spawn(ffmpegPath, ['-hide_banner', '-nostdin', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) {
    child.once('error', () => undefined);
    throw new Error(`could not spawn ${ffmpegPath}`);
  }
  const pid = child.pid;
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (t: string) => {
    stdout += t;
  });
  child.stderr.on('data', (t: string) => {
    stderr += t;
    if (stderr.length > 1024 * 1024) stderr = stderr.slice(-512 * 1024);
  });
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 30_000);
  const done = new Promise<FfmpegResult>((resolve) => {
    child.once('error', (err) => {
      stderr += `\n[spawn error: ${err.message}]`;
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, elapsedMs: Date.now() - started });
    });
  });
  return {
    pid,
    stdout: () => stdout,
    stderr: () => stderr,
    done,
    async stop(graceMs = 3000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const result = await done;
        clearTimeout(t);
        return result;
      }
      return done;
    },
  };
}

/** Runs ffmpeg to completion (see startFfmpeg). */
export function runFfmpeg(args: string[], opts: { timeoutMs?: number } = {}): Promise<FfmpegResult> {
  return startFfmpeg(args, opts).done;
}
