import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assetPath } from '../support/assets.js';
import { startRtspServer, type RtspServerHandle } from '../support/rtsp-server.js';
import { killIfRunning, spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { listenNotifySocket } from '../support/notify-socket.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-watchdog-');
let server: RtspServerHandle;
let agent: AgentProcess | undefined;
let notify: ReturnType<typeof listenNotifySocket> | undefined;

beforeAll(async () => {
  server = await startRtspServer({ file: assetPath('highway-cctv-320x240.mp4') });
});
afterAll(() => server?.stop());
afterEach(async () => {
  await killIfRunning(agent);
  agent = undefined;
  notify?.close();
  notify = undefined;
});

const pings = (): number => notify!.messages.filter((message) => message === 'WATCHDOG=1').length;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('systemd notify protocol on a real unix datagram socket', () => {
  it('READY after the pipeline starts, WATCHDOG while frames flow, none while it hangs, STOPPING on shutdown', async () => {
    const dir = tempDir();
    const config = path.join(dir, 'config.yaml');
    // The stall watchdog is set far out, so a frozen camera leaves the pipeline hung.
    fs.writeFileSync(
      config,
      [
        `dataDir: ${path.join(dir, 'data')}`,
        'mqtt: { enabled: false }',
        'ffmpeg: { stallTimeoutSeconds: 120 }',
        'cameras:',
        `  - { id: cam, url: "${server.url}", sampleFps: 5 }`,
        '',
      ].join('\n'),
    );
    notify = listenNotifySocket();
    // WATCHDOG_USEC = 2 s: systemd expects a ping every 2 s, the agent checks every 1 s.
    agent = spawnAgent(['run', '--config', config], { env: { NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: '2000000' } });
    await agent.waitForLog((line) => line.msg === 'cctv-agent running', 30_000);
    await sleep(300);
    expect(notify.messages[0]).toMatch(/^READY=1\nSTATUS=running: 1 camera/);
    // Frames flow once the camera streams (after the stream probe that decides its decoder
    // skipping, docs/ingest.md); until then the watchdog is pinged as for any camera connecting.
    await agent.waitForLog((line) => line.msg === 'camera state' && line['to'] === 'streaming', 30_000);

    await sleep(4000);
    const whileFlowing = pings();
    expect(whileFlowing).toBeGreaterThanOrEqual(3);

    await server.pauseSending();
    await sleep(3000); // the last results age past two watchdog periods
    const atHang = pings();
    await sleep(4000);
    const duringHang = pings() - atHang;

    await server.resumeSending();
    await sleep(4000);
    const afterResume = pings() - atHang - duringHang;
    console.log(`watchdog pings: ${whileFlowing} in 4 s of flow, ${duringHang} in 4 s of a hung pipeline, ${afterResume} in 4 s after it resumed`);
    expect(duringHang).toBe(0);
    expect(afterResume).toBeGreaterThanOrEqual(2);

    agent.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
    await sleep(100);
    expect(notify.messages.at(-1)).toBe('STOPPING=1\nSTATUS=stopping: SIGTERM');
  }, 60_000);
});
