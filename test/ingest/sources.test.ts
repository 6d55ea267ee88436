import http from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { assetPath } from '../support/assets.js';
import { waitForNoFfmpegChildren } from '../support/processes.js';
import { startIngest, type Harness } from '../support/ingest-harness.js';

let harness: Harness | undefined;
let server: http.Server | undefined;

afterEach(async () => {
  await harness?.stop();
  harness = undefined;
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server?.closeAllConnections();
  server = undefined;
  await waitForNoFfmpegChildren();
});

/** An IP camera's MJPEG endpoint: multipart/x-mixed-replace, one JPEG every 100 ms. */
async function startMjpegServer(): Promise<string> {
  const jpeg = await sharp(assetPath('highway-frame-t5s.png')).jpeg({ quality: 80 }).toBuffer();
  server = http.createServer((request, response) => {
    if (request.url !== '/cctv-mjpeg') {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'Content-Type': 'multipart/x-mixed-replace; boundary=frame' });
    const timer = setInterval(() => {
      response.write(`--frame\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`);
      response.write(jpeg);
      response.write('\r\n');
    }, 100);
    response.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}/cctv-mjpeg`;
}

describe('camera sources', () => {
  it('an http MJPEG camera streams, and the picture size is read from ffmpeg', async () => {
    const url = await startMjpegServer();
    harness = await startIngest({ cameras: [{ id: 'mjpeg', url, sampleFps: 5 }] });
    await harness.waitFrames('mjpeg', 5, 20_000);
    expect(harness.camera('mjpeg').state).toBe('streaming');
    expect(harness.sourceSizes.get('mjpeg')).toEqual([320, 240]);
  });

  it('an http camera that answers 404 gets SOURCE_NOT_FOUND', async () => {
    const url = await startMjpegServer();
    harness = await startIngest({
      cameras: [{ id: 'mjpeg', url: url.replace('cctv-mjpeg', 'cctv-mjpeg-missing') }],
      ffmpeg: { restartBackoffMs: { initial: 100, max: 500, maxWhenRejected: 500 } },
    });
    const state = await harness.waitState('mjpeg', (current) => current.lastError === 'SOURCE_NOT_FOUND', 15_000);
    expect(state.state).toMatch(/backoff|starting/);
  });

  it('a file played once ends in the "ended" state and is not restarted', async () => {
    harness = await startIngest({ cameras: [{ id: 'once', url: assetPath('highway-cctv-320x240.mp4'), loop: false, realtime: false, sampleFps: 5 }] });
    const state = await harness.waitState('once', (current) => current.state === 'ended', 30_000);
    expect(state.lastError).toBe('SOURCE_ENDED');
    // 30 s of video sampled at 5 fps.
    expect(state.framesIn).toBeGreaterThanOrEqual(145);
    expect(state.framesIn).toBeLessThanOrEqual(152);
    expect(state.reconnects).toBe(0);
  });

  it('a file read faster than real time waits for a slow model: every frame, none dropped', async () => {
    harness = await startIngest(
      { cameras: [{ id: 'fast', url: assetPath('highway-cctv-320x240.mp4'), loop: false, realtime: false, sampleFps: null }] },
      undefined,
      { consumerDelayMs: 5 },
    );
    const state = await harness.waitState('fast', (current) => current.state === 'ended', 60_000);
    expect(state.dropped).toBe(0);
    expect(state.framesIn).toBe(748); // every decoded frame of the clip
    expect(harness.arrivals.get('fast')).toHaveLength(748);
  });

  it('a region of interest is cropped before scaling', async () => {
    harness = await startIngest({
      cameras: [{ id: 'roi', url: assetPath('highway-cctv-320x240.mp4'), roi: { x: 0.5, y: 0, width: 0.5, height: 0.5 }, sampleFps: 5 }],
    });
    await harness.waitFrames('roi', 3, 15_000);
    expect(harness.sourceSizes.get('roi')).toEqual([320, 240]);
    const logs = harness.logLines().join('\n');
    expect(logs).toContain('crop=w=iw*0.5:h=ih*0.5:x=iw*0.5:y=ih*0');
  });
});
