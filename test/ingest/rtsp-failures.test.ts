import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assetPath } from '../support/assets.js';
import { freePort } from '../support/free-port.js';
import { findFfmpegProcesses, waitForNoFfmpeg } from '../support/processes.js';
import { startRtspServer, type RtspServerHandle } from '../support/rtsp-server.js';
import { startIngest, type Harness } from '../support/ingest-harness.js';

const PASSWORD = 'Cam-Secret-77';
let server: RtspServerHandle;
let secured: RtspServerHandle;
let harness: Harness | undefined;

const ourFfmpeg = (args: string): boolean =>
  args.includes(`127.0.0.1:${server.port}/`) || args.includes(`127.0.0.1:${secured.port}/`) || args.includes('cctv-closed-port');

beforeAll(async () => {
  server = await startRtspServer({ file: assetPath('highway-cctv-320x240.mp4') });
  secured = await startRtspServer({ file: assetPath('highway-cctv-320x240.mp4'), user: 'viewer', password: PASSWORD });
});

afterAll(async () => {
  await server?.stop();
  await secured?.stop();
});

afterEach(async () => {
  await harness?.stop();
  harness = undefined;
  // After every test: no ffmpeg of ours is left, not even a zombie.
  await waitForNoFfmpeg(ourFfmpeg, 5000);
});

function camera(id: string, url: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, url, sampleFps: 5, ...extra };
}

const fastRetry = { stallTimeoutSeconds: 3, socketTimeoutSeconds: 5, restartBackoffMs: { initial: 200, max: 2000, maxWhenRejected: 2000 } };

