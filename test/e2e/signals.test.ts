import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../support/free-port.js';
import { findFfmpegProcesses, waitForNoFfmpeg } from '../support/processes.js';
import { killIfRunning, spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { assetPath } from '../support/assets.js';
import { listenNotifySocket } from '../support/notify-socket.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-signals-');
const SHUTDOWN_DEADLINE_MS = 5000;
let running: AgentProcess | undefined;

afterEach(async () => {
  await killIfRunning(running);
  running = undefined;
});

/**
 * A config on a copy of the clip under a unique name, so this test's ffmpeg children can be
 * told apart from any other in the process table.
 */
async function setup(): Promise<{ config: string; marker: string; dir: string }> {
  const dir = tempDir();
  const marker = `clip-${process.pid}-${Math.random().toString(36).slice(2)}.mp4`;
  fs.symlinkSync(assetPath('highway-cctv-320x240.mp4'), path.join(dir, marker));
  const port = await freePort();
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(
    config,
    [
      'deviceId: signals-test',
      `dataDir: ${path.join(dir, 'data')}`,
      'cameras:',
      `  - { id: cam1, url: ${path.join(dir, marker)}, sampleFps: 5 }`,
      `  - { id: cam2, url: ${path.join(dir, marker)}, sampleFps: 2 }`,
      `mqtt: { embeddedBroker: { port: ${port} } }`,
      `shutdown: { timeoutMs: ${SHUTDOWN_DEADLINE_MS} }`,
      '',
    ].join('\n'),
  );
  return { config, marker, dir };
}

async function expectCleanExit(agent: AgentProcess, marker: string, signalledAt: number): Promise<void> {
  const { code, at } = await agent.exited;
  expect(code, agent.stderr()).toBe(0);
  expect(at - signalledAt).toBeLessThan(SHUTDOWN_DEADLINE_MS);
  // Every ffmpeg child was reaped before the agent exited: none is left, not even a zombie.
  expect(await findFfmpegProcesses((args) => args.includes(marker))).toEqual([]);
}

describe('SIGTERM and SIGINT on a real agent process', () => {
  it('during steady running: exits 0 within the deadline, every ffmpeg reaped, READY and STOPPING sent', async () => {
    const { config, marker } = await setup();
    const notify = listenNotifySocket();
    try {
      running = spawnAgent(['run', '--config', config], { env: { NOTIFY_SOCKET: notify.path } });
      await running.waitForLog((line) => line.msg === 'camera state' && line['camera'] === 'cam2' && line['to'] === 'streaming');
      expect((await findFfmpegProcesses((args) => args.includes(marker))).length).toBe(2);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const signalledAt = Date.now();
      running.kill('SIGTERM');
      await expectCleanExit(running, marker, signalledAt);
      expect(notify.messages[0]).toMatch(/^READY=1\nSTATUS=running: 2 camera\(s\), model yolox-nano/);
      expect(notify.messages.at(-1)).toBe('STOPPING=1\nSTATUS=stopping: SIGTERM');
      expect(running.logs.some((line) => line.msg === 'cctv-agent stopped' && line['reason'] === 'SIGTERM')).toBe(true);
    } finally {
      notify.close();
    }
  });

  // Each startup phase, in order: the signal lands while that step is under way or just done.
  const phases: Array<[string, (line: { msg: string; service?: unknown }) => boolean]> = [
    ['before any service', (line) => line.msg === 'cctv-agent starting'],
    ['after storage', (line) => line.msg === 'database open'],
    ['after the MQTT link', (line) => line.msg === 'started' && line.service === 'mqtt'],
    ['after the model load', (line) => line.msg === 'model loaded'],
    ['after the ffmpeg probe', (line) => line.msg === 'ffmpeg probed'],
  ];

  it.each(phases)('during startup (%s): exits 0 within the deadline, no ffmpeg left', async (_phase, predicate) => {
    const { config, marker } = await setup();
    running = spawnAgent(['run', '--config', config]);
    await running.waitForLog(predicate as never);
    const signalledAt = Date.now();
    running.kill('SIGTERM');
    await expectCleanExit(running, marker, signalledAt);
  });

  it('SIGINT (Ctrl-C) stops it the same way', async () => {
    const { config, marker } = await setup();
    running = spawnAgent(['run', '--config', config]);
    await running.waitForLog((line) => line.msg === 'cctv-agent running');
    const signalledAt = Date.now();
    running.kill('SIGINT');
    await expectCleanExit(running, marker, signalledAt);
  });

  it('a second signal during shutdown exits at once with 130', async () => {
    const { config, marker } = await setup();
    running = spawnAgent(['run', '--config', config]);
    await running.waitForLog((line) => line.msg === 'camera state' && line['to'] === 'streaming');
    running.kill('SIGTERM');
    // Signals of one kind do not queue: the second must come after the first was handled.
    await running.waitForLog((line) => line.msg === 'shutdown requested');
    running.kill('SIGTERM');
    const exited = await running.exited;
    expect(exited).toMatchObject({ code: 130 });
    // The agent left without cleanup; its ffmpeg children see stdout close and end on their own.
    await waitForNoFfmpeg((args) => args.includes(marker), 10_000);
  });
});
