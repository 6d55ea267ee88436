/**
 * The decoder-skipping phase of bench/ingest-decode.ts: for each test stream (a known GOP and
 * B-frame layout) the agent's argv with each -skip_frame mode and decoder thread count, side
 * by side, over RTSP from the rig's server. The cases of one stream are measured back to back
 * against one server, in an order that reverses every run, so each mode sees the same machine
 * state on average.
 */
import path from 'node:path';
import { cameraSchema } from '../agent/config/schema.js';
import { sourceUrlWithCredentials } from '../agent/config/source-url.js';
import type { DecodeSkipMode } from '../agent/ingest/decode-skip.js';
import { buildFfmpegArgs } from '../agent/ingest/ffmpeg-args.js';
import type { FfmpegCapabilities } from '../agent/ingest/ffmpeg-binary.js';
import type { FrameGeometry } from '../agent/ingest/frame-geometry.js';
import { bytesPerFrame } from '../agent/ingest/frame-geometry.js';
import { assetPath } from '../test/support/assets.js';
import { startRtspServer } from '../test/support/rtsp-server.js';
import type { BenchCleanup } from './cleanup.js';
import { describeVideo, encodeH264, measure, median, sleep, table, type Measurement } from './decode-measure.js';

export interface SkipPhaseOptions {
  capabilities: FfmpegCapabilities;
  geometry: FrameGeometry;
  socketTimeoutSeconds: number;
  seconds: number;
  warmupSeconds: number;
  runs: number;
  tmp: string;
  cleanups: BenchCleanup;
}

interface Stream {
  name: string;
  file: string;
  layout: string;
}

interface SkipCase {
  sampleFps: number;
  mode: DecodeSkipMode;
  /** ffmpeg -threads; 0: ffmpeg's choice (not passed). */
  threads: number;
}

/** Keyframes-only needs keyframes at sampleFps or more: with GOP 1 s that is 1 fps sampling. */
const CASES: SkipCase[] = [
  { sampleFps: 5, mode: 'none', threads: 0 },
  { sampleFps: 5, mode: 'none', threads: 1 },
  { sampleFps: 5, mode: 'nonref', threads: 0 },
  { sampleFps: 5, mode: 'nonref', threads: 1 },
  { sampleFps: 1, mode: 'none', threads: 0 },
  { sampleFps: 1, mode: 'nonref', threads: 0 },
  { sampleFps: 1, mode: 'keyframes', threads: 0 },
  { sampleFps: 1, mode: 'keyframes', threads: 1 },
];

const caseLabel = (c: SkipCase): string => `${c.sampleFps} fps  ${c.mode.padEnd(9)}  threads ${c.threads === 0 ? 'auto' : c.threads}`;

function makeStreams(tmp: string, ffmpeg: string): Stream[] {
  const highway = assetPath('highway-cctv-320x240.mp4');
  const bframes = encodeH264(
    path.join(tmp, 'highway-g25-bf3.mp4'),
    ['-i', highway],
    ['-g', '25', '-keyint_min', '25', '-sc_threshold', '0', '-bf', '3'],
    [ffmpeg],
  );
  const hd = encodeH264(
    path.join(tmp, 'testsrc2-720p-g25-bf3.mp4'),
    ['-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=25', '-t', '20'],
    ['-g', '25', '-keyint_min', '25', '-sc_threshold', '0', '-bf', '3'],
    [ffmpeg],
  );
  return [
    { name: 'highway 320x240', file: highway, layout: 'as shipped: GOP 25 (1 s), no B-frames' },
    { name: 'highway B-frames', file: bframes, layout: 're-encoded: GOP 25 (1 s), 3 B-frames (x264 b-pyramid)' },
    { name: 'testsrc2 1280x720', file: hd, layout: 'GOP 25 (1 s), 3 B-frames (x264 b-pyramid)' },
  ];
}

/**
 * The GStreamer test server now and then refuses a client that connects right after another
 * left ("Operation not permitted" from ffmpeg's RTSP demuxer): one more try, 2 s later.
 */
