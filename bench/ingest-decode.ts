/**
 * Decode cost per camera: CPU (% of one core) and frames/s of the agent's ffmpeg child at
 * 5 fps sampling, for the highway clip (320x240) and a 1280x720 H.264 stream (testsrc2), with
 * the bundled ffmpeg (@ffmpeg-installer) and Debian's (/usr/bin/ffmpeg) side by side.
 *
 * Each measurement runs ONE ffmpeg with exactly the agent's argv (buildFfmpegArgs, spawned via
 * FfmpegProcess behind setpriv like the agent does), reads its stdout (counting whole 416x416
 * bgr24 frames, discarding the pixels), and reads its CPU time (utime+stime of all its threads)
 * from /proc/<pid>/stat at the start and the end of a fixed window. Configurations run one after
 * another, never concurrently; each is measured BENCH_RUNS times, interleaved so that both
 * binaries see the same machine state, and the binary order alternates between runs.
 *
 * A second phase (BENCH_PHASES=skip, bench/ingest-decode-skip.ts) measures the decoder-level
 * skipping modes (-skip_frame noref / nokey) and -threads 1 side by side on test streams of
 * known GOP and B-frame layout.
 *
 * Run from the project root (see bench/README.md; needs scripts/install-test-deps.sh for the
 * RTSP server, scripts/install-bench-deps.sh for Debian's ffmpeg, and the test assets). The
 * TypeScript sources run as they are, through Vite's module runner; no build needed:
 *   node scripts/run-ts.mjs bench/ingest-decode.ts
 * Results: docs/benchmarks/ingest-decode.md.
 *
 * Environment:
 *   BENCH_SECONDS         measuring window per measurement, after the warm-up (default 15)
 *   BENCH_WARMUP_SECONDS  skipped after the first frame: connection, probing, fps-filter start (default 2)
 *   BENCH_RUNS            measurements per configuration (default 2)
 *   BENCH_INPUTS          comma list of "rtsp" (through the rig's RTSP server) and "file" (the
 *                         same MP4 read directly, -re -stream_loop -1, as a file:// camera) (default rtsp,file)
 *   BENCH_DEBIAN_FFMPEG   the second ffmpeg (default /usr/bin/ffmpeg; absent: bundled only)
 *   BENCH_PHASES          comma list of "binaries" (bundled vs Debian), "skip" (skip modes, one camera at a time) and
 *                         "threads" (BENCH_CAMERAS cameras decoding at once, ffmpeg's threads vs -threads 1) (default binaries,skip)
 *   BENCH_CAMERAS         cameras at once in the threads phase (default 8)
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cameraSchema, configSchema } from '../agent/config/schema.js';
import { sourceUrlWithCredentials } from '../agent/config/source-url.js';
import { buildFfmpegArgs } from '../agent/ingest/ffmpeg-args.js';
import { bundledFfmpegPath, probeFfmpeg, type FfmpegCapabilities } from '../agent/ingest/ffmpeg-binary.js';
import { bytesPerFrame, type FrameGeometry } from '../agent/ingest/frame-geometry.js';
import { assetPath } from '../test/support/assets.js';
import { startRtspServer, type RtspServerHandle } from '../test/support/rtsp-server.js';
import { BenchCleanup, runBenchmark } from './cleanup.js';
import { describeVideo, encodeH264, loadAverage, measure as measureArgs, median, sleep, table, type Measurement } from './decode-measure.js';
import { runSkipPhase } from './ingest-decode-skip.js';
import { runThreadsPhase } from './ingest-decode-threads.js';

// ---------------------------------------------------------------- settings

function envNumber(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new Error(`${name} must be a number >= ${min}, got "${raw}"`);
  return value;
}

const SECONDS = envNumber('BENCH_SECONDS', 15, 1);
const WARMUP_SECONDS = envNumber('BENCH_WARMUP_SECONDS', 2, 0);
const RUNS = Math.round(envNumber('BENCH_RUNS', 2, 1));
const INPUTS = (process.env.BENCH_INPUTS ?? 'rtsp,file')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
for (const input of INPUTS) if (input !== 'rtsp' && input !== 'file') throw new Error(`BENCH_INPUTS: unknown input "${input}" (rtsp, file)`);
const DEBIAN_FFMPEG = process.env.BENCH_DEBIAN_FFMPEG || '/usr/bin/ffmpeg';
const PHASES = (process.env.BENCH_PHASES ?? 'binaries,skip')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
for (const phase of PHASES)
  if (phase !== 'binaries' && phase !== 'skip' && phase !== 'threads') throw new Error(`BENCH_PHASES: unknown phase "${phase}" (binaries, skip, threads)`);
const CAMERAS = Math.round(envNumber('BENCH_CAMERAS', 8, 1));

const SAMPLE_FPS = 5;
/** The default model's input (YOLOX-nano): what the agent asks ffmpeg for. */
const GEOMETRY: FrameGeometry = { width: 416, height: 416, pixelFormat: 'bgr24', resize: { mode: 'letterbox', padValue: 114, anchor: 'top-left' } };
const FRAME_BYTES = bytesPerFrame(GEOMETRY);
/** The agent's own defaults (hwaccel none, socket timeout), read from the config schema. */
const FFMPEG_DEFAULTS = configSchema.shape.ffmpeg.parse(undefined);

