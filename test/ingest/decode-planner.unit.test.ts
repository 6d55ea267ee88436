import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { cameraSchema } from '../../agent/config/schema.js';
import { DecodePlanner } from '../../agent/ingest/decode-planner.js';
import type { FfmpegCapabilities } from '../../agent/ingest/ffmpeg-binary.js';
import type { Spawner } from '../../agent/ingest/ffmpeg-process.js';
import { captureLogger } from '../support/capture-log.js';

const capabilities: FfmpegCapabilities = {
  path: '/opt/ffmpeg',
  version: '4.1',
  major: 4,
  rtspTimeoutOption: '-stimeout',
  hasFpsMode: false,
  hwaccels: [],
  demuxers: { rtsp: true, mjpeg: true },
  resolvesHostNames: false,
};

const streamLine = '    Stream #0:0: Video: h264 (High), yuv420p(progressive), 320x240, 25 fps, 25 tbr, 90k tbn, 50 tbc\n';
const showinfo = (n: number, time: number, key: boolean): string =>
  `[Parsed_showinfo_0 @ 0x1] n:${n} pts:${Math.round(time * 90000)} pts_time:${time} pos: -1 fmt:yuv420p iskey:${key ? 1 : 0} type:${key ? 'I' : 'P'}\n`;
/** What the probe prints for a 25 fps stream with every frame a reference frame and a keyframe every `gop` s, over 3 s. */
function probeOutput(gop: number): string {
  let text = streamLine;
  for (let i = 0; i <= 75; i++) {
    const time = Math.round(i * 0.04 * 100) / 100;
    text += showinfo(i, time, Math.abs(time / gop - Math.round(time / gop)) < 1e-9);
  }
  return text;
}

/** A spawner whose children print the next scripted stderr and exit 0 (or 1 with no output: a failed probe). */
function scriptedSpawner(outputs: Array<string | undefined>): { spawner: Spawner; calls: string[][] } {
  const calls: string[][] = [];
  const spawner: Spawner = (command, args) => {
    calls.push([command, ...args]);
    const output = outputs.shift();
    const child = Object.assign(new EventEmitter(), {
      stdin: new PassThrough(),
      stdout: new PassThrough(),
      stderr: new PassThrough(),
      pid: 4242,
      kill: () => true,
    });
    queueMicrotask(() => {
      child.stderr.end(output ?? 'rtsp://10.0.0.9/live: Connection refused\n');
      child.stdout.end();
      queueMicrotask(() => child.emit('exit', output === undefined ? 1 : 0, null));
    });
    return child as unknown as ChildProcessByStdio<Writable, Readable, Readable>;
  };
  return { spawner, calls };
}

function planner(camera: Record<string, unknown>, outputs: Array<string | undefined>) {
  const { log, lines } = captureLogger();
  const { spawner, calls } = scriptedSpawner(outputs);
  const parsed = cameraSchema.parse({ id: 'north', url: 'rtsp://10.0.0.9/live', ...camera });
  const subject = new DecodePlanner(
    parsed,
    { capabilities, socketTimeoutSeconds: 5, wrapper: ['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--'] },
    log,
    spawner,
  );
  const logged = (): Array<Record<string, unknown>> => lines().map((line) => JSON.parse(line) as Record<string, unknown>);
  return { subject, calls, logged };
}

describe('DecodePlanner: when the stream is probed, and what is reported', () => {
  it('probes once, behind the wrapper, with the camera URL; the profile is kept across restarts', async () => {
    const { subject, calls, logged } = planner({ sampleFps: 1 }, [probeOutput(1)]);
    expect(await subject.plan('rtsp://10.0.0.9/live', true)).toBe('keyframes');
    expect(await subject.plan('rtsp://10.0.0.9/live', true)).toBe('keyframes');
    expect(calls).toHaveLength(1);
    expect(calls[0]!.slice(0, 5)).toEqual(['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--', '/opt/ffmpeg']);
    expect(calls[0]).toContain('rtsp://10.0.0.9/live');
    expect(subject.state).toMatchObject({ setting: 'auto', mode: 'keyframes', code: undefined, streamFps: 25, refFps: 25, keyframeIntervalSeconds: 1 });
    // One "decode skipping" line for the choice, not one per start.
    expect(logged().filter((entry) => entry['msg'] === 'decode skipping')).toHaveLength(1);
  });

  it('no probe when nothing could be skipped: decodeSkip none, or every frame wanted', async () => {
    for (const camera of [{ decodeSkip: 'none' }, { sampleFps: null }]) {
      const { subject, calls } = planner(camera, []);
      expect(await subject.plan('rtsp://10.0.0.9/live', true)).toBe('none');
      expect(calls).toHaveLength(0);
    }
  });

  it('a failed probe: no skipping; not probed again while the camera fails, probed again after a run that delivered frames', async () => {
    const { subject, calls, logged } = planner({ sampleFps: 1, decodeSkip: 'keyframes' }, [undefined, probeOutput(1)]);
    expect(await subject.plan('rtsp://10.0.0.9/live', true)).toBe('none');
    expect(subject.state).toMatchObject({ mode: 'none', code: 'DECODE_PROBE_FAILED' });
    const failure = logged().find((entry) => entry['msg'] === 'stream probe found no profile');
    expect(failure).toMatchObject({ code: 'SOURCE_REFUSED' });
    expect(await subject.plan('rtsp://10.0.0.9/live', false)).toBe('none');
    expect(calls).toHaveLength(1);
    expect(await subject.plan('rtsp://10.0.0.9/live', true)).toBe('keyframes');
    expect(calls).toHaveLength(2);
    expect(subject.state?.code).toBeUndefined();
  });

  it('explicit keyframes on a GOP too sparse: the fallback is a warning with the code and its fix', async () => {
    const { subject, logged } = planner({ sampleFps: 1, decodeSkip: 'keyframes' }, [probeOutput(1.2)]);
    expect(await subject.plan('rtsp://10.0.0.9/live', true)).toBe('none');
    const warning = logged().find((entry) => entry['msg'] === 'decode skipping falls back');
    expect(warning).toMatchObject({ level: 'warn', code: 'DECODE_SKIP_TOO_SPARSE', setting: 'keyframes', mode: 'none' });
    expect(String(warning?.['fix'])).toContain('GOP');
    expect(subject.state).toMatchObject({ code: 'DECODE_SKIP_TOO_SPARSE' });
    expect(subject.state?.keyframeIntervalSeconds).toBeCloseTo(1.2, 6);
  });
});
