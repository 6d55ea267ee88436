/**
 * Proves the test rig itself: real mosquitto (plain / password / TLS), the
 * looping GStreamer RTSP camera (TCP, auth, restart, freeze/resume, looping)
 * and process cleanup.
 *
 *   npx vitest run test/rig
 *   RIG_LONG_TESTS=1 npx vitest run test/rig   # + 40 s loop test on the real 30 s clip
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { existsSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { assetCandidates, assetPath, projectRoot } from '../support/assets.js';
import { ffmpegPath, runFfmpeg, startFfmpeg, type FfmpegRun } from '../support/ffmpeg.js';
import { canConnect, freePort } from '../support/free-port.js';
import { liveManagedProcesses } from '../support/managed-process.js';
import { startMosquitto, type MosquittoHandle } from '../support/mosquitto.js';
import { descendantsOf, ffmpegChildrenOf, findFfmpegProcesses, isPidAlive, listProcesses, waitForNoFfmpeg } from '../support/processes.js';
import { startRtspServer, type RtspServerHandle } from '../support/rtsp-server.js';

const CLIP = assetPath('highway-cctv-320x240.mp4');

// Everything a test starts is registered here and torn down in afterEach,
// even when the test fails half-way.
const cleanups: Array<() => Promise<unknown>> = [];
const startedPids: number[] = [];

async function broker(options: Parameters<typeof startMosquitto>[0]): Promise<MosquittoHandle> {
  const b = await startMosquitto(options);
  cleanups.push(() => b.stop());
  const pid = b.pid();
  if (pid !== undefined) startedPids.push(pid);
  return b;
}

async function camera(options: Parameters<typeof startRtspServer>[0]): Promise<RtspServerHandle> {
  const c = await startRtspServer(options);
  cleanups.push(() => c.stop());
  const pid = c.pid();
  if (pid !== undefined) startedPids.push(pid);
  return c;
}

function ffmpeg(args: string[], timeoutMs = 25_000): FfmpegRun {
  const run = startFfmpeg(args, { timeoutMs });
  cleanups.push(() => run.stop(1000));
  startedPids.push(run.pid);
  return run;
}

async function client(url: string, options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options }, false);
  cleanups.push(() => c.endAsync(true));
  return c;
}

/** Publishes on a fresh topic and resolves with what comes back through the broker. */
async function roundTrip(c: MqttClient, payload = `hello ${Date.now()}`): Promise<string> {
  const topic = `rig/test/${Math.random().toString(36).slice(2)}`;
  const received = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no message on ${topic} within 5 s`)), 5000);
    c.on('message', (t, message) => {
      if (t === topic) {
        clearTimeout(timer);
        resolve(message.toString());
      }
    });
  });
  await c.subscribeAsync(topic, { qos: 1 });
  await c.publishAsync(topic, payload, { qos: 1 });
  expect(await received).toBe(payload);
  return payload;
}

/** Frame lines of `-f framecrc -` output: "0, dts, pts, duration, size, crc". */
function framePts(framecrc: string): number[] {
  const out: number[] = [];
  for (const line of framecrc.split('\n')) {
    const m = /^0,\s*(-?\d+),\s*(-?\d+),/.exec(line);
    if (m?.[2] !== undefined) out.push(Number(m[2]));
  }
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

afterEach(async () => {
  const errors: unknown[] = [];
  while (cleanups.length > 0) {
    const fn = cleanups.pop() as () => Promise<unknown>;
    try {
      await fn();
    } catch (err) {
      errors.push(err);
    }
  }
  // Nothing the rig started may survive its test.
  expect(liveManagedProcesses().map((p) => `${p.name} ${p.pid}`)).toEqual([]);
  for (const pid of startedPids.splice(0)) expect(isPidAlive(pid), `pid ${pid} still alive`).toBe(false);
  const leftovers = (await descendantsOf(process.pid)).filter((p) => /mosquitto|rtsp_server\.py|ffmpeg|setpriv|gst-plugin-scanner/.test(p.args));
  expect(leftovers).toEqual([]);
  if (errors.length > 0) throw errors[0];
}, 30_000);

describe('helpers', () => {
  it('freePort gives a bindable port, different each time', async () => {
    const a = await freePort();
    const b = await freePort();
    expect(a).toBeGreaterThan(0);
    expect(a).not.toBe(b);
    expect(await canConnect('127.0.0.1', a, 500)).toBe(false);
  });

  it('assetPath finds the shared assets and explains misses', () => {
    expect(existsSync(assetPath('yolox-nano-int8.onnx'))).toBe(true);
    expect(existsSync(assetPath('video/highway-cctv-320x240.avi'))).toBe(true);
    expect(existsSync(assetPath('bus-and-cars.jpg'))).toBe(true);
    expect(() => assetPath('no-such-model.onnx')).toThrow(/not found[\s\S]*models\/assets\/no-such-model\.onnx/);
    expect(() => assetPath('../etc/passwd')).toThrow(/relative asset name/);
    expect(assetCandidates('x.onnx')[0]).toBe(path.join(projectRoot, 'models', 'assets', 'x.onnx'));
  });

  it('assetPath honours CCTV_ASSET_MIRROR (catalog layout or flat)', async () => {
    const mirror = await mkdtemp(path.join(os.tmpdir(), 'cctv-mirror-'));
    const saved = process.env.CCTV_ASSET_MIRROR;
    try {
      await mkdir(path.join(mirror, 'video'));
      await writeFile(path.join(mirror, 'video', 'only-in-mirror.mp4'), 'x');
      await writeFile(path.join(mirror, 'flat-only.onnx'), 'x');
      process.env.CCTV_ASSET_MIRROR = mirror;
      expect(assetPath('only-in-mirror.mp4')).toBe(path.join(mirror, 'video', 'only-in-mirror.mp4'));
      expect(assetPath('flat-only.onnx')).toBe(path.join(mirror, 'flat-only.onnx'));
      expect(() => assetPath('nowhere.png')).toThrow(new RegExp(`${mirror}/images/nowhere\\.png`));
    } finally {
      if (saved === undefined) delete process.env.CCTV_ASSET_MIRROR;
      else process.env.CCTV_ASSET_MIRROR = saved;
      await rm(mirror, { recursive: true, force: true });
    }
  });

  it('listProcesses / descendantsOf / ffmpegChildrenOf see a running ffmpeg', async () => {
    const run = ffmpeg(['-re', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=5', '-t', '20', '-f', 'null', '-']);
    await waitFor(() => isPidAlive(run.pid), 2000, 'ffmpeg in the process table');
    const all = await listProcesses();
    const me = all.find((p) => p.pid === run.pid);
    expect(me?.comm).toBe('ffmpeg');
    expect(me?.ppid).toBe(process.pid);
    expect(me?.args).toContain('testsrc=size=64x48');
    expect((await descendantsOf(process.pid)).map((p) => p.pid)).toContain(run.pid);
    expect((await ffmpegChildrenOf(process.pid)).map((p) => p.pid)).toEqual([run.pid]);
    expect(await findFfmpegProcesses((args) => args.includes('testsrc=size=64x48'))).toHaveLength(1);
    await expect(waitForNoFfmpeg((args) => args.includes('testsrc=size=64x48'), 300)).rejects.toThrow(/still present/);
    await run.stop();
    await waitForNoFfmpeg((args) => args.includes('testsrc=size=64x48'), 3000);
  }, 15_000);
});

describe('mosquitto', () => {
  it('plain: anonymous round trip, stop kills the broker and removes its dir', async () => {
    const b = await broker({ variant: 'plain' });
    expect(b.url).toBe(`mqtt://127.0.0.1:${b.port}`);
    const c = await client(b.url);
    await roundTrip(c);
    await c.endAsync();
    const pid = b.pid();
    expect(pid).toBeDefined();
    await b.stop();
    expect(isPidAlive(pid as number)).toBe(false);
    expect(existsSync(b.dir)).toBe(false);
    expect(await canConnect('127.0.0.1', b.port, 500)).toBe(false);
    expect(b.logs()).toMatch(/mosquitto version 2\.\d+\.\d+ running/);
  }, 20_000);

  it('password: right credentials work, wrong password and anonymous are refused', async () => {
    const b = await broker({ variant: 'password', username: 'agent', password: 'pa:ss w0rd' });
    expect(b.username).toBe('agent');
    const c = await client(b.url, { username: 'agent', password: 'pa:ss w0rd' });
    await roundTrip(c);
    await expect(client(b.url, { username: 'agent', password: 'wrong' })).rejects.toThrow(/authori[sz]ed|bad user/i);
    await expect(client(b.url)).rejects.toThrow(/authori[sz]ed|bad user/i);
    // MQTT 5 too.
    await expect(client(b.url, { username: 'agent', password: 'wrong', protocolVersion: 5 })).rejects.toThrow(/authori[sz]ed|bad user/i);
    expect(b.logs()).toMatch(/not authori[sz]ed/i);
  }, 20_000);

  it('tls-password: mqtts://localhost with the throwaway CA, client cert optional; untrusted CA refused', async () => {
    const b = await broker({ variant: 'tls-password' });
    expect(b.url).toBe(`mqtts://localhost:${b.port}`);
    expect(b.caFile && existsSync(b.caFile)).toBe(true);
    expect(b.certFile && existsSync(b.certFile)).toBe(true);
    expect(b.keyFile && existsSync(b.keyFile)).toBe(true);
    const c = await client(b.url, await b.clientOptions());
    await roundTrip(c);
    const withCert = await client(b.url, await b.clientOptions({ withClientCert: true }));
    await roundTrip(withCert);
    // Same certificate is valid for the IP too (SAN 127.0.0.1).
    const byIp = await client(`mqtts://127.0.0.1:${b.port}`, await b.clientOptions());
    await roundTrip(byIp);
    // System CAs only: the throwaway CA is not trusted.
    await expect(client(b.url, { username: b.username, password: b.password })).rejects.toThrow(/self.signed|unable to (get|verify)|certificate/i);
    await expect(client(b.url, { ...(await b.clientOptions()), password: 'wrong' })).rejects.toThrow(/authori[sz]ed|bad user/i);
  }, 25_000);

  it('restart: same port, clients can reconnect', async () => {
    const b = await broker({ variant: 'password' });
    const before = b.pid();
    const c = await client(b.url, { username: b.username, password: b.password });
    await roundTrip(c);
    await c.endAsync();
    await b.restart();
    expect(b.pid()).toBeDefined();
    expect(b.pid()).not.toBe(before);
    expect(isPidAlive(before as number)).toBe(false);
    const c2 = await client(b.url, { username: b.username, password: b.password });
    await roundTrip(c2);
    // A crash is observable and recoverable too.
    await b.kill();
    expect(b.isRunning()).toBe(false);
    expect(await canConnect('127.0.0.1', b.port, 500)).toBe(false);
    await b.restart();
    await roundTrip(await client(b.url, { username: b.username, password: b.password }));
  }, 25_000);
});

