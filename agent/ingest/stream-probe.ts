import { redactUrl } from '../config/redact.js';
import type { CameraConfig } from '../config/schema.js';
import { sourceKind } from '../config/source-url.js';
import type { ErrorCode } from '../errors.js';
import type { StreamProfile } from './decode-skip.js';
import type { FfmpegCapabilities } from './ffmpeg-binary.js';
import { FfmpegProcess, type Spawner } from './ffmpeg-process.js';
import { classifyStderrLine } from './stderr-classifier.js';

/**
 * A short look at a camera's stream before its ffmpeg starts: its frame rate, how many frames
 * are left when non-reference frames are skipped, and the keyframe interval. One ffmpeg run
 * with the camera's own input options, decoding reference frames only (-skip_frame noref: a
 * fraction of the normal decode work) through the `showinfo` filter, which prints each
 * frame's time and whether it is a keyframe; nothing is written out. Bounded in stream time
 * (-t) and in wall time.
 */

export interface ProbeArgsInput {
  camera: CameraConfig;
  /** The URL to open, credentials merged in. */
  url: string;
  capabilities: Pick<FfmpegCapabilities, 'rtspTimeoutOption'>;
  socketTimeoutSeconds: number;
  windowSeconds: number;
}

/**
 * Stream seconds to observe: long enough to see, after the first frame, two more keyframes at
 * the longest interval that could still serve sampleFps by keyframes alone (1/sampleFps), and
 * a steady reference frame rate; 2 to 10 s.
 */
export function probeWindowSeconds(sampleFps: number): number {
  return Math.min(10, Math.max(2, 2 / sampleFps + 0.5));
}

export function buildProbeArgs(input: ProbeArgsInput): string[] {
  const { camera } = input;
  const args = ['-hide_banner', '-nostats', '-nostdin', '-loglevel', 'info'];
  const kind = sourceKind(camera.url);
  if (kind === 'rtsp') {
    if (camera.transport !== 'auto') args.push('-rtsp_transport', camera.transport);
    args.push(input.capabilities.rtspTimeoutOption, String(Math.round(input.socketTimeoutSeconds * 1_000_000)));
  } else if (kind === 'http') {
    args.push('-reconnect', '1', '-reconnect_streamed', '1', '-reconnect_delay_max', '5');
  }
  // A file is read as fast as it decodes (no -re): the probe takes a fraction of a second.
  args.push('-skip_frame', 'noref', '-i', input.url, '-an', '-sn', '-dn', '-map', '0:v:0');
  args.push('-vf', 'showinfo', '-t', String(input.windowSeconds), '-f', 'null', '-');
  return args;
}

/** "Stream #0:0: Video: h264 (High), yuv420p, 320x240 [SAR 1:1 DAR 4:3], 25 fps, 25 tbr, 90k tbn" */
function parseStreamFps(line: string): number | undefined {
  if (!/Stream #\d+:\d+.*?: Video: /.test(line)) return undefined;
  const fps = /, (\d+(?:\.\d+)?) fps\b/.exec(line);
  if (fps) return Number(fps[1]);
  const tbr = /, (\d+(?:\.\d+)?)(k?) tbr\b/.exec(line);
  return tbr ? Number(tbr[1]) * (tbr[2] === 'k' ? 1000 : 1) : undefined;
}

const SHOWINFO = /\bn:\s*\d+ pts:\s*-?\d+ pts_time:(-?[\d.]+(?:e[+-]?\d+)?)\s.*?\biskey:([01])/;

/**
 * The profile from the probe's stderr; undefined when the frame rate is not stated or fewer
 * than two frames were decoded after the first keyframe. Frames before the first keyframe
 * (a stream joined mid-GOP) are not counted, nor is the first keyframe itself: a server may
 * send a stale frame on joining (the test server sends its prerolled one, 0.76 s before the
 * next frame of a 1-s GOP), so the first gap says nothing about the stream. The keyframe
 * interval is the LONGEST gap seen between the keyframes after it (a shorter one, e.g. an
 * extra keyframe at a scene cut, must not make keyframes-only sampling look safe).
 */
export function parseStreamProfile(stderr: string): StreamProfile | undefined {
  let fps: number | undefined;
  const times: number[] = [];
  const keyTimes: number[] = [];
  let seenKeyframe = false;
  for (const line of stderr.split('\n')) {
    fps ??= parseStreamFps(line);
    const frame = SHOWINFO.exec(line);
    if (!frame) continue;
    const time = Number(frame[1]);
    const key = frame[2] === '1';
    if (!seenKeyframe) {
      // The first keyframe starts the count and is itself left out.
      seenKeyframe = key;
      continue;
    }
    times.push(time);
    if (key) keyTimes.push(time);
  }
  if (fps === undefined || !(fps > 0) || times.length < 2) return undefined;
  const windowSeconds = times[times.length - 1]! - times[0]!;
  if (!(windowSeconds > 0)) return undefined;
  const gaps = keyTimes.slice(1).map((time, i) => time - keyTimes[i]!);
  return {
    fps,
    // Never above the stream's rate (timestamps rounded to the time base).
    refFps: Math.min(fps, (times.length - 1) / windowSeconds),
    keyframeIntervalSeconds: gaps.length > 0 ? Math.max(...gaps) : undefined,
    windowSeconds,
  };
}

export interface ProbeOutcome {
  profile: StreamProfile | undefined;
  /** Why there is no profile: what ffmpeg said (classified), or a timeout. */
  failure: { code: ErrorCode | undefined; detail: string } | undefined;
  elapsedMs: number;
}

export interface ProbeRunInput {
  command: string;
  /** Wrapper arguments before ffmpeg's own (setpriv ...). */
  prefix: string[];
  args: string[];
  /** Wall-clock bound: the probe is stopped after it. */
  timeoutMs: number;
  spawner?: Spawner;
  now?: () => number;
}

const STDERR_CAP = 2 * 1024 * 1024;

/** Runs one probe; `stop()` on the returned handle ends it early (the agent is stopping). */
export function runStreamProbe(input: ProbeRunInput): { outcome: Promise<ProbeOutcome>; stop: () => Promise<void> } {
  const now = input.now ?? Date.now;
  const started = now();
  const process = new FfmpegProcess(input.command, [...input.prefix, ...input.args], input.spawner);
  let stderr = '';
  process.child.stderr.setEncoding('utf8');
  process.child.stderr.on('data', (text: string) => {
    if (stderr.length < STDERR_CAP) stderr += text;
  });
  process.child.stdout.resume();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void process.stop(false);
  }, input.timeoutMs);
  const outcome = process.exited.then((exit): ProbeOutcome => {
    clearTimeout(timer);
    const profile = parseStreamProfile(stderr);
    const elapsedMs = now() - started;
    if (profile) return { profile, failure: undefined, elapsedMs };
    let code: ErrorCode | undefined;
    let line: string | undefined;
    for (const candidate of stderr.split('\n')) {
      code = classifyStderrLine(candidate);
      if (code) {
        line = redactUrl(candidate).slice(0, 300);
        break;
      }
    }
    const detail = timedOut
      ? `no profile within ${input.timeoutMs} ms`
      : (line ?? `ffmpeg exited (${exit.signal ?? `code ${exit.code}`}) without a frame rate and two decoded frames`);
    return { profile: undefined, failure: { code, detail }, elapsedMs };
  });
  return {
    outcome,
    stop: async () => {
      await process.stop(false);
    },
  };
}
