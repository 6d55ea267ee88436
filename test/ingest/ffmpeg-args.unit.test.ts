import { describe, expect, it } from 'vitest';
import { cameraSchema } from '../../agent/config/schema.js';
import { sourceUrlWithCredentials } from '../../agent/config/source-url.js';
import { buildFfmpegArgs, videoFilter } from '../../agent/ingest/ffmpeg-args.js';
import { parseVersion } from '../../agent/ingest/ffmpeg-binary.js';
import type { FrameGeometry } from '../../agent/ingest/frame-geometry.js';
import { classifyStderrLine, parseInputVideoSize } from '../../agent/ingest/stderr-classifier.js';

const yolox: FrameGeometry = { width: 416, height: 416, pixelFormat: 'bgr24', resize: { mode: 'letterbox', padValue: 114, anchor: 'top-left' } };
type Capabilities = { rtspTimeoutOption: '-stimeout' | '-timeout'; hasFpsMode: boolean };
const old: Capabilities = { rtspTimeoutOption: '-stimeout', hasFpsMode: false };
const modern: Capabilities = { rtspTimeoutOption: '-timeout', hasFpsMode: true };

function args(camera: Record<string, unknown>, capabilities = old): string[] {
  const parsed = cameraSchema.parse({ id: 'c1', ...camera });
  return buildFfmpegArgs({ camera: parsed, url: sourceUrlWithCredentials(parsed), capabilities, geometry: yolox, hwaccel: 'none', socketTimeoutSeconds: 5 });
}

describe('ffmpeg argv', () => {
  it('RTSP over TCP with the 4.x socket timeout, sampling and letterbox, raw BGR on stdout', () => {
    const argv = args({ url: 'rtsp://cam/stream' });
    expect(argv.join(' ')).toBe(
      '-hide_banner -nostats -loglevel info -rtsp_transport tcp -stimeout 5000000 -fflags nobuffer -flags low_delay -i rtsp://cam/stream -an -sn -dn ' +
        '-vf fps=5,scale=416:416:force_original_aspect_ratio=decrease,pad=416:416:0:0:color=0x727272 -pix_fmt bgr24 -f rawvideo pipe:1',
    );
  });

  it('uses -timeout on ffmpeg 5+, and -fps_mode when every frame is wanted', () => {
    const argv = args({ url: 'rtsp://cam/stream', sampleFps: null, transport: 'auto' }, modern);
    expect(argv).toContain('-timeout');
    expect(argv).not.toContain('-stimeout');
    expect(argv).not.toContain('-rtsp_transport');
    expect(argv.join(' ')).toContain('-fps_mode passthrough');
  });

  it('decoder threads and hwaccel go before the input', () => {
    const parsed = cameraSchema.parse({ id: 'c1', url: 'rtsp://cam/stream' });
    const argv = buildFfmpegArgs({
      camera: parsed,
      url: parsed.url,
      capabilities: modern,
      geometry: yolox,
      hwaccel: 'vaapi',
      socketTimeoutSeconds: 5,
      decodeThreads: 1,
    });
    expect(argv.indexOf('-hwaccel')).toBeLessThan(argv.indexOf('-i'));
    expect(argv.slice(argv.indexOf('-threads'), argv.indexOf('-threads') + 2)).toEqual(['-threads', '1']);
    expect(argv.indexOf('-threads')).toBeLessThan(argv.indexOf('-i'));
  });

  it('files: realtime and looped; no RTSP options', () => {
    const argv = args({ url: '/videos/a.mp4', loop: true, realtime: true });
    expect(argv.slice(4, 8)).toEqual(['-re', '-stream_loop', '-1', '-i']);
    expect(argv).not.toContain('-stimeout');
  });

  it('merges username/password into the URL, encoded', () => {
    expect(sourceUrlWithCredentials({ url: 'rtsp://cam:554/s', username: 'ad min', password: 'p@ss' })).toBe('rtsp://ad%20min:p%40ss@cam:554/s');
    expect(sourceUrlWithCredentials({ url: 'file:///v/a.mp4' })).toBe('/v/a.mp4');
  });

  it('centre letterbox, stretch and centre crop filters', () => {
    expect(videoFilter({ ...yolox, resize: { mode: 'letterbox', padValue: 0, anchor: 'center' } }, 2)).toBe(
      'fps=2,scale=416:416:force_original_aspect_ratio=decrease,pad=416:416:(ow-iw)/2:(oh-ih)/2:color=0x000000',
    );
    expect(videoFilter({ ...yolox, resize: { mode: 'stretch' } }, null)).toBe('scale=416:416');
    expect(videoFilter({ ...yolox, width: 224, height: 224, resize: { mode: 'center-crop' } }, null)).toBe(
      'scale=224:224:force_original_aspect_ratio=increase,crop=224:224',
    );
  });
});

describe('ffmpeg output parsing', () => {
  it('reads versions of release and static git builds', () => {
    expect(parseVersion('ffmpeg version 5.1.6-0+deb12u1 Copyright')).toEqual({ version: '5.1.6-0+deb12u1', major: 5 });
    expect(parseVersion('ffmpeg version N-47683-g0e8eb07980-static https://\nlibavformat    58. 24.100 / 58. 24.100')).toEqual({
      version: 'N-47683-g0e8eb07980-static',
      major: 4,
    });
  });

  it('maps stderr lines to error codes', () => {
    expect(classifyStderrLine('[rtsp @ 0x5] method DESCRIBE failed: 401 Unauthorized')).toBe('SOURCE_UNAUTHORIZED');
    expect(classifyStderrLine('[rtsp @ 0x5] method DESCRIBE failed: 404 Not Found')).toBe('SOURCE_NOT_FOUND');
    expect(classifyStderrLine('rtsp://h:1/x: Connection refused')).toBe('SOURCE_REFUSED');
    expect(classifyStderrLine('rtsp://h/x: Connection timed out')).toBe('SOURCE_TIMEOUT');
    expect(classifyStderrLine('x.mp4: Invalid data found when processing input')).toBe('SOURCE_INVALID_DATA');
    expect(classifyStderrLine('  Duration: 00:00:30.00, start: 0.000000')).toBeUndefined();
  });

  it('reads the input picture size from the stream line', () => {
    expect(
      parseInputVideoSize('    Stream #0:0(und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 320x240 [SAR 1:1 DAR 4:3], 25 fps'),
    ).toEqual({ width: 320, height: 240 });
    expect(parseInputVideoSize('    Stream #0:0: Audio: aac (LC), 44100 Hz, stereo')).toBeUndefined();
  });
});
