import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import FfmpegCommand from 'fluent-ffmpeg';
import { AgentError, errorMessage } from '../errors.js';

const execFileAsync = promisify(execFile);

/** What the argv builder needs to know about the ffmpeg binary in use. */
export interface FfmpegCapabilities {
  path: string;
  /** e.g. "4.1", "5.1.6", or the git tag of a static build. */
  version: string;
  major: number | undefined;
  /** The RTSP socket timeout option: -stimeout up to 4.x, -timeout from 5.0. */
  rtspTimeoutOption: '-stimeout' | '-timeout';
  /** -fps_mode exists from 5.1; older builds only have -vsync. */
  hasFpsMode: boolean;
  hwaccels: string[];
  demuxers: { rtsp: boolean; mjpeg: boolean };
}

export function bundledFfmpegPath(): string {
  const installer = createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg') as { path: string };
  return installer.path;
}

async function run(path: string, args: string[]): Promise<string> {
  const { stdout, stderr } = await execFileAsync(path, args, { timeout: 10_000, maxBuffer: 4 * 1024 * 1024 });
  return `${stdout}\n${stderr}`;
}

/** fluent-ffmpeg parses `ffmpeg -formats` for us; its cache is module-wide, so one binary per process. */
function availableFormats(path: string): Promise<Record<string, { canDemux: boolean; canMux: boolean }>> {
  return new Promise((resolve, reject) => {
    const command = FfmpegCommand();
    command.setFfmpegPath(path);
    command.availableFormats((error, formats) => (error ? reject(error) : resolve(formats as Record<string, { canDemux: boolean; canMux: boolean }>)));
  });
}

export function parseVersion(banner: string): { version: string; major: number | undefined } {
  const version = /ffmpeg version (\S+)/.exec(banner)?.[1] ?? 'unknown';
  const numeric = /^n?(\d+)\.(\d+)/.exec(version);
  // Static git builds ("N-47683-g0e8eb07980-static") carry no number; libavformat's major does.
  const libavformat = /libavformat\s+(\d+)\./.exec(banner);
  const avformatToFfmpeg: Record<number, number> = { 58: 4, 59: 5, 60: 6, 61: 7, 62: 8 };
  const major = numeric ? Number(numeric[1]) : libavformat ? avformatToFfmpeg[Number(libavformat[1])] : undefined;
  return { version, major };
}

export async function probeFfmpeg(path: string): Promise<FfmpegCapabilities> {
  if (!fs.existsSync(path)) throw new AgentError('FFMPEG_NOT_FOUND', `ffmpeg not found at ${path}`);
  let banner: string;
  let rtspHelp: string;
  let hwaccelList: string;
  let formats: Record<string, { canDemux: boolean; canMux: boolean }>;
  try {
    banner = await run(path, ['-hide_banner', '-version']);
    rtspHelp = await run(path, ['-hide_banner', '-h', 'demuxer=rtsp']);
    hwaccelList = await run(path, ['-hide_banner', '-hwaccels']);
    formats = await availableFormats(path);
  } catch (error) {
    throw new AgentError('FFMPEG_PROBE_FAILED', `ffmpeg at ${path} does not run: ${errorMessage(error)}`, { cause: error });
  }
  const { version, major } = parseVersion(banner);
  return {
    path,
    version,
    major,
    rtspTimeoutOption: /^\s*-stimeout\b/m.test(rtspHelp) ? '-stimeout' : '-timeout',
    hasFpsMode: major !== undefined && major >= 5,
    hwaccels: hwaccelList.split('\n').slice(1).map((line) => line.trim()).filter((line) => /^[a-z0-9_]+$/.test(line)),
    demuxers: { rtsp: formats['rtsp']?.canDemux === true, mjpeg: formats['mjpeg']?.canDemux === true },
  };
}
