import type { CameraConfig, Roi } from '../config/schema.js';
import { sourceKind } from '../config/source-url.js';
import { SKIP_FRAME_VALUE, type DecodeSkipMode } from './decode-skip.js';
import type { FfmpegCapabilities } from './ffmpeg-binary.js';
import type { FrameGeometry } from './frame-geometry.js';

export interface FfmpegArgsInput {
  camera: CameraConfig;
  /** The URL to open, credentials already merged in (see sourceUrlWithCredentials). */
  url: string;
  capabilities: Pick<FfmpegCapabilities, 'rtspTimeoutOption' | 'hasFpsMode'>;
  geometry: FrameGeometry;
  hwaccel: string;
  socketTimeoutSeconds: number;
  /** Decoder threads; 0: ffmpeg's choice. */
  decodeThreads?: number;
  /** Decoder-level frame skipping (agent/ingest/decode-skip.ts chooses it); default none. */
  decodeSkip?: DecodeSkipMode;
}

const fixed = (value: number): string => String(Math.round(value * 1e6) / 1e6);

/** The video filter chain: sampling first (cheapest), then the region of interest, then fit to the model input. */
export function videoFilter(geometry: FrameGeometry, sampleFps: number | null, roi?: Roi): string {
  const { width, height, resize } = geometry;
  const filters: string[] = [];
  if (sampleFps !== null) filters.push(`fps=${sampleFps}`);
  if (roi) filters.push(`crop=w=iw*${fixed(roi.width)}:h=ih*${fixed(roi.height)}:x=iw*${fixed(roi.x)}:y=ih*${fixed(roi.y)}`);
  switch (resize.mode) {
    case 'stretch':
      filters.push(`scale=${width}:${height}`);
      break;
    case 'center-crop':
      filters.push(`scale=${width}:${height}:force_original_aspect_ratio=increase`, `crop=${width}:${height}`);
      break;
    case 'letterbox': {
      const pad = resize.padValue.toString(16).padStart(2, '0');
      const position = resize.anchor === 'center' ? '(ow-iw)/2:(oh-ih)/2' : '0:0';
      filters.push(`scale=${width}:${height}:force_original_aspect_ratio=decrease`, `pad=${width}:${height}:${position}:color=0x${pad}${pad}${pad}`);
      break;
    }
  }
  return filters.join(',');
}

/**
 * The whole ffmpeg command line for one camera, as a pure function of its inputs.
 * Output: raw frames at the model's input size on stdout, nothing else.
 */
export function buildFfmpegArgs(input: FfmpegArgsInput): string[] {
  const { camera, capabilities, geometry } = input;
  const kind = sourceKind(camera.url);
  // info level: the input stream line (source resolution) is read from stderr once per start.
  const args = ['-hide_banner', '-nostats', '-loglevel', 'info'];
  if (input.hwaccel !== 'none') args.push('-hwaccel', input.hwaccel);
  if (input.decodeThreads) args.push('-threads', String(input.decodeThreads));
  // An input (decoder) option: the skipped frames are never decoded, not merely dropped after.
  if (input.decodeSkip !== undefined && input.decodeSkip !== 'none') args.push('-skip_frame', SKIP_FRAME_VALUE[input.decodeSkip]);
  if (kind === 'rtsp') {
    if (camera.transport !== 'auto') args.push('-rtsp_transport', camera.transport);
    args.push(capabilities.rtspTimeoutOption, String(Math.round(input.socketTimeoutSeconds * 1_000_000)));
    args.push('-fflags', 'nobuffer', '-flags', 'low_delay');
  } else if (kind === 'http') {
    args.push('-reconnect', '1', '-reconnect_streamed', '1', '-reconnect_delay_max', '5');
  } else {
    if (camera.realtime) args.push('-re');
    if (camera.loop) args.push('-stream_loop', '-1');
  }
  args.push('-i', input.url, '-an', '-sn', '-dn');
  args.push('-vf', videoFilter(geometry, camera.sampleFps, camera.roi));
  if (camera.sampleFps === null) {
    // Every decoded frame once: no duplication to a constant output rate.
    args.push(...(capabilities.hasFpsMode ? ['-fps_mode', 'passthrough'] : ['-vsync', 'passthrough']));
  }
  args.push('-pix_fmt', geometry.pixelFormat, '-f', 'rawvideo', 'pipe:1');
  return args;
}