// ---------------------------------------------------------------- cleanup

const cleanups = new BenchCleanup('stopping ffmpeg and the RTSP server');

// ---------------------------------------------------------------- one measurement

interface Binary {
  label: string;
  capabilities: FfmpegCapabilities;
}

function measure(binary: Binary, url: string, server: RtspServerHandle | undefined): Promise<Measurement> {
  const camera = cameraSchema.parse({ id: 'bench', url, sampleFps: SAMPLE_FPS, decodeSkip: 'none' });
  const args = buildFfmpegArgs({
    camera,
    url: sourceUrlWithCredentials(camera),
    capabilities: binary.capabilities,
    geometry: GEOMETRY,
    hwaccel: FFMPEG_DEFAULTS.hwaccel,
    socketTimeoutSeconds: FFMPEG_DEFAULTS.socketTimeoutSeconds,
  });
  return measureArgs({
    ffmpeg: binary.capabilities.path,
    args,
    frameBytes: FRAME_BYTES,
    seconds: SECONDS,
    warmupSeconds: WARMUP_SECONDS,
    server,
    cleanups,
    label: `${binary.label} on ${url}`,
  });
}

// ---------------------------------------------------------------- sources

interface Source {
  name: string;
  file: string;
  description: string;
}

/** 20 s of testsrc2 at 1280x720/25, H.264 High, GOP 25, no B-frames, SPS/PPS on every keyframe. */
function makeTestsrc2(dir: string, encoders: string[]): string {
  return encodeH264(
    path.join(dir, 'testsrc2-1280x720-h264.mp4'),
    ['-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=25', '-t', '20'],
    ['-g', '25', '-bf', '0'],
    encoders,
  );
}

// ---------------------------------------------------------------- main

interface Result {
  source: Source;
  input: string;
  binary: Binary;
  runs: Measurement[];
}

async function main(): Promise<void> {
  cleanups.installSignalHandlers();

  const bundledPath = bundledFfmpegPath();
  const binaries: Binary[] = [{ label: 'bundled', capabilities: await probeFfmpeg(bundledPath) }];
  const debianPresent = existsSync(DEBIAN_FFMPEG);
  // probeFfmpeg's format list is cached per process (fluent-ffmpeg): only `demuxers` of the
  // second probe would be stale, and this bench does not use it.
  if (debianPresent) binaries.push({ label: 'debian', capabilities: await probeFfmpeg(DEBIAN_FFMPEG) });

  const tmp = mkdtempSync(path.join(os.tmpdir(), 'cctv-bench-ingest-'));
  cleanups.add(() => rmSync(tmp, { recursive: true, force: true }));

  console.log("ingest decode bench: the agent's ffmpeg argv, one camera at a time");
  console.log(`  machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), shared; load average at start ${loadAverage()}`);
  console.log(
    `  sampling ${SAMPLE_FPS} fps -> ${GEOMETRY.width}x${GEOMETRY.height} ${GEOMETRY.pixelFormat} letterbox; window ${SECONDS} s after ${WARMUP_SECONDS} s warm-up; ${RUNS} run(s); inputs: ${INPUTS.join(', ')}`,
  );
  for (const b of binaries) {
    console.log(
      `  ffmpeg ${b.label}: ${b.capabilities.path} (version ${b.capabilities.version}; ${b.capabilities.rtspTimeoutOption}; hwaccels compiled in: ${b.capabilities.hwaccels.join(', ') || 'none'})`,
    );
  }
  if (!debianPresent)
    console.log(`  ffmpeg debian: not found at ${DEBIAN_FFMPEG}: measuring the bundled build only (install it with scripts/install-bench-deps.sh)`);
  const gpu = existsSync('/dev/dri') || existsSync('/dev/nvidia0');
  console.log(
    `  hardware decode: ${gpu ? 'a GPU device exists, but' : 'no /dev/dri or /dev/nvidia0, so'} -hwaccel is not measured (the agent's default is none)`,
  );

  if (PHASES.includes('binaries')) await runBinariesPhase(binaries, tmp, bundledPath, debianPresent);
  // The ffmpeg the agent would run here: Debian's when installed, else the bundled one.
  const phaseOptions = {
    capabilities: binaries[binaries.length - 1]!.capabilities,
    geometry: GEOMETRY,
    socketTimeoutSeconds: FFMPEG_DEFAULTS.socketTimeoutSeconds,
    seconds: SECONDS,
    warmupSeconds: WARMUP_SECONDS,
    runs: RUNS,
    tmp,
    cleanups,
  };
  if (PHASES.includes('skip')) await runSkipPhase(phaseOptions);
  if (PHASES.includes('threads')) await runThreadsPhase({ ...phaseOptions, cameras: CAMERAS });
  console.log(`\nload average at end ${loadAverage()}. "others %": the rest of the machine over each window (other users of this shared`);
  console.log('2-core machine), % of one core; large values mean the figures above are noisier.');
}

