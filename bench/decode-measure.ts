/**
 * One decode measurement for bench/ingest-decode.ts: ONE ffmpeg with a given argv, spawned
 * like the agent spawns it (FfmpegProcess behind setpriv), its stdout counted in whole frames
 * (pixels discarded), its CPU time (utime+stime of all its threads, /proc/<pid>/stat) over a
 * fixed window after a warm-up; plus the machine's other load over the same window. Also the
 * helpers the report needs (median, table, a file's video description) and the test-stream
 * encoder.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { FfmpegProcess } from '../agent/ingest/ffmpeg-process.js';
import { SETPRIV } from '../agent/ingest/ingest-service.js';
import type { RtspServerHandle } from '../test/support/rtsp-server.js';
import type { BenchCleanup } from './cleanup.js';
import { CLK_TCK, processTicks } from './proc-cpu.js';

const FIRST_FRAME_TIMEOUT_MS = 30_000;

export interface MeasureOptions {
  ffmpeg: string;
  args: string[];
  frameBytes: number;
  seconds: number;
  warmupSeconds: number;
  server: RtspServerHandle | undefined;
  cleanups: BenchCleanup;
  /** Names the configuration in error messages. */
  label: string;
}

export interface Measurement {
  /** ffmpeg CPU time / wall time, in % of one core. */
  cpuPercent: number;
  framesPerSecond: number;
  frames: number;
  wallSeconds: number;
  /** The RTSP server's own CPU over the window (rtsp input only), % of one core. */
  serverCpuPercent: number | undefined;
  /** Everything else busy on the machine over the window (not ffmpeg, server, this process), % of one core. */
  otherCpuPercent: number;
  stealPercent: number;
  firstFrameMs: number;
}

interface MachineTicks {
  busy: number;
  steal: number;
}

/** Whole machine, from /proc/stat: busy = user+nice+system+irq+softirq; steal = taken by the hypervisor. */
function machineTicks(): MachineTicks {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const [, user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).map(Number);
  return { busy: user + nice + system + irq + softirq, steal };
}

export function loadAverage(): string {
  return os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function measure(options: MeasureOptions): Promise<Measurement> {
  const { args, frameBytes, server } = options;
  // As the agent does: setpriv asks the kernel to kill ffmpeg if this process dies.
  const wrapper = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL', '--'] : [];
  const [command, ...prefix] = [...wrapper, options.ffmpeg];
  const proc = new FfmpegProcess(command!, [...prefix, ...args]);
  const stop = async (): Promise<void> => {
    await proc.stop(true);
  };
  options.cleanups.add(stop);
  try {
    const pid = proc.pid;
    if (pid === undefined) throw new Error(`could not spawn ${options.ffmpeg}`);
    let bytes = 0;
    let stderr = '';
    const started = performance.now();
    let firstFrameAt = 0;
    proc.child.stdout.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (firstFrameAt === 0 && bytes >= frameBytes) firstFrameAt = performance.now();
    });
    proc.child.stderr.setEncoding('utf8');
    proc.child.stderr.on('data', (text: string) => {
      stderr = (stderr + text).slice(-8000);
    });
    const frames = (): number => Math.floor(bytes / frameBytes);
    const failure = (what: string): Error => new Error(`${options.label}: ${what}\nargv: ${args.join(' ')}\n--- ffmpeg stderr (tail) ---\n${stderr}`);

    while (firstFrameAt === 0) {
      if (!proc.running) throw failure('exited before the first frame');
      if (performance.now() - started > FIRST_FRAME_TIMEOUT_MS) throw failure(`no frame within ${FIRST_FRAME_TIMEOUT_MS} ms`);
      await sleep(20);
    }
    await sleep(options.warmupSeconds * 1000);

    const serverPid = server?.pid();
    const t0 = performance.now();
    const f0 = frames();
    const cpu0 = processTicks(pid);
    const server0 = serverPid !== undefined ? processTicks(serverPid) : 0;
    const self0 = process.cpuUsage();
    const machine0 = machineTicks();

    await sleep(options.seconds * 1000);

    const t1 = performance.now();
    const f1 = frames();
    const cpu1 = processTicks(pid);
    const server1 = serverPid !== undefined ? processTicks(serverPid) : 0;
    const self1 = process.cpuUsage(self0);
    const machine1 = machineTicks();
    if (!proc.running) throw failure('exited during the measuring window');

    const wall = (t1 - t0) / 1000;
    const percent = (ticks: number): number => (ticks / CLK_TCK / wall) * 100;
    const selfTicks = ((self1.user + self1.system) / 1e6) * CLK_TCK;
    return {
      cpuPercent: percent(cpu1 - cpu0),
      framesPerSecond: (f1 - f0) / wall,
      frames: f1 - f0,
      wallSeconds: wall,
      serverCpuPercent: serverPid !== undefined ? percent(server1 - server0) : undefined,
      otherCpuPercent: Math.max(0, percent(machine1.busy - machine0.busy - (cpu1 - cpu0) - (server1 - server0) - selfTicks)),
      stealPercent: percent(machine1.steal - machine0.steal),
      firstFrameMs: firstFrameAt - started,
    };
  } finally {
    await stop();
    options.cleanups.delete(stop);
  }
}

/** Encodes a test stream with libx264 (SPS/PPS on every keyframe, as the RTSP test server needs); the first encoder that works wins. */
export function encodeH264(file: string, input: string[], x264: string[], encoders: string[]): string {
  const args = [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'error',
    '-y',
    ...input,
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-pix_fmt',
    'yuv420p',
    ...x264,
    '-x264-params',
    'repeat-headers=1',
    '-movflags',
    '+faststart',
    '-an',
    file,
  ];
  const errors: string[] = [];
  for (const encoder of encoders) {
    try {
      execFileSync(encoder, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 180_000 });
      return file;
    } catch (error) {
      errors.push(`${encoder}: ${String((error as { stderr?: unknown }).stderr ?? error)}`);
    }
  }
  throw new Error(`could not encode ${path.basename(file)} (libx264 needed):\n${errors.join('\n')}`);
}

/** "h264 (High), 320x240, 25 fps, 29.9 s, 431 kbit/s", from ffmpeg's own reading of the file. */
export function describeVideo(ffmpeg: string, file: string): string {
  let banner = '';
  try {
    execFileSync(ffmpeg, ['-hide_banner', '-nostdin', '-i', file], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  } catch (error) {
    banner = String((error as { stderr?: unknown }).stderr ?? ''); // "-i" alone exits 1: no output given
  }
  const duration = /Duration: (\d+):(\d+):([\d.]+)/.exec(banner);
  const seconds = duration ? Number(duration[1]) * 3600 + Number(duration[2]) * 60 + Number(duration[3]) : NaN;
  const video = /Video: (\w+(?: \([^)]*\))?)[^\n]*?(\d{2,5}x\d{2,5})[^\n]*?([\d.]+) fps/.exec(banner);
  const kbits = (statSync(file).size * 8) / 1000 / seconds;
  const codec = video ? `${video[1]}, ${video[2]}, ${video[3]} fps` : 'unknown video';
  return `${path.basename(file)}: ${codec}, ${seconds.toFixed(1)} s, ${kbits.toFixed(0)} kbit/s`;
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export function table(headers: string[], rows: string[][], rightAligned: boolean[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (rightAligned[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
