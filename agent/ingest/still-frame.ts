import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { cameraSchema } from '../config/schema.js';
import { AgentError, errorMessage } from '../errors.js';
import { buildFfmpegArgs } from './ffmpeg-args.js';
import type { FfmpegCapabilities } from './ffmpeg-binary.js';
import type { Frame } from './frame.js';
import { bytesPerFrame, type FrameGeometry } from './frame-geometry.js';
import { parseInputVideoSize } from './stderr-classifier.js';

/**
 * A still image (or a video's first frame) as the live pipeline would see it: the same ffmpeg,
 * argv builder and filter chain as a camera, one frame, with the source picture size read from
 * ffmpeg's input stream line. `model run` and its tests use it, so a model checked on a snapshot
 * sees exactly what it would see live.
 */
export async function readStillFrame(
  file: string,
  geometry: FrameGeometry,
  capabilities: Pick<FfmpegCapabilities, 'path' | 'rtspTimeoutOption' | 'hasFpsMode'>,
  cameraId = 'still',
): Promise<Frame> {
  if (!fs.existsSync(file)) throw new AgentError('IMAGE_UNREADABLE', `${file} does not exist`);
  const camera = cameraSchema.parse({ id: 'still', url: file, sampleFps: null, loop: false, realtime: false });
  const args = buildFfmpegArgs({ camera, url: file, capabilities, geometry, hwaccel: 'none', socketTimeoutSeconds: 10 });
  const output = args.indexOf('pipe:1');
  args.splice(output, 0, '-frames:v', '1');
  const size = bytesPerFrame(geometry);
  const child = spawn(capabilities.path, ['-nostdin', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    stderr += text;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  for await (const chunk of child.stdout) chunks.push(chunk as Buffer);
  let code: number | null;
  try {
    code = await exited;
  } catch (error) {
    throw new AgentError('FFMPEG_NOT_FOUND', `ffmpeg ${capabilities.path} cannot start: ${errorMessage(error)}`, { cause: error });
  }
  const data = Buffer.concat(chunks);
  if (data.length < size) {
    const last =
      stderr
        .trim()
        .split('\n')
        .filter((line) => /error|invalid|failed/i.test(line))
        .slice(-1)[0] ?? `exit code ${code}`;
    throw new AgentError('IMAGE_UNREADABLE', `${file}: ffmpeg could not decode a picture from it: ${last.trim()}`);
  }
  const source = stderr
    .split('\n')
    .map(parseInputVideoSize)
    .find((found) => found !== undefined);
  return {
    cameraId,
    seq: 0,
    capturedAt: Date.now(),
    width: geometry.width,
    height: geometry.height,
    sourceWidth: source?.width ?? 0,
    sourceHeight: source?.height ?? 0,
    roi: undefined,
    data: data.subarray(0, size),
  };
}
