import { describe, expect, it } from 'vitest';
import { cameraSchema } from '../../agent/config/schema.js';
import { buildProbeArgs, parseStreamProfile, probeWindowSeconds } from '../../agent/ingest/stream-probe.js';

/** The input stream line and showinfo lines as the bundled ffmpeg 4.1 prints them over RTSP. */
const streamLine = '    Stream #0:0: Video: h264 (High), yuv420p(progressive), 320x240 [SAR 1:1 DAR 4:3], 25 fps, 25 tbr, 90k tbn, 50 tbc';
const frame = (n: number, time: number, key: boolean): string =>
  `[Parsed_showinfo_0 @ 0x19b33e80] n:${String(n).padStart(4)} pts:${String(Math.round(time * 90000)).padStart(7)} pts_time:${time} pos:       -1 fmt:yuv420p sar:1/1 s:320x240 i:P iskey:${key ? 1 : 0} type:${key ? 'I' : 'P'} checksum:6534600E plane_checksum:[F08631F1 581F23BB C95E0A62] mean:[130 127 126 ] stdev:[33.7 3.8 2.2 ]`;

/** Frames at `step` seconds from `from` to `to`, a keyframe every `gop` seconds after `firstKey`. */
function frames(from: number, to: number, step: number, gop: number, firstKey: number, n0 = 0): string[] {
  const lines: string[] = [];
  for (let i = 0, t = from; t <= to + 1e-9; i++, t = Math.round((from + i * step) * 1e6) / 1e6) {
    const key = t >= firstKey - 1e-9 && Math.abs((t - firstKey) / gop - Math.round((t - firstKey) / gop)) < 1e-6;
    lines.push(frame(n0 + i, t, key));
  }
  return lines;
}

describe('stream probe: the profile from its stderr', () => {
  it('GOP 1 s, no B-frames, joined with a stale preroll frame: fps 25, every frame a reference, interval 1 s', () => {
    // As the test server does: the prerolled keyframe at 0, then the stream from 0.76 on.
    const text = [streamLine, frame(0, 0, true), ...frames(0.76, 3.24, 0.04, 1, 0.76, 1)].join('\n');
    const profile = parseStreamProfile(text);
    expect(profile?.fps).toBe(25);
    expect(profile?.refFps).toBeCloseTo(25, 1);
    expect(profile?.keyframeIntervalSeconds).toBeCloseTo(1, 6);
  });

  it('non-reference frames skipped: the reference frame rate is what was decoded per second', () => {
    // 3 of every 5 frames decoded (B-frames skipped): 15 a second.
    const text = [streamLine, ...frames(0, 3, 0.04, 1, 0).filter((_, i) => i % 5 < 3)].join('\n');
    const profile = parseStreamProfile(text);
    expect(profile?.refFps).toBeGreaterThan(14);
    expect(profile?.refFps).toBeLessThan(16);
  });

  it('frames before the first keyframe (joined mid-GOP) are not counted; one keyframe gap is not a GOP', () => {
    const text = [streamLine, ...frames(0, 0.5, 0.04, 1, 99), ...frames(0.52, 2.4, 0.04, 10, 0.52, 20)].join('\n');
    const profile = parseStreamProfile(text);
    expect(profile?.keyframeIntervalSeconds).toBeUndefined();
    expect(profile?.windowSeconds).toBeCloseTo(2.4 - 0.56, 6);
  });

  it('the longest keyframe gap counts (an extra keyframe at a scene cut does not shorten the GOP)', () => {
    const lines = [streamLine, frame(0, 0, true), frame(1, 0.5, true), frame(2, 1.0, true), frame(3, 1.2, true), frame(4, 2.0, true), frame(5, 3.0, true)];
    expect(parseStreamProfile(lines.join('\n'))?.keyframeIntervalSeconds).toBeCloseTo(1, 6);
  });

  it('no profile without a frame rate, or with fewer than two frames after the first keyframe', () => {
    expect(parseStreamProfile(frames(0, 3, 0.04, 1, 0).join('\n'))).toBeUndefined();
    expect(parseStreamProfile([streamLine, frame(0, 0, true), frame(1, 0.04, false)].join('\n'))).toBeUndefined();
    expect(parseStreamProfile('rtsp://127.0.0.1:1/stream: Connection refused')).toBeUndefined();
  });

  it('takes tbr when the stream line states no fps', () => {
    const line = '    Stream #0:0: Video: h264 (Main), yuv420p, 1920x1080, 12.50 tbr, 90k tbn, 25 tbc';
    expect(parseStreamProfile([line, ...frames(0, 2, 0.08, 1, 0)].join('\n'))?.fps).toBe(12.5);
  });
});

describe('stream probe: the argv and the window', () => {
  it('decodes reference frames only, through showinfo, for the window, with the camera input options; nothing written out', () => {
    const camera = cameraSchema.parse({ id: 'c', url: 'rtsp://10.0.0.2/live', transport: 'tcp', sampleFps: 1 });
    const args = buildProbeArgs({ camera, url: camera.url, capabilities: { rtspTimeoutOption: '-stimeout' }, socketTimeoutSeconds: 5, windowSeconds: 2.5 });
    expect(args.join(' ')).toBe(
      '-hide_banner -nostats -nostdin -loglevel info -rtsp_transport tcp -stimeout 5000000 -skip_frame noref -i rtsp://10.0.0.2/live -an -sn -dn -map 0:v:0 -vf showinfo -t 2.5 -f null -',
    );
    const file = cameraSchema.parse({ id: 'f', url: '/videos/a.mp4' });
    expect(
      buildProbeArgs({ camera: file, url: file.url, capabilities: { rtspTimeoutOption: '-timeout' }, socketTimeoutSeconds: 5, windowSeconds: 2 }),
    ).not.toContain('-re');
  });

  it('the window sees two keyframe gaps at the longest interval that could serve sampleFps, 2 to 10 s', () => {
    expect(probeWindowSeconds(5)).toBe(2);
    expect(probeWindowSeconds(1)).toBe(2.5);
    expect(probeWindowSeconds(0.5)).toBe(4.5);
    expect(probeWindowSeconds(0.1)).toBe(10);
  });
});