describe('ingest against a real RTSP server', () => {
  it('server stopped for 10 s and restarted, 5 times: frames resume within 5 s of its return each time', async () => {
    harness = await startIngest({ cameras: [camera('cam', server.url)], ffmpeg: { stallTimeoutSeconds: 5 } });
    await harness.waitFrames('cam', 5, 15_000);
    const resumeMs: number[] = [];
    for (let cycle = 0; cycle < 5; cycle++) {
      // The camera goes away without a goodbye (power cut, reboot), then comes back on the same port.
      await server.kill();
      await new Promise((resolve) => setTimeout(resolve, 10_000));
      expect(['backoff', 'starting', 'stalled']).toContain(harness.camera('cam').state);
      await server.restart();
      resumeMs.push(await harness.waitFrames('cam', 1, 15_000));
    }
    console.log(`frames resumed after the server's return (ms): ${resumeMs.join(', ')}`);
    for (const ms of resumeMs) expect(ms).toBeLessThan(5000);
    const state = harness.camera('cam');
    expect(state.state).toBe('streaming');
    expect(state.reconnects).toBeGreaterThanOrEqual(5);
  }, 150_000);

  it('a server that stays connected but stops sending: stalled within the timeout, recovers when sending resumes', async () => {
    harness = await startIngest({ cameras: [camera('cam', server.url)], ffmpeg: fastRetry });
    await harness.waitFrames('cam', 5, 15_000);
    await server.pauseSending();
    const pausedAt = Date.now();
    await harness.waitState('cam', (state) => state.state === 'stalled' || state.lastError === 'SOURCE_STALLED', 3000 + 2500);
    const stalledAfter = Date.now() - pausedAt;
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(harness.camera('cam').lastError).toBe('SOURCE_STALLED');
    await server.resumeSending();
    const recovered = await harness.waitFrames('cam', 5, 15_000);
    console.log(`stall detected ${stalledAfter} ms after the pause (timeout 3000 ms); 5 frames ${recovered} ms after resuming`);
    await harness.waitState('cam', (state) => state.state === 'streaming', 5000);
  }, 60_000);

  it('wrong credentials, wrong path and a closed port each give their own code; retries back off; the others keep running', async () => {
    const closedPort = await freePort();
    harness = await startIngest({
      cameras: [
        camera('good', secured.urlWithCredentials),
        camera('badcreds', secured.url.replace('rtsp://', `rtsp://viewer:wrong-${PASSWORD}@`)),
        camera('badpath', server.url.replace('/stream', '/no-such-stream')),
        camera('closed', `rtsp://127.0.0.1:${closedPort}/cctv-closed-port`),
      ],
      ffmpeg: fastRetry,
    });
    await harness.waitState('badcreds', (state) => state.lastError === 'SOURCE_UNAUTHORIZED', 15_000);
    await harness.waitState('badpath', (state) => state.lastError === 'SOURCE_NOT_FOUND', 15_000);
    await harness.waitState('closed', (state) => state.lastError === 'SOURCE_REFUSED', 15_000);
    await harness.waitState('closed', (state) => state.reconnects >= 3, 15_000);
    await harness.waitState('badcreds', (state) => state.reconnects >= 2, 15_000);
    await harness.waitFrames('good', 10, 15_000);
    expect(harness.camera('good').state).toBe('streaming');
    // The backoff grows: retries are spaced out, not a tight loop.
    const retries = harness
      .logLines()
      .map((line) => JSON.parse(line) as { camera?: string; to?: string; retryInMs?: number })
      .filter((line) => line.camera === 'closed' && line.to === 'backoff');
    expect(retries.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...retries.map((line) => line.retryInMs!))).toBeGreaterThan(retries[0]!.retryInMs!);
    // Credentials appear nowhere: not in the log, the camera state, or the error lines.
    const everything = harness.logLines().join('\n') + JSON.stringify(harness.ingest.cameras());
    expect(everything).not.toContain(PASSWORD);
    expect(everything).not.toContain('viewer:');
    expect(everything).toContain('rtsp://***@127.0.0.1');
  }, 60_000);

  it('two cameras, one failing: the other keeps its frame rate', async () => {
    const closedPort = await freePort();
    harness = await startIngest({
      cameras: [camera('healthy', server.url), camera('broken', `rtsp://127.0.0.1:${closedPort}/cctv-closed-port`)],
      ffmpeg: { ...fastRetry, restartBackoffMs: { initial: 100, max: 300, maxWhenRejected: 300 } },
    });
    await harness.waitFrames('healthy', 10, 15_000);
    const before = harness.arrivals.get('healthy')!.length;
    const started = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 8000));
    const fps = ((harness.arrivals.get('healthy')!.length - before) * 1000) / (Date.now() - started);
    const broken = harness.camera('broken');
    console.log(`healthy camera at ${fps.toFixed(2)} fps (sampleFps 5) while the other failed ${broken.reconnects} times`);
    expect(broken.reconnects).toBeGreaterThanOrEqual(5);
    expect(fps).toBeGreaterThan(4.5);
    expect(fps).toBeLessThan(5.5);
  }, 60_000);

  it('50 start/stop cycles, at every point of the ffmpeg lifecycle, leave no ffmpeg behind', async () => {
    for (let cycle = 0; cycle < 50; cycle++) {
      const cycleHarness = await startIngest({ cameras: [camera('cam', server.url)], ffmpeg: fastRetry });
      // Stop at varying points: at once, while connecting, and while streaming.
      if (cycle % 3 === 1) await new Promise((resolve) => setTimeout(resolve, 150));
      if (cycle % 3 === 2) await cycleHarness.waitFrames('cam', 1, 15_000);
      await cycleHarness.stop();
      expect(cycleHarness.camera('cam').state).toBe('stopped');
    }
    expect(await findFfmpegProcesses(ourFfmpeg)).toEqual([]);
  }, 180_000);

  it('ffmpeg killed from outside is restarted; a camera with an unsupported hwaccel is failed-config, not retried', async () => {
    harness = await startIngest({ cameras: [camera('cam', server.url)], ffmpeg: fastRetry });
    await harness.waitFrames('cam', 3, 15_000);
    const pid = harness.camera('cam').pid!;
    process.kill(pid, 'SIGKILL');
    await harness.waitFrames('cam', 3, 15_000);
    expect(harness.camera('cam').pid).not.toBe(pid);
    expect(harness.camera('cam').reconnects).toBe(1);
    await harness.stop();

    harness = await startIngest({ cameras: [camera('cam', server.url)], ffmpeg: { ...fastRetry, hwaccel: 'qsv' } });
    const state = await harness.waitState('cam', (current) => current.state === 'failed-config', 5000);
    expect(state.lastError).toBe('CAMERA_CONFIG_REJECTED');
    expect(state.lastErrorLine).toMatch(/ffmpeg\.hwaccel: qsv is not supported/);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(harness.camera('cam')).toMatchObject({ state: 'failed-config', reconnects: 0 });
  }, 60_000);
});
