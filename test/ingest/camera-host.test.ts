import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isAgentError } from '../../agent/errors.js';
import { resolveSourceHost } from '../../agent/ingest/camera-host.js';
import { bundledFfmpegPath, chooseFfmpeg, isStaticElf, SYSTEM_FFMPEG } from '../../agent/ingest/ffmpeg-binary.js';
import { assetPath } from '../support/assets.js';
import { waitForNoFfmpeg } from '../support/processes.js';
import { startRtspServer, type RtspServerHandle } from '../support/rtsp-server.js';
import { startIngest, type Harness } from '../support/ingest-harness.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-camera-host-');

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return isAgentError(error) ? error.code : String(error);
  }
}

describe('camera host names are resolved by the agent', () => {
  const lookup = async (host: string): Promise<{ address: string; family: number }> => {
    if (host === 'cam.example') return { address: '192.0.2.7', family: 4 };
    if (host === 'cam6.example') return { address: '2001:db8::7', family: 6 };
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  };

  it('gives a static ffmpeg the address (credentials, port and path kept), a dynamic one the name', async () => {
    expect(await resolveSourceHost('north', 'rtsp://u:p%40ss@cam.example:8554/live?ch=1', false, lookup)).toEqual({
      url: 'rtsp://u:p%40ss@192.0.2.7:8554/live?ch=1',
      address: '192.0.2.7',
    });
    expect(await resolveSourceHost('north', 'rtsp://cam6.example/live', false, lookup)).toEqual({ url: 'rtsp://[2001:db8::7]/live', address: '2001:db8::7' });
    expect(await resolveSourceHost('north', 'http://cam.example/mjpeg', true, lookup)).toEqual({ url: 'http://cam.example/mjpeg', address: '192.0.2.7' });
  });

  it('leaves IP literals and files alone without a lookup', async () => {
    const refuse = (): Promise<never> => Promise.reject(new Error('no lookup expected'));
    expect(await resolveSourceHost('a', 'rtsp://10.1.2.3:554/x', false, refuse)).toEqual({ url: 'rtsp://10.1.2.3:554/x', address: undefined });
    expect(await resolveSourceHost('a', 'rtsp://[::1]:554/x', false, refuse)).toEqual({ url: 'rtsp://[::1]:554/x', address: undefined });
    expect(await resolveSourceHost('a', '/var/clips/a.mp4', false, refuse)).toEqual({ url: '/var/clips/a.mp4', address: undefined });
  });

  it('a name that does not resolve is CAMERA_HOST_UNRESOLVED, naming the camera key and the host', async () => {
    const promise = resolveSourceHost('north', 'rtsp://nowhere.example/x', false, lookup);
    expect(await codeOf(promise)).toBe('CAMERA_HOST_UNRESOLVED');
    await expect(resolveSourceHost('north', 'rtsp://nowhere.example/x', false, lookup)).rejects.toThrow(
      /cameras\.north\.url: host "nowhere\.example" does not resolve \(ENOTFOUND\)/,
    );
  });

  it('knows the bundled ffmpeg is static (cannot resolve names) and Node is not', () => {
    expect(isStaticElf(bundledFfmpegPath())).toBe(true);
    expect(isStaticElf(process.execPath)).toBe(false);
    expect(isStaticElf(new URL(import.meta.url).pathname)).toBe(false);
  });

  it("prefers ffmpeg.path, then Debian's /usr/bin/ffmpeg, then the bundled build", () => {
    expect(chooseFfmpeg('/opt/ffmpeg', () => true)).toEqual({ path: '/opt/ffmpeg', origin: 'config' });
    expect(chooseFfmpeg(undefined, (file) => file === SYSTEM_FFMPEG)).toEqual({ path: SYSTEM_FFMPEG, origin: 'system' });
    expect(chooseFfmpeg(undefined, () => false)).toEqual({ path: bundledFfmpegPath(), origin: 'bundled' });
  });
});

