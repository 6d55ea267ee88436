import { describe, expect, it } from 'vitest';
import { cameraSchema } from '../../agent/config/schema.js';
import { chooseDecodeSkip, keyframeRate, type StreamProfile } from '../../agent/ingest/decode-skip.js';
import { buildFfmpegArgs } from '../../agent/ingest/ffmpeg-args.js';
import type { FrameGeometry } from '../../agent/ingest/frame-geometry.js';

/** Profiles as the probe reports them for the streams the integration test serves. */
const gop1sNoB: StreamProfile = { fps: 25, refFps: 25, keyframeIntervalSeconds: 1, windowSeconds: 2.2 };
const gop1sBframes: StreamProfile = { fps: 25, refFps: 15.4, keyframeIntervalSeconds: 1, windowSeconds: 2.2 };
const gop02s: StreamProfile = { fps: 25, refFps: 25, keyframeIntervalSeconds: 0.2, windowSeconds: 2 };
const gop10sNoB: StreamProfile = { fps: 25, refFps: 25, keyframeIntervalSeconds: undefined, windowSeconds: 2.4 };
const allIntra: StreamProfile = { fps: 10, refFps: 10, keyframeIntervalSeconds: 0.1, windowSeconds: 2 };

describe('decoder skipping: the choice per camera', () => {
  it('counts keyframes per second in whole frames of the stream', () => {
    expect(keyframeRate(gop1sNoB)).toBe(1);
    // A measured 0.96 s at 25 fps is GOP 24: 1.04 keyframes/s.
    expect(keyframeRate({ ...gop1sNoB, keyframeIntervalSeconds: 0.96 })).toBeCloseTo(25 / 24, 6);
    expect(keyframeRate(gop10sNoB)).toBeUndefined();
  });

  it('auto: keyframes only when keyframes alone give at least sampleFps (GOP 1 s: yes at 1 fps, not at 5)', () => {
    expect(chooseDecodeSkip('auto', 1, gop1sNoB)).toMatchObject({ mode: 'keyframes', code: undefined });
    expect(chooseDecodeSkip('auto', 0.5, gop1sNoB).mode).toBe('keyframes');
    expect(chooseDecodeSkip('auto', 5, gop1sNoB)).toMatchObject({ mode: 'none', code: undefined });
    expect(chooseDecodeSkip('auto', 1.01, gop1sNoB).mode).toBe('none');
    expect(chooseDecodeSkip('auto', 5, gop02s).mode).toBe('keyframes');
  });

  it('auto: non-reference skipping when the stream has non-reference frames and what is left keeps the rate', () => {
    expect(chooseDecodeSkip('auto', 5, gop1sBframes)).toMatchObject({ mode: 'nonref', code: undefined });
    expect(chooseDecodeSkip('auto', 15, gop1sBframes).mode).toBe('nonref');
    expect(chooseDecodeSkip('auto', 16, gop1sBframes).mode).toBe('none');
    // Every frame a reference frame: skipping would save nothing.
    expect(chooseDecodeSkip('auto', 5, gop1sNoB).reason).toContain('every frame is a reference frame');
  });

  it('auto: a sparse GOP (fewer than two keyframes seen) never means keyframes', () => {
    expect(chooseDecodeSkip('auto', 0.1, gop10sNoB).mode).toBe('none');
    expect(chooseDecodeSkip('auto', 1, { ...gop10sNoB, refFps: 12.5 }).mode).toBe('nonref');
  });

  it('auto: no skipping that would not pay (all-intra streams, MJPEG) or when every frame is wanted', () => {
    expect(chooseDecodeSkip('auto', 1, allIntra).mode).toBe('none');
    expect(chooseDecodeSkip('auto', null, gop02s)).toMatchObject({ mode: 'none', code: undefined });
  });

  it('unknown stream: no skipping; an explicit mode says why with DECODE_PROBE_FAILED', () => {
    expect(chooseDecodeSkip('auto', 5, undefined)).toMatchObject({ mode: 'none', code: undefined });
    expect(chooseDecodeSkip('keyframes', 1, undefined)).toMatchObject({ mode: 'none', code: 'DECODE_PROBE_FAILED' });
    expect(chooseDecodeSkip('nonref', 5, undefined)).toMatchObject({ mode: 'none', code: 'DECODE_PROBE_FAILED' });
  });

  it('explicit keyframes on a GOP too sparse for sampleFps falls back to the next mode that keeps the rate, with DECODE_SKIP_TOO_SPARSE', () => {
    expect(chooseDecodeSkip('keyframes', 1, gop1sNoB)).toMatchObject({ mode: 'keyframes', code: undefined });
    expect(chooseDecodeSkip('keyframes', 5, gop1sNoB)).toMatchObject({ mode: 'none', code: 'DECODE_SKIP_TOO_SPARSE' });
    expect(chooseDecodeSkip('keyframes', 5, gop1sBframes)).toMatchObject({ mode: 'nonref', code: 'DECODE_SKIP_TOO_SPARSE' });
    expect(chooseDecodeSkip('keyframes', 1, gop10sNoB)).toMatchObject({ mode: 'none', code: 'DECODE_SKIP_TOO_SPARSE' });
    expect(chooseDecodeSkip('keyframes', 5, gop1sNoB).reason).toMatch(/keyframes too sparse for 5 sampled\/s \(keyframes at 1\/s\)/);
  });

  it('explicit nonref is followed when what is left keeps the rate (even with nothing to skip), else none with the code', () => {
    expect(chooseDecodeSkip('nonref', 5, gop1sNoB)).toMatchObject({ mode: 'nonref', code: undefined });
    expect(chooseDecodeSkip('nonref', 20, gop1sBframes)).toMatchObject({ mode: 'none', code: 'DECODE_SKIP_TOO_SPARSE' });
  });

  it('none never skips; with sampleFps null an explicit mode is followed as given', () => {
    expect(chooseDecodeSkip('none', 1, gop02s).mode).toBe('none');
    expect(chooseDecodeSkip('keyframes', null, undefined)).toMatchObject({ mode: 'keyframes', code: undefined });
  });
});

