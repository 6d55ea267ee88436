import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assetPath } from '../support/assets.js';
import { findFfmpegProcesses } from '../support/processes.js';
import { startRtspServer, type RtspServerHandle } from '../support/rtsp-server.js';
import { killIfRunning, spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-e2e-host-');

/** Issue #12: most cameras are configured by name, and the bundled ffmpeg crashed on any name. */
describe('a camera given by host name, with the default setup', () => {
  let rtsp: RtspServerHandle;
  let agent: AgentProcess | undefined;
  beforeAll(async () => {
    rtsp = await startRtspServer({ file: assetPath('highway-cctv-320x240.mp4') });
  });
  afterAll(async () => {
    await killIfRunning(agent);
    await rtsp?.stop();
  });

  it('rtsp://localhost:PORT/... streams and its results reach SQLite', async () => {
    const dir = tempDir();
    const config = path.join(dir, 'config.yaml');
    fs.writeFileSync(
      config,
      [
        `dataDir: ${path.join(dir, 'data')}`,
        'mqtt: { enabled: false }',
        'storage: { flushIntervalMs: 100 }',
        'cameras:',
        `  - { id: by-name, url: "rtsp://localhost:${rtsp.port}${rtsp.mount}", sampleFps: 5 }`,
        '',
      ].join('\n'),
    );
    agent = spawnAgent(['run', '--config', config]);
    const probed = await agent.waitForLog((line) => line.msg === 'ffmpeg probed', 30_000);
    const resolved = await agent.waitForLog((line) => line.msg === 'camera host resolved', 20_000);
    await agent.waitForLog((line) => line.msg === 'camera state' && line['to'] === 'streaming', 20_000);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    agent.kill('SIGTERM');
    expect((await agent.exited).code, agent.stderr()).toBe(0);
    console.log(
      `ffmpeg ${String(probed['ffmpeg'])} (${String(probed['origin'])}, resolves names itself: ${String(probed['resolvesHostNames'])}); localhost -> ${String(resolved['address'])}`,
    );
    const db = new Database(path.join(dir, 'data', 'agent.db'), { readonly: true });
    const { n } = db.prepare("SELECT count(*) AS n FROM results WHERE camera_id = 'by-name'").get() as { n: number };
    db.close();
    expect(n).toBeGreaterThanOrEqual(5);
    expect(agent.logs.some((line) => line['error'] === 'FFMPEG_CRASHED' || line['signal'] === 'SIGSEGV')).toBe(false);
    expect(await findFfmpegProcesses((args) => args.includes(`:${rtsp.port}/`))).toEqual([]);
  }, 90_000);
});
