import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../config/load.js';
import { cameraSchema, type CameraConfig } from '../config/schema.js';
import { AgentError, errorMessage } from '../errors.js';
import { sourceUrlWithCredentials } from '../config/source-url.js';
import { buildFfmpegArgs, videoFilter } from '../ingest/ffmpeg-args.js';
import { resolveSourceHost } from '../ingest/camera-host.js';
import { bundledFfmpegPath, chooseFfmpeg, probeFfmpeg } from '../ingest/ffmpeg-binary.js';
import { bytesPerFrame, type FrameGeometry } from '../ingest/frame-geometry.js';

/**
 * Where calibration (and evaluation) frames come from. Every frame is made by ffmpeg with the
 * agent's own filter chain (agent/ingest/ffmpeg-args.ts), so the quantizer sees exactly the
 * letterboxed pictures the model will see in service.
 */
export type CalibrationSource =
  | { kind: 'images'; dir: string }
  /** seconds: keep frames of even or odd whole seconds only (calibration vs held-out), or all. */
  | { kind: 'video'; file: string; fps: number; seconds: 'even' | 'odd' | 'all' }
  | { kind: 'camera'; configFile: string; cameraId: string; fps: number };

export interface SourceFrames {
  /** HWC frames at the model's input size, in the model's colour order; in source order. */
  frames: Buffer[];
  /** Where each came from ("video.mp4@3.50s", "img.jpg"), for reports. */
  labels: string[];
}

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.bmp', '.webp']);

export function describeSource(source: CalibrationSource): string {
  switch (source.kind) {
    case 'images':
      return `images in ${source.dir}`;
    case 'video':
      return `${path.basename(source.file)} at ${source.fps} fps${source.seconds === 'all' ? '' : `, ${source.seconds} seconds`}`;
    case 'camera':
      return `camera ${source.cameraId} of ${source.configFile} at ${source.fps} fps`;
  }
}