describe('decoder skipping: the argv', () => {
  const geometry: FrameGeometry = { width: 416, height: 416, pixelFormat: 'bgr24', resize: { mode: 'stretch' } };
  const argv = (decodeSkip: 'none' | 'nonref' | 'keyframes' | undefined): string[] => {
    const camera = cameraSchema.parse({ id: 'c1', url: 'rtsp://10.0.0.1/s', sampleFps: 1 });
    return buildFfmpegArgs({
      camera,
      url: camera.url,
      capabilities: { rtspTimeoutOption: '-stimeout', hasFpsMode: false },
      geometry,
      hwaccel: 'none',
      socketTimeoutSeconds: 5,
      decodeThreads: 1,
      ...(decodeSkip ? { decodeSkip } : {}),
    });
  };

  it("-skip_frame noref / nokey (ffmpeg's AVDiscard names) before the input; nothing for none", () => {
    for (const [mode, value] of [
      ['nonref', 'noref'],
      ['keyframes', 'nokey'],
    ] as const) {
      const args = argv(mode);
      const at = args.indexOf('-skip_frame');
      expect(args[at + 1]).toBe(value);
      expect(at).toBeLessThan(args.indexOf('-i'));
      expect(args.join(' ')).toContain('-vf fps=1,scale=416:416');
    }
    expect(argv('none')).not.toContain('-skip_frame');
    expect(argv(undefined)).not.toContain('-skip_frame');
  });

  it('the camera key: default auto, and an unknown value is refused naming the key and the allowed values', () => {
    expect(cameraSchema.parse({ id: 'c1', url: 'rtsp://10.0.0.1/s' }).decodeSkip).toBe('auto');
    const result = cameraSchema.safeParse({ id: 'c1', url: 'rtsp://10.0.0.1/s', decodeSkip: 'nokey' });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['decodeSkip']);
    expect(result.error?.issues[0]?.message).toMatch(/auto.*none.*nonref.*keyframes/);
  });
});
