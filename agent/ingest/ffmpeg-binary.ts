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
  /**
   * False for a statically linked build: glibc's name lookup needs its NSS modules, which a
   * static binary cannot load (the bundled 2018 build segfaults on any host name, even
   * localhost). The agent then resolves camera hosts itself and gives ffmpeg the address.
   */
  resolvesHostNames: boolean;
}

/** Debian's ffmpeg, preferred over the bundled build when installed (docs/decisions/0007). */
export const SYSTEM_FFMPEG = '/usr/bin/ffmpeg';

export type FfmpegOrigin = 'config' | 'system' | 'bundled';

/**
 * The ffmpeg to run: ffmpeg.path when set, else Debian's when installed (maintained, security
 * fixes, dynamically linked), else the bundled static 4.1 build as the fallback.
 */
export function chooseFfmpeg(configured: string | undefined, exists: (file: string) => boolean = isExecutable): { path: string; origin: FfmpegOrigin } {
  if (configured !== undefined) return { path: configured, origin: 'config' };
  if (exists(SYSTEM_FFMPEG)) return { path: SYSTEM_FFMPEG, origin: 'system' };
  return { path: bundledFfmpegPath(), origin: 'bundled' };
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false; // absent or not executable: not a candidate
  }
}

const PT_INTERP = 3;

/**
 * An ELF executable without a PT_INTERP program header has no dynamic loader: it is statically
 * linked. Reads only the ELF header and program headers. Not ELF (a script wrapper): false.
 */
export function isStaticElf(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const header = Buffer.alloc(64);
    if (fs.readSync(fd, header, 0, 64, 0) < 52 || header.readUInt32BE(0) !== 0x7f454c46) return false;
    const is64 = header[4] === 2;
    const little = header[5] === 1;
    const u16 = (buffer: Buffer, at: number): number => (little ? buffer.readUInt16LE(at) : buffer.readUInt16BE(at));
    const u32 = (buffer: Buffer, at: number): number => (little ? buffer.readUInt32LE(at) : buffer.readUInt32BE(at));
    const phoff = is64 ? Number(little ? header.readBigUInt64LE(32) : header.readBigUInt64BE(32)) : u32(header, 28);
    const phentsize = u16(header, is64 ? 54 : 42);
    const phnum = u16(header, is64 ? 56 : 44);
    if (phnum === 0 || phentsize === 0 || phnum > 256) return false;
    const table = Buffer.alloc(phentsize * phnum);
    fs.readSync(fd, table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) if (u32(table, i * phentsize) === PT_INTERP) return false;
    return true;
  } catch {
    return false; // unreadable: the probe that follows reports it
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
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
    hwaccels: hwaccelList
      .split('\n')
      .slice(1)
      .map((line) => line.trim())
      .filter((line) => /^[a-z0-9_]+$/.test(line)),
    demuxers: { rtsp: formats['rtsp']?.canDemux === true, mjpeg: formats['mjpeg']?.canDemux === true },
    resolvesHostNames: !isStaticElf(path),
  };
}