/** Runs ffmpeg and splits its raw output into frames; a failure without any frame is an error. */
async function runFfmpeg(ffmpeg: string, args: string[], geometry: FrameGeometry, what: string, maxFrames?: number): Promise<Buffer[]> {
  const size = bytesPerFrame(geometry);
  const child = spawn(ffmpeg, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let received = 0;
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    stderr = (stderr + text).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  for await (const chunk of child.stdout) {
    chunks.push(chunk as Buffer);
    received += (chunk as Buffer).length;
    // A live camera never ends: stop it once enough frames are in.
    if (maxFrames !== undefined && received >= maxFrames * size) child.kill('SIGTERM');
  }
  let code: number | null;
  try {
    code = await exited;
  } catch (error) {
    throw new AgentError('QUANTIZE_SOURCE_FAILED', `${what}: ffmpeg ${ffmpeg} cannot start: ${errorMessage(error)}`, { cause: error });
  }
  const all = Buffer.concat(chunks);
  const count = Math.min(Math.floor(all.length / size), maxFrames ?? Number.POSITIVE_INFINITY);
  if (count === 0 && code !== 0) {
    const last =
      stderr
        .trim()
        .split('\n')
        .filter((line) => line.trim() !== '')
        .slice(-1)[0] ?? `exit code ${code}`;
    throw new AgentError('QUANTIZE_SOURCE_FAILED', `${what}: ffmpeg failed: ${last}`);
  }
  return Array.from({ length: count }, (_, i) => Buffer.from(all.subarray(i * size, (i + 1) * size)));
}

function fileCamera(file: string, fps: number): CameraConfig {
  return cameraSchema.parse({ id: 'calibration', url: file, sampleFps: fps, loop: false, realtime: false });
}

/** The ffmpeg argv the agent would use for this camera, with a frame limit for live sources. */
function agentArgs(
  camera: CameraConfig,
  url: string,
  geometry: FrameGeometry,
  capabilities: { rtspTimeoutOption: '-stimeout' | '-timeout'; hasFpsMode: boolean },
): string[] {
  const args = buildFfmpegArgs({ camera, url, capabilities, geometry, hwaccel: 'none', socketTimeoutSeconds: 10 });
  return ['-nostdin', ...args.map((arg) => (arg === 'info' ? 'error' : arg))];
}

export async function readSourceFrames(
  source: CalibrationSource,
  geometry: FrameGeometry,
  limit: number,
  ffmpeg: string = bundledFfmpegPath(),
): Promise<SourceFrames> {
  let frames: Buffer[] = [];
  let labels: string[] = [];
  const what = describeSource(source);
  if (source.kind === 'images') {
    let names: string[];
    try {
      names = fs
        .readdirSync(source.dir)
        .filter((name) => IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase()))
        .sort();
    } catch (error) {
      throw new AgentError('QUANTIZE_SOURCE_FAILED', `${what}: the folder cannot be read: ${errorMessage(error)}`, { cause: error });
    }
    for (const name of names.slice(0, limit)) {
      const file = path.join(source.dir, name);
      const args = [
        '-nostdin',
        '-hide_banner',
        '-loglevel',
        'error',
        '-i',
        file,
        '-vf',
        videoFilter(geometry, null),
        '-frames:v',
        '1',
        '-pix_fmt',
        geometry.pixelFormat,
        '-f',
        'rawvideo',
        'pipe:1',
      ];
      frames.push(...(await runFfmpeg(ffmpeg, args, geometry, `${what}: ${name}`)));
      labels.push(name);
    }
  } else if (source.kind === 'video') {
    if (!fs.existsSync(source.file)) throw new AgentError('QUANTIZE_SOURCE_FAILED', `${what}: ${source.file} does not exist`);
    const all = await runFfmpeg(
      ffmpeg,
      agentArgs(fileCamera(source.file, source.fps), source.file, geometry, { rtspTimeoutOption: '-stimeout', hasFpsMode: false }),
      geometry,
      what,
    );
    // ffmpeg's fps filter emits frame i at i / fps seconds.
    const kept = all
      .map((frame, i) => ({ frame, at: i / source.fps }))
      .filter(({ at }) => source.seconds === 'all' || (Math.floor(at + 1e-9) % 2 === 0) === (source.seconds === 'even'));
    // Spread over the whole selection rather than its start, so the scene's variety is seen.
    const picked = kept.length <= limit ? kept : Array.from({ length: limit }, (_, i) => kept[Math.floor((i * kept.length) / limit)]!);
    frames = picked.map(({ frame }) => frame);
    labels = picked.map(({ at }) => `${path.basename(source.file)}@${at.toFixed(2)}s`);
  } else {
    const { config } = loadConfig({ file: source.configFile });
    const camera = config.cameras.find((candidate) => candidate.id === source.cameraId);
    if (!camera) {
      throw new AgentError(
        'QUANTIZE_SOURCE_FAILED',
        `${what}: no camera "${source.cameraId}" in the config (it has ${config.cameras.map((candidate) => candidate.id).join(', ')})`,
      );
    }
    // The ffmpeg the agent would run for this camera, and its host resolved the same way.
    const binary = chooseFfmpeg(config.ffmpeg.path).path;
    const capabilities = await probeFfmpeg(binary);
    let url: string;
    try {
      url = (await resolveSourceHost(camera.id, sourceUrlWithCredentials(camera), capabilities.resolvesHostNames)).url;
    } catch (error) {
      throw new AgentError('QUANTIZE_SOURCE_FAILED', `${what}: ${errorMessage(error)}`, { cause: error });
    }
    // A file camera is read once, as fast as it decodes; a live one until enough frames arrived.
    const live: CameraConfig = { ...camera, sampleFps: source.fps, loop: false, realtime: false };
    frames = await runFfmpeg(binary, agentArgs(live, url, geometry, capabilities), geometry, what, limit);
    labels = frames.map((_, i) => `${camera.id}#${i}`);
  }
  if (frames.length === 0)
    throw new AgentError('QUANTIZE_NO_FRAMES', `${what}: no frames${source.kind === 'images' ? ' (no .jpg, .png, .bmp or .webp files)' : ''}`);
  return { frames, labels };
}