describe('on a real RTSP server and real ffmpeg', () => {
  let server: RtspServerHandle;
  let harness: Harness | undefined;
  const ours = (args: string): boolean => args.includes(`:${server.port}/`) || args.includes('camera.invalid') || args.includes('crashing-ffmpeg');

  beforeAll(async () => {
    server = await startRtspServer({ file: assetPath('highway-cctv-320x240.mp4') });
  });
  afterAll(async () => {
    await server?.stop();
  });
  afterEach(async () => {
    await harness?.stop();
    harness = undefined;
    await waitForNoFfmpeg(ours, 5000);
  });

  it('rtsp://localhost:PORT streams with the bundled static ffmpeg (which segfaults on any name lookup itself)', async () => {
    const url = `rtsp://localhost:${server.port}${server.mount}`;
    harness = await startIngest({ cameras: [{ id: 'cam', url, sampleFps: 5 }], ffmpeg: { path: bundledFfmpegPath() } });
    await harness.waitFrames('cam', 5, 20_000);
    expect(harness.camera('cam')).toMatchObject({ state: 'streaming', lastError: undefined, source: url });
    expect(harness.logLines().some((line) => line.includes('camera host resolved') && line.includes('"passedToFfmpeg":true'))).toBe(true);
  }, 40_000);

  it('rtsp://localhost:PORT streams with the default ffmpeg choice', async () => {
    harness = await startIngest({ cameras: [{ id: 'cam', url: `rtsp://localhost:${server.port}${server.mount}`, sampleFps: 5 }] });
    await harness.waitFrames('cam', 5, 20_000);
    expect(harness.camera('cam').state).toBe('streaming');
  }, 40_000);

  it('a host that does not resolve: CAMERA_HOST_UNRESOLVED, no ffmpeg started, retried with the persistent-failure backoff', async () => {
    // .invalid never resolves (RFC 6761). Transient failures would be capped at 150 ms, persistent ones at 800.
    harness = await startIngest({
      cameras: [{ id: 'cam', url: 'rtsp://camera.invalid:554/stream', sampleFps: 5 }],
      ffmpeg: { restartBackoffMs: { initial: 100, max: 150, maxWhenRejected: 800 } },
    });
    const state = await harness.waitState('cam', (current) => current.reconnects >= 4, 20_000);
    expect(state).toMatchObject({ lastError: 'CAMERA_HOST_UNRESOLVED', pid: undefined });
    expect(state.lastErrorLine).toMatch(/cameras\.cam\.url: host "camera\.invalid" does not resolve/);
    const delays = harness
      .logLines()
      .filter((line) => line.includes('camera cannot be opened'))
      .map((line) => (JSON.parse(line) as { retryInMs: number }).retryInMs);
    expect(delays.length).toBeGreaterThanOrEqual(4);
    expect(Math.max(...delays)).toBeGreaterThan(150);
    // The warning carries the fix line, since a name problem must be fixed by a person.
    expect(harness.logLines().some((line) => line.includes('camera cannot be opened') && line.includes('check the name, /etc/hosts and the DNS servers'))).toBe(
      true,
    );
  }, 40_000);

  it('an ffmpeg that dies by SIGSEGV: FFMPEG_CRASHED with the signal named, retried with backoff', async () => {
    const dir = tempDir();
    const fake = path.join(dir, 'crashing-ffmpeg');
    // Answers the agent's probes like ffmpeg 5.1, and crashes when asked to open an input.
    fs.writeFileSync(
      fake,
      [
        '#!/bin/sh',
        'case " $* " in *" -i "*) kill -SEGV $$ ;; esac',
        'case " $* " in *" -formats "*) printf "File formats:\\n D. = Demuxing supported\\n --\\n D  rtsp            RTSP input\\n" ; exit 0 ;; esac',
        'echo "ffmpeg version 5.1.6 Copyright (c) 2000-2024"',
        'echo "libavformat    59. 27.100 / 59. 27.100"',
        'echo "Hardware acceleration methods:"',
        'exit 0',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    harness = await startIngest({
      cameras: [{ id: 'cam', url: assetPath('highway-cctv-320x240.mp4'), sampleFps: 5 }],
      ffmpeg: { path: fake, restartBackoffMs: { initial: 100, max: 150, maxWhenRejected: 800 } },
    });
    const state = await harness.waitState('cam', (current) => current.reconnects >= 3, 20_000);
    expect(state.lastError).toBe('FFMPEG_CRASHED');
    expect(state.lastErrorLine).toMatch(/crashing-ffmpeg was killed by SIGSEGV/);
    const delays = harness
      .logLines()
      .filter((line) => line.includes('camera cannot be opened'))
      .map((line) => (JSON.parse(line) as { retryInMs: number }).retryInMs);
    expect(Math.max(...delays)).toBeGreaterThan(150);
  }, 40_000);
});
