import type { ErrorCode } from '../errors.js';

/** The camera setting (cameras[].decodeSkip). */
export type DecodeSkipSetting = 'auto' | 'none' | 'nonref' | 'keyframes';
/** What ffmpeg is told: decode every frame, skip non-reference frames, or decode keyframes only. */
export type DecodeSkipMode = 'none' | 'nonref' | 'keyframes';

/** ffmpeg's -skip_frame value for each mode (AVDiscard names: "noref", "nokey"). */
export const SKIP_FRAME_VALUE: Readonly<Record<Exclude<DecodeSkipMode, 'none'>, string>> = { nonref: 'noref', keyframes: 'nokey' };

/**
 * What a short probe of the stream learned (agent/ingest/stream-probe.ts). Rates are frames
 * per second of stream time.
 */
export interface StreamProfile {
  /** The stream's frame rate (ffmpeg's input stream line). */
  fps: number;
  /** Frames per second left when non-reference frames are skipped (= fps when the stream has none). */
  refFps: number;
  /** Seconds between keyframes; undefined when fewer than two were seen in the probe's window. */
  keyframeIntervalSeconds: number | undefined;
  /** Stream seconds the probe observed. */
  windowSeconds: number;
}

export interface DecodeSkipChoice {
  mode: DecodeSkipMode;
  /** Why, in a few words (logged and shown in status). */
  reason: string;
  /** Set when the setting asked for more skipping than the stream allows, or the stream is unknown. */
  code: ErrorCode | undefined;
}

/** A skip mode must leave at least this share of the stream's frames out to be worth using under 'auto'. */
const WORTH_SKIPPING = 0.9;

/** Keyframes per second, counting in whole frames when the frame rate is known (GOP 25 at 25 fps: exactly 1). */
export function keyframeRate(profile: StreamProfile): number | undefined {
  const interval = profile.keyframeIntervalSeconds;
  if (interval === undefined || interval <= 0) return undefined;
  const gopFrames = Math.max(1, Math.round(interval * profile.fps));
  return profile.fps / gopFrames;
}

/**
 * Which decoder skipping to use for one camera: the most skipping that still leaves at least
 * sampleFps frames a second. Pure: the stream's profile, the sample rate and the setting in,
 * the mode out.
 *
 * - 'none': never skips.
 * - 'auto': keyframes only when keyframes alone come at sampleFps or more, else non-reference
 *   skipping when what is left still comes at sampleFps or more; either only when it leaves
 *   out a tenth of the frames or more. Unknown stream: no skipping. Every frame wanted
 *   (sampleFps null): no skipping.
 * - 'keyframes' / 'nonref': that mode when the stream allows it; otherwise the next mode that
 *   does (keyframes → nonref → none), with the code DECODE_SKIP_TOO_SPARSE (or
 *   DECODE_PROBE_FAILED when the stream is unknown). With sampleFps null there is no rate to
 *   keep, and the setting is followed as given.
 */
export function chooseDecodeSkip(setting: DecodeSkipSetting, sampleFps: number | null, profile: StreamProfile | undefined): DecodeSkipChoice {
  if (setting === 'none') return { mode: 'none', reason: 'decodeSkip: none', code: undefined };
  if (sampleFps === null) {
    return setting === 'auto'
      ? { mode: 'none', reason: 'every decoded frame is wanted (sampleFps: null)', code: undefined }
      : { mode: setting, reason: `decodeSkip: ${setting} (sampleFps: null, no rate to keep)`, code: undefined };
  }
  if (profile === undefined) {
    return {
      mode: 'none',
      reason: "the stream's frame rate and keyframe interval are unknown",
      code: setting === 'auto' ? undefined : 'DECODE_PROBE_FAILED',
    };
  }
  const keyRate = keyframeRate(profile);
  const keyframesOk = keyRate !== undefined && keyRate >= sampleFps;
  const nonrefOk = profile.refFps >= sampleFps;
  const describeKey = keyRate === undefined ? `fewer than 2 keyframes in ${round(profile.windowSeconds)} s` : `keyframes at ${round(keyRate)}/s`;
  if (setting === 'keyframes' && keyframesOk) return { mode: 'keyframes', reason: `decodeSkip: keyframes; ${describeKey}`, code: undefined };
  if (setting === 'auto' && keyframesOk && keyRate! <= profile.fps * WORTH_SKIPPING) {
    return { mode: 'keyframes', reason: `${describeKey} >= ${sampleFps} sampled/s`, code: undefined };
  }
  const nonrefWorth = profile.refFps <= profile.fps * WORTH_SKIPPING;
  if (setting === 'keyframes') {
    // Asked for more than the stream gives: the next mode down that still keeps the rate.
    const mode: DecodeSkipMode = nonrefOk && nonrefWorth ? 'nonref' : 'none';
    return { mode, reason: `keyframes too sparse for ${sampleFps} sampled/s (${describeKey})`, code: 'DECODE_SKIP_TOO_SPARSE' };
  }
  if (setting === 'nonref') {
    if (nonrefOk) return { mode: 'nonref', reason: `decodeSkip: nonref; reference frames at ${round(profile.refFps)}/s`, code: undefined };
    return { mode: 'none', reason: `reference frames at ${round(profile.refFps)}/s, below ${sampleFps} sampled/s`, code: 'DECODE_SKIP_TOO_SPARSE' };
  }
  if (nonrefOk && nonrefWorth) return { mode: 'nonref', reason: `reference frames at ${round(profile.refFps)}/s of ${round(profile.fps)}`, code: undefined };
  return {
    mode: 'none',
    reason: nonrefWorth
      ? `${describeKey}, reference frames at ${round(profile.refFps)}/s: too few for ${sampleFps} sampled/s`
      : `${describeKey}, every frame is a reference frame`,
    code: undefined,
  };
}

const round = (value: number): number => Math.round(value * 100) / 100;
