import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { assetPath } from '../support/assets.js';
import { killIfRunning, spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-status-');
let agent: AgentProcess | undefined;

afterEach(async () => {
  await killIfRunning(agent);
  agent = undefined;
});

async function status(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const command = spawnAgent(['status', ...args]);
  const { code } = await command.exited;
  return { code, out: command.stdout(), err: command.stderr() };
}

describe('cctv-agent status, from local files only', () => {
  it('shows a running agent, then a stopped one, then one that was killed', async () => {
    const dir = tempDir();
    const config = path.join(dir, 'config.yaml');
    fs.writeFileSync(
      config,
      [
        'deviceId: status-test',
        `dataDir: ${path.join(dir, 'data')}`,
        'mqtt: { enabled: false }',
        'cameras:',
        `  - { id: highway, url: ${assetPath('highway-cctv-320x240.mp4')}, sampleFps: 5 }`,
        '  - { id: broken, url: "rtsp://127.0.0.1:9/nothing" }',
        '',
      ].join('\n'),
    );
    agent = spawnAgent(['run', '--config', config]);
    await agent.waitForLog((line) => line.msg === 'camera state' && line['camera'] === 'highway' && line['to'] === 'streaming', 30_000);
    await new Promise((resolve) => setTimeout(resolve, 2500));

    const running = await status(['--config', config]);
    expect(running.code, running.err).toBe(0);
    expect(running.out).toMatch(/^cctv-agent status-test: running \(pid \d+/);
    // model.manifest "auto" timed int8 against float (issue #19): either may win on a CPU.
    const modelChoice = agent.logs.find((line) => String(line.msg).startsWith('model chosen by measurement'))!;
    expect(modelChoice).toBeDefined();
    const chosenModel = String(modelChoice['chosen']);
    expect(['yolox-nano-int8', 'yolox-nano']).toContain(chosenModel);
    expect(running.out).toContain(`model: ${chosenModel}@1.0.0`);
    expect(running.out).toContain(`model chosen by "auto": ${chosenModel} `);
    // `model run` with this config runs what the running agent serves, not a guess.
    const still = spawnAgent(['model', 'run', assetPath('bus-and-cars.jpg'), '--config', config, '--json']);
    expect((await still.exited).code, still.stderr()).toBe(0);
    expect((JSON.parse(still.stdout()) as { model: { id: string } }).model.id).toBe(chosenModel);
    // Threads and sessions were chosen by timing 1 and 2 threads and 2 one-thread sessions at start (issue #19), logged and shown.
    const chosen = agent.logs.find((line) => line.msg === 'inference threads chosen by measurement')!;
    expect(chosen).toBeDefined();
    expect((chosen['timings'] as unknown[]).length).toBe(os.availableParallelism() >= 2 ? 3 : 1);
    const sessions = Number(chosen['sessions']);
    expect(running.out).toMatch(
      new RegExp(`inference threads: ${String(chosen['chosen'])}${sessions > 1 ? ` × ${sessions} sessions` : ''} \\(measured, ms per frame: 1 thread [\\d.]+`),
    );
    expect(running.out).toMatch(/highway\s+streaming/);
    expect(running.out).toMatch(/broken\s+(backoff|starting)\s.*SOURCE_REFUSED/);
    expect(running.out).toContain('mqtt: off');

    const json = await status(['--data-dir', path.join(dir, 'data'), '--json']);
    const parsed = JSON.parse(json.out) as { running: boolean; model: { id: string } };
    expect(parsed).toMatchObject({ running: true, model: { id: chosenModel } });

    agent.kill('SIGTERM');
    await agent.exited;
    const stopped = await status(['--config', config]);
    expect(stopped.code).toBe(3);
    expect(stopped.out).toMatch(/: stopped \(pid/);
    expect(stopped.out).toMatch(/highway\s+stopped/);

    agent = spawnAgent(['run', '--config', config]);
    await agent.waitForLog((line) => line.msg === 'cctv-agent running', 30_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    agent.kill('SIGKILL');
    await agent.exited;
    const killed = await status(['--config', config]);
    expect(killed.code).toBe(3);
    expect(killed.out).toContain('not running (killed?)');
  }, 90_000);

  it('says clearly when no agent ever ran with the data directory', async () => {
    const result = await status(['--data-dir', path.join(tempDir(), 'nothing')]);
    expect(result.code).toBe(3);
    expect(result.err).toMatch(/no agent status in .*status\.json \(ENOENT\)/);
  });
});
