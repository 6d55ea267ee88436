import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { loadConfig } from '../config/load.js';
import { sourceKind, sourceUrlWithCredentials } from '../config/source-url.js';
import { linesOverlaySvg } from '../counting/line-overlay.js';
import { AgentError, errorLines, errorMessage } from '../errors.js';
import { resolveSourceHost } from '../ingest/camera-host.js';
import { chooseFfmpeg, probeFfmpeg } from '../ingest/ffmpeg-binary.js';
import { ExitCode } from '../lifecycle/exit-codes.js';
import type { CliIo } from './io.js';

export const CAMERA_USAGE = `usage:
  cctv-agent camera snapshot ID --lines OUT.jpg [--config FILE]

One full-resolution frame from camera ID (as configured: URL, credentials, transport), with each
of its counting lines drawn in red, its id, and a yellow arrow with the label of each counted
direction (docs/counting.md): to check where the lines are before counting on them.
`;

/** `cctv-agent camera snapshot ID --lines OUT.jpg`. */
export async function cameraCommand(argv: string[], io: CliIo): Promise<number> {
  try {
    const [sub, ...rest] = argv;
    if (sub === undefined || sub === '--help' || sub === '-h' || rest.includes('--help')) {
      io.out.write(CAMERA_USAGE);
      return sub === undefined ? ExitCode.CONFIG : ExitCode.OK;
    }
    if (sub !== 'snapshot') throw new AgentError('USAGE', `unknown camera command "${sub}": cctv-agent camera snapshot ID --lines OUT.jpg`);
    const { values, positionals } = parseArgs({
      args: rest,
      strict: true,
      allowPositionals: true,
      options: { lines: { type: 'string' }, config: { type: 'string', short: 'c' } },
    });
    const [cameraId] = positionals;
    if (cameraId === undefined || values.lines === undefined) throw new AgentError('USAGE', 'give the camera id and --lines OUT.jpg');
    const { config } = loadConfig({ file: values.config, env: io.env });
    const camera = config.cameras.find((one) => one.id === cameraId);
    if (!camera) throw new AgentError('USAGE', `no camera "${cameraId}" in the config (it has ${config.cameras.map((one) => one.id).join(', ')})`);
    // The ffmpeg the agent would run, and the camera's host resolved as the agent does (a static build cannot).
    const ffmpeg = chooseFfmpeg(config.ffmpeg.path).path;
    const capabilities = await probeFfmpeg(ffmpeg);
    const { url } = await resolveSourceHost(camera.id, sourceUrlWithCredentials(camera), capabilities.resolvesHostNames);
    const picture = await grabFrame(ffmpeg, camera, url);
    const { width, height } = await sharp(picture).metadata();
    if (!width || !height) throw new AgentError('SOURCE_INVALID_DATA', `camera "${cameraId}" gave a picture without a size`);
    const overlay = Buffer.from(linesOverlaySvg(camera.lines, width, height));
    await sharp(picture)
      .composite([{ input: overlay, top: 0, left: 0 }])
      .jpeg({ quality: 90 })
      .toFile(values.lines);
    io.out.write(`${values.lines}: ${width}x${height}, ${camera.lines.length} line${camera.lines.length === 1 ? '' : 's'} drawn\n`);
    if (camera.lines.length === 0) io.err.write(`cctv-agent: camera "${cameraId}" has no counting lines: the picture is the plain frame\n`);
    return ExitCode.OK;
  } catch (error) {
    for (const line of errorLines(error)) io.err.write(`${line}\n`);
    if (error instanceof TypeError && 'code' in error) return ExitCode.CONFIG; // parseArgs
    return error instanceof AgentError && (error.code === 'USAGE' || error.code.startsWith('CONFIG_')) ? ExitCode.CONFIG : ExitCode.FATAL;
  }
}

/** One frame at the camera's own resolution, as PNG, from ffmpeg (bounded in time). */
async function grabFrame(ffmpeg: string, camera: { id: string; url: string; transport: string }, url: string): Promise<Buffer> {
  const kind = sourceKind(camera.url);
  if (kind === 'file' && !fs.existsSync(url)) throw new AgentError('SOURCE_NOT_FOUND', `camera "${camera.id}": ${url} does not exist`);
  const input = kind === 'rtsp' && camera.transport !== 'auto' ? ['-rtsp_transport', camera.transport] : [];
  const args = ['-nostdin', '-hide_banner', '-loglevel', 'error', ...input, '-i', url, '-frames:v', '1', '-f', 'image2pipe', '-vcodec', 'png', 'pipe:1'];
  const child = spawn(ffmpeg, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    stderr += text;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  for await (const chunk of child.stdout) chunks.push(chunk as Buffer);
  let code: number | null;
  try {
    code = await exited;
  } catch (error) {
    throw new AgentError('FFMPEG_NOT_FOUND', `ffmpeg ${ffmpeg} cannot start: ${errorMessage(error)}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
  const data = Buffer.concat(chunks);
  if (code !== 0 || data.length === 0) {
    // The message names the camera, never the URL: it may hold credentials.
    const reason = stderr.trim().split('\n').slice(-1)[0]?.replaceAll(url, '<url>') ?? `exit code ${code}`;
    throw new AgentError('SOURCE_FAILED', `camera "${camera.id}": ffmpeg gave no frame (${reason || `exit code ${code}`})`);
  }
  return data;
}
