/**
 * The threads phase of bench/ingest-decode.ts: N cameras decoding at once (N ffmpeg with the
 * agent's argv, all reading one RTSP stream), as on a box whose cameras share two cores, with
 * ffmpeg's own thread count and with -threads 1, alternated. Reports the ffmpegs' summed CPU
 * time per camera and the slowest camera's frame rate.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { cameraSchema } from '../agent/config/schema.js';
import type { DecodeSkipMode } from '../agent/ingest/decode-skip.js';
import { buildFfmpegArgs } from '../agent/ingest/ffmpeg-args.js';
import { FfmpegProcess } from '../agent/ingest/ffmpeg-process.js';
import { bytesPerFrame } from '../agent/ingest/frame-geometry.js';
import { SETPRIV } from '../agent/ingest/ingest-service.js';
import { startRtspServer } from '../test/support/rtsp-server.js';
import { encodeH264, median, sleep, table } from './decode-measure.js';
import type { SkipPhaseOptions } from './ingest-decode-skip.js';
import { CLK_TCK, processTicks } from './proc-cpu.js';

export interface ThreadsPhaseOptions extends SkipPhaseOptions {
  cameras: number;
}

interface Sample {
  cpuPerCamera: number;
  slowestFps: number;
}

async function measureCameras(options: ThreadsPhaseOptions, url: string, threads: number, decodeSkip: DecodeSkipMode): Promise<Sample> {
  const frameBytes = bytesPerFrame(options.geometry);
  const camera = cameraSchema.parse({ id: 'bench', url, sampleFps: 5 });
  const args = buildFfmpegArgs({
    camera,
    url,
    capabilities: options.capabilities,
    geometry: options.geometry,
    hwaccel: 'none',
    socketTimeoutSeconds: options.socketTimeoutSeconds,
    decodeThreads: threads,
    decodeSkip,
  });
  const wrapper = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL', '--'] : [];
  const [command, ...prefix] = [...wrapper, options.capabilities.path];
  const procs = Array.from({ length: options.cameras }, () => new FfmpegProcess(command!, [...prefix, ...args]));
  const bytes = procs.map(() => 0);
  procs.forEach((proc, i) => {
    proc.child.stdout.on('data', (chunk: Buffer) => {
      bytes[i]! += chunk.length;
    });
    proc.child.stderr.resume();
  });
  const stopAll = async (): Promise<void> => {
    await Promise.all(procs.map((proc) => proc.stop(true)));
  };
  options.cleanups.add(stopAll);
  try {
    const started = performance.now();
    while (bytes.some((b) => b < frameBytes)) {
      if (procs.some((proc) => !proc.running)) throw new Error(`an ffmpeg exited before its first frame (threads ${threads})`);
      if (performance.now() - started > 30_000) throw new Error('no frame from every camera within 30 s');
      await sleep(50);
    }
    await sleep(options.warmupSeconds * 1000);
    const t0 = performance.now();
    const cpu0 = procs.map((proc) => processTicks(proc.pid!));
    const f0 = bytes.map((b) => Math.floor(b / frameBytes));
    await sleep(options.seconds * 1000);
    const wall = (performance.now() - t0) / 1000;
    const cpu = procs.reduce((sum, proc, i) => sum + processTicks(proc.pid!) - cpu0[i]!, 0);
    const fps = bytes.map((b, i) => (Math.floor(b / frameBytes) - f0[i]!) / wall);
    return { cpuPerCamera: (cpu / CLK_TCK / wall / options.cameras) * 100, slowestFps: Math.min(...fps) };
  } finally {
    await stopAll();
    options.cleanups.delete(stopAll);
  }
}

export async function runThreadsPhase(options: ThreadsPhaseOptions): Promise<void> {
  const file = encodeH264(
    path.join(options.tmp, 'threads-720p-g25-bf3.mp4'),
    ['-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=25', '-t', '20'],
    ['-g', '25', '-keyint_min', '25', '-sc_threshold', '0', '-bf', '3'],
    [options.capabilities.path],
  );
  console.log(`\nthreads: ${options.cameras} cameras at once on one 1280x720 RTSP stream (GOP 1 s, 3 B-frames), 5 fps each, decodeSkip none and nonref`);
  const server = await startRtspServer({ file });
  const stopServer = (): Promise<void> => server.stop();
  options.cleanups.add(stopServer);
  const cases: Array<{ threads: number; skip: DecodeSkipMode }> = [
    { threads: 0, skip: 'none' },
    { threads: 1, skip: 'none' },
    { threads: 0, skip: 'nonref' },
    { threads: 1, skip: 'nonref' },
  ];
  const results = new Map<string, Sample[]>();
  const label = (c: { threads: number; skip: DecodeSkipMode }): string => `${c.skip.padEnd(6)} threads ${c.threads === 0 ? 'auto' : '1   '}`;
  try {
    for (let run = 0; run < options.runs; run++) {
      for (const c of run % 2 === 0 ? cases : [...cases].reverse()) {
        const sample = await measureCameras(options, server.url, c.threads, c.skip);
        results.set(label(c), [...(results.get(label(c)) ?? []), sample]);
        console.log(
          `  run ${run + 1}  ${label(c)}  cpu per camera ${sample.cpuPerCamera.toFixed(2)} %  slowest camera ${sample.slowestFps.toFixed(2)} frames/s`,
        );
        await sleep(1000);
      }
    }
  } finally {
    await stopServer();
    options.cleanups.delete(stopServer);
  }
  const rows = cases.map((c) => {
    const samples = results.get(label(c))!;
    const cpu = samples.map((s) => s.cpuPerCamera);
    return [
      c.skip,
      c.threads === 0 ? 'auto' : '1',
      cpu.map((v) => v.toFixed(2)).join(' / '),
      median(cpu).toFixed(2),
      Math.min(...samples.map((s) => s.slowestFps)).toFixed(2),
    ];
  });
  console.log(`\n${options.cameras} cameras at once, decode CPU per camera (% of one core):\n`);
  console.log(table(['skip', 'threads', 'CPU % per camera (each run)', 'median', 'slowest camera frames/s'], rows, [false, false, true, true, true]));
}