async function runBinariesPhase(binaries: Binary[], tmp: string, bundledPath: string, debianPresent: boolean): Promise<void> {
  const encoders = [bundledPath, ...(debianPresent ? [DEBIAN_FFMPEG] : [])];
  console.log('  encoding the 1280x720 testsrc2 stream...');
  const hd = makeTestsrc2(tmp, encoders);
  const sources: Source[] = [
    { name: 'highway 320x240', file: assetPath('highway-cctv-320x240.mp4'), description: '' },
    { name: 'testsrc2 1280x720', file: hd, description: '' },
  ];
  for (const s of sources) {
    s.description = describeVideo(bundledPath, s.file);
    console.log(`  source ${s.name}: ${s.description}`);
  }
  console.log('');

  const results: Result[] = [];
  const resultFor = (source: Source, input: string, binary: Binary): Result => {
    let r = results.find((x) => x.source === source && x.input === input && x.binary === binary);
    if (!r) {
      r = { source, input, binary, runs: [] };
      results.push(r);
    }
    return r;
  };

  const measureAll = async (source: Source, input: string, url: string, server: RtspServerHandle | undefined, run: number): Promise<void> => {
    // Alternate which binary goes first, so neither always gets the "fresher" machine.
    const order = run % 2 === 0 ? binaries : [...binaries].reverse();
    for (const binary of order) {
      const m = await measure(binary, url, server);
      resultFor(source, input, binary).runs.push(m);
      console.log(
        `  run ${run + 1}  ${source.name.padEnd(17)}  ${input.padEnd(4)}  ${binary.label.padEnd(7)}  ` +
          `cpu ${m.cpuPercent.toFixed(1).padStart(5)} %  ${m.framesPerSecond.toFixed(2)} frames/s (${m.frames} in ${m.wallSeconds.toFixed(1)} s)  ` +
          `first frame ${(m.firstFrameMs / 1000).toFixed(1)} s  ` +
          (m.serverCpuPercent !== undefined ? `server ${m.serverCpuPercent.toFixed(1)} %  ` : '') +
          `others ${m.otherCpuPercent.toFixed(1)} %  steal ${m.stealPercent.toFixed(1)} %`,
      );
      await sleep(500);
    }
  };

  for (let run = 0; run < RUNS; run++) {
    for (const source of sources) {
      if (INPUTS.includes('rtsp')) {
        const server = await startRtspServer({ file: source.file });
        const stopServer = (): Promise<void> => server.stop();
        cleanups.add(stopServer);
        try {
          await measureAll(source, 'rtsp', server.url, server, run);
        } finally {
          await stopServer();
          cleanups.delete(stopServer);
        }
      }
      if (INPUTS.includes('file')) await measureAll(source, 'file', source.file, undefined, run);
    }
  }

  // ---- summary
  const fmt = (v: number, digits = 1): string => v.toFixed(digits);
  const versionOf = (b: Binary): string =>
    `${b.label} ${b.capabilities.version.replace(/-static$/, '')}${b.capabilities.major !== undefined && !b.capabilities.version.startsWith(String(b.capabilities.major)) ? ` (${b.capabilities.major}.x)` : ''}`;
  const rows = results.map((r) => {
    const cpu = r.runs.map((m) => m.cpuPercent);
    return [
      r.source.name,
      r.input,
      versionOf(r.binary),
      cpu.map((v) => fmt(v)).join(' / '),
      fmt(median(cpu)),
      fmt(median(r.runs.map((m) => m.framesPerSecond)), 2),
      r.input === 'rtsp' ? fmt(median(r.runs.map((m) => m.serverCpuPercent ?? 0))) : '-',
      fmt(median(r.runs.map((m) => m.otherCpuPercent))),
    ];
  });
  console.log('\nDecode cost per camera (CPU time of the ffmpeg process incl. all threads / wall time):\n');
  console.log(
    table(['source', 'input', 'ffmpeg', 'CPU % of one core (each run)', 'median', 'frames/s', 'RTSP server %', 'others %'], rows, [
      false,
      false,
      false,
      true,
      true,
      true,
      true,
      true,
    ]),
  );

  if (binaries.length === 2) {
    const [bundled, debian] = binaries as [Binary, Binary];
    const ratioRows: string[][] = [];
    for (const source of sources) {
      for (const input of INPUTS) {
        const a = resultFor(source, input, bundled).runs;
        const b = resultFor(source, input, debian).runs;
        const perRun = a.map((m, i) => (b[i] ? b[i].cpuPercent / m.cpuPercent : NaN));
        ratioRows.push([
          source.name,
          input,
          perRun.map((v) => fmt(v, 2)).join(' / '),
          fmt(median(b.map((m) => m.cpuPercent)) / median(a.map((m) => m.cpuPercent)), 2),
        ]);
      }
    }
    console.log("\nDebian / bundled CPU (below 1: Debian's build decodes cheaper), same run:\n");
    console.log(table(['source', 'input', 'ratio (each run)', 'ratio of medians'], ratioRows, [false, false, true, true]));
  } else {
    console.log("\n(Debian's ffmpeg absent: no Debian / bundled ratio.)");
  }
  console.log('');
}

await runBenchmark(main, cleanups);