describe('rtsp server', () => {
  const tcpIn = (url: string): string[] => ['-rtsp_transport', 'tcp', '-stimeout', '5000000', '-i', url];

  it('serves H.264 frames that the bundled ffmpeg reads over TCP', async () => {
    const cam = await camera({ file: CLIP });
    expect(cam.url).toBe(`rtsp://127.0.0.1:${cam.port}/stream`);
    const r = await ffmpeg([...tcpIn(cam.url), '-frames:v', '5', '-f', 'null', '-']).done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Video: h264.*320x240/);
    expect(r.stderr).toMatch(/frame=\s*5\b/);
  }, 25_000);

  it('auth: no or wrong credentials get 401, right ones get frames', async () => {
    const cam = await camera({ file: CLIP, mount: '/cam1', user: 'viewer', password: 's3cr:t p@ss' });
    expect(cam.url).toBe(`rtsp://127.0.0.1:${cam.port}/cam1`);
    const anonymous = await ffmpeg([...tcpIn(cam.url), '-frames:v', '1', '-f', 'null', '-']).done;
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.stderr).toMatch(/401/);
    const wrong = cam.url.replace('rtsp://', 'rtsp://viewer:nope@');
    const bad = await ffmpeg([...tcpIn(wrong), '-frames:v', '1', '-f', 'null', '-']).done;
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/401/);
    const good = await ffmpeg([...tcpIn(cam.urlWithCredentials), '-frames:v', '5', '-f', 'null', '-']).done;
    expect(good.code, good.stderr).toBe(0);
    expect(good.stderr).toMatch(/frame=\s*5\b/);
  }, 25_000);

  it('restart: same port, new clients get frames again', async () => {
    const cam = await camera({ file: CLIP });
    const first = await ffmpeg([...tcpIn(cam.url), '-frames:v', '3', '-f', 'null', '-']).done;
    expect(first.code, first.stderr).toBe(0);
    const before = cam.pid();
    await cam.restart();
    expect(cam.pid()).not.toBe(before);
    expect(isPidAlive(before as number)).toBe(false);
    const second = await ffmpeg([...tcpIn(cam.url), '-frames:v', '3', '-f', 'null', '-']).done;
    expect(second.code, second.stderr).toBe(0);
    // While it is down, connections are refused.
    await cam.kill();
    const down = await ffmpeg([...tcpIn(cam.url), '-frames:v', '1', '-f', 'null', '-']).done;
    expect(down.code).not.toBe(0);
    expect(down.stderr).toMatch(/refused/i);
    await cam.restart();
    const third = await ffmpeg([...tcpIn(cam.url), '-frames:v', '3', '-f', 'null', '-']).done;
    expect(third.code, third.stderr).toBe(0);
  }, 30_000);

  it('is live: a second client joins mid-stream without rewinding the first', async () => {
    const cam = await camera({ file: CLIP });
    const first = ffmpeg([...tcpIn(cam.url), '-an', '-t', '6', '-f', 'framecrc', '-']);
    await waitFor(() => framePts(first.stdout()).length >= 60, 10_000, 'first client at ~2.5 s');
    const second = await ffmpeg([...tcpIn(cam.url), '-an', '-frames:v', '5', '-f', 'framecrc', '-']).done;
    expect(second.code, second.stderr).toBe(0);
    const a = await first.done;
    expect(a.code, a.stderr).toBe(0);
    const crc = (out: string): string[] =>
      out
        .split('\n')
        .filter((l) => l.startsWith('0,'))
        .map((l) => l.split(',').pop()?.trim() ?? '');
    const firstCrcs = crc(a.stdout);
    const secondFirstFrame = crc(second.stdout)[0] as string;
    // The second client's first picture is the one the first client saw at
    // that moment (>= 2 s in), not the start of the clip...
    expect(firstCrcs.indexOf(secondFirstFrame)).toBeGreaterThanOrEqual(50);
    // ...and the first client's picture sequence was not restarted.
    expect(firstCrcs.slice(50)).not.toContain(firstCrcs[0]);
    const pts = framePts(a.stdout);
    for (let i = 1; i < pts.length; i++) expect(pts[i]).toBeGreaterThan(pts[i - 1] as number);
  }, 30_000);

  it('pauseSending freezes the stream with the session open, resumeSending restarts it', async () => {
    const cam = await camera({ file: CLIP });
    const run = ffmpeg([...tcpIn(cam.url), '-an', '-f', 'framecrc', '-']);
    const frames = (): number => framePts(run.stdout()).length;
    await waitFor(() => frames() >= 25, 10_000, '25 frames');
    await cam.pauseSending();
    await sleep(500); // frames already in flight
    const frozenAt = frames();
    await sleep(2500);
    expect(frames() - frozenAt).toBeLessThanOrEqual(1);
    expect(isPidAlive(run.pid)).toBe(true); // still connected, just starved
    await cam.resumeSending();
    await waitFor(() => frames() >= frozenAt + 25, 8000, '25 more frames after resume');
    const pts = framePts(run.stdout());
    for (let i = 1; i < pts.length; i++) expect(pts[i]).toBeGreaterThan(pts[i - 1] as number);
    expect(cam.logs()).toMatch(/control: paused/);
    expect(cam.logs()).toMatch(/control: resumed/);
  }, 30_000);

  it('pauseRtcp: total silence, so ffmpeg -stimeout eventually gives up (exit code 0!)', async () => {
    const cam = await camera({ file: CLIP, pauseRtcp: true });
    const run = ffmpeg(['-rtsp_transport', 'tcp', '-stimeout', '1000000', '-i', cam.url, '-an', '-f', 'framecrc', '-']);
    await waitFor(() => framePts(run.stdout()).length >= 10, 10_000, '10 frames');
    await cam.pauseSending();
    const pausedAt = Date.now();
    const r = await run.done;
    // ffmpeg 4.1 gives up after roughly 4 x stimeout of silence, and reports
    // it as a normal end of stream.
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(0);
    expect(Date.now() - pausedAt).toBeLessThan(15_000);
    expect(cam.isRunning()).toBe(true);
  }, 30_000);

  describe('looping', () => {
    let dir = '';
    let shortClip = '';

    beforeAll(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'cctv-rig-'));
      shortClip = path.join(dir, 'short-3s.mp4');
      // Keyframes are every 25 frames and headers repeat on each, so a
      // stream copy of the first 3 s is a valid loopable clip.
      const r = await runFfmpeg(['-i', CLIP, '-t', '3', '-an', '-c:v', 'copy', '-y', shortClip]);
      expect(r.code, r.stderr).toBe(0);
    }, 20_000);

    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('keeps streaming past the end of the clip with increasing timestamps', async () => {
      const cam = await camera({ file: shortClip });
      const started = Date.now();
      const r = await ffmpeg([...tcpIn(cam.url), '-an', '-t', '8', '-f', 'framecrc', '-']).done;
      const elapsed = Date.now() - started;
      expect(r.code, r.stderr).toBe(0);
      const pts = framePts(r.stdout);
      expect(pts.length).toBeGreaterThanOrEqual(180); // 8 s at 25 fps = 200
      for (let i = 1; i < pts.length; i++) expect(pts[i]).toBeGreaterThan(pts[i - 1] as number);
      expect(elapsed).toBeGreaterThan(6000); // real time, not a burst
      expect(cam.logs()).toMatch(/end of clip, loop 2 ok/);
      expect(cam.logs()).not.toMatch(/unexpected EOS/);
    }, 30_000);

    it.runIf(process.env.RIG_LONG_TESTS)(
      'keeps streaming the real 30 s clip for 40 s',
      async () => {
        const cam = await camera({ file: CLIP });
        const r = await ffmpeg([...tcpIn(cam.url), '-an', '-t', '40', '-f', 'framecrc', '-'], 60_000).done;
        expect(r.code, r.stderr).toBe(0);
        expect(framePts(r.stdout).length).toBeGreaterThanOrEqual(950);
        expect(cam.logs()).toMatch(/end of clip, loop 1 ok/);
      },
      60_000,
    );
  });

  it('fails fast with the server output when the port is taken', async () => {
    const cam = await camera({ file: CLIP });
    await expect(startRtspServer({ file: CLIP, port: cam.port })).rejects.toThrow(/cannot listen|exited/);
  }, 25_000);
});

it('the bundled ffmpeg is where the helpers expect it', () => {
  expect(existsSync(ffmpegPath)).toBe(true);
});