async function measureRetrying(options: Parameters<typeof measure>[0]): Promise<Measurement> {
  try {
    return await measure(options);
  } catch (error) {
    console.log(`  (${options.label}: ${String(error).split('\n', 1)[0]}; trying again)`);
    await sleep(2000);
    return measure(options);
  }
}

export async function runSkipPhase(options: SkipPhaseOptions): Promise<void> {
  const { capabilities, geometry } = options;
  const frameBytes = bytesPerFrame(geometry);
  console.log('decoder skipping: the agent argv per -skip_frame mode and -threads, over RTSP, bundled or chosen ffmpeg');
  console.log('  encoding the test streams...');
  const streams = makeStreams(options.tmp, capabilities.path);
  for (const s of streams) console.log(`  stream ${s.name}: ${describeVideo(capabilities.path, s.file)}; ${s.layout}`);
  console.log('');

  const results = new Map<string, Measurement[]>();
  const key = (s: Stream, c: SkipCase): string => `${s.name}|${caseLabel(c)}`;
  for (let run = 0; run < options.runs; run++) {
    for (const stream of streams) {
      const server = await startRtspServer({ file: stream.file });
      const stopServer = (): Promise<void> => server.stop();
      options.cleanups.add(stopServer);
      try {
        const order = run % 2 === 0 ? CASES : [...CASES].reverse();
        for (const c of order) {
          const camera = cameraSchema.parse({ id: 'bench', url: server.url, sampleFps: c.sampleFps });
          const args = buildFfmpegArgs({
            camera,
            url: sourceUrlWithCredentials(camera),
            capabilities,
            geometry,
            hwaccel: 'none',
            socketTimeoutSeconds: options.socketTimeoutSeconds,
            decodeThreads: c.threads,
            decodeSkip: c.mode,
          });
          const m = await measureRetrying({
            ffmpeg: capabilities.path,
            args,
            frameBytes,
            seconds: options.seconds,
            warmupSeconds: options.warmupSeconds,
            server,
            cleanups: options.cleanups,
            label: `${stream.name} ${caseLabel(c)}`,
          });
          const list = results.get(key(stream, c)) ?? [];
          list.push(m);
          results.set(key(stream, c), list);
          console.log(
            `  run ${run + 1}  ${stream.name.padEnd(17)}  ${caseLabel(c)}  cpu ${m.cpuPercent.toFixed(1).padStart(5)} %  ` +
              `${m.framesPerSecond.toFixed(2)} frames/s  server ${(m.serverCpuPercent ?? 0).toFixed(1)} %  others ${m.otherCpuPercent.toFixed(1)} %  steal ${m.stealPercent.toFixed(1)} %`,
          );
          await sleep(500);
        }
      } finally {
        await stopServer();
        options.cleanups.delete(stopServer);
      }
    }
  }

  const fmt = (v: number, digits = 1): string => v.toFixed(digits);
  const rows: string[][] = [];
  for (const stream of streams) {
    const baseline = (fps: number): number => median(results.get(key(stream, { sampleFps: fps, mode: 'none', threads: 0 }))!.map((m) => m.cpuPercent));
    for (const c of CASES) {
      const runs = results.get(key(stream, c))!;
      const cpu = runs.map((m) => m.cpuPercent);
      rows.push([
        stream.name,
        `${c.sampleFps}`,
        c.mode,
        c.threads === 0 ? 'auto' : String(c.threads),
        cpu.map((v) => fmt(v)).join(' / '),
        fmt(median(cpu)),
        `${Math.min(...cpu).toFixed(1)}-${Math.max(...cpu).toFixed(1)}`,
        fmt(median(cpu) / baseline(c.sampleFps), 2),
        fmt(median(runs.map((m) => m.framesPerSecond)), 2),
        fmt(median(runs.map((m) => m.otherCpuPercent)), 0),
      ]);
    }
  }
  console.log('\nDecode CPU per camera by skip mode (ffmpeg CPU time incl. all threads / wall time, % of one core):\n');
  console.log(
    table(['stream', 'sample fps', 'skip', 'threads', 'CPU % (each run)', 'median', 'range', 'vs none/auto', 'frames/s', 'others %'], rows, [
      false,
      true,
      false,
      false,
      true,
      true,
      true,
      true,
      true,
      true,
    ]),
  );
}
